// A webhook receiver written the way the Passbase guide decrypts, for the end-to-end tests.
// POST any path: the body must be text/plain; it is decrypted exactly as the guide shows
// (base64 -> 16-byte IV + ciphertext, createDecipheriv('aes-256-cbc', secret, iv), JSON.parse)
// and recorded; 200 on success, 400 if it does not decrypt or parse, 415 on another type.
// GET /received answers the recorded events as JSON. Plain Node, no npm dependencies.
// The secret comes from WEBHOOK_SECRET (never argv, so it is not visible in `ps`); the bound
// port is printed on stdout as "listening <port>" once the server accepts connections.
"use strict";

const crypto = require("crypto");
const http = require("http");

const secret = process.env.WEBHOOK_SECRET || "";
if (Buffer.byteLength(secret, "utf8") !== 32) {
  process.stderr.write("error: WEBHOOK_SECRET must be exactly 32 bytes of UTF-8\n");
  process.exit(1);
}
const MAX_BODY = 64 * 1024;
const received = [];
let refused = 0;

function decryptWebhook(requestBody) {
  const encrypted_result = Buffer.from(requestBody, "base64");
  const iv = encrypted_result.subarray(0, 16);
  const cipher = crypto.createDecipheriv("aes-256-cbc", secret, iv);
  const decrypted_result_bytes = Buffer.concat([
    cipher.update(encrypted_result.subarray(16)),
    cipher.final(),
  ]);
  return JSON.parse(decrypted_result_bytes.toString());
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/received") {
    return answer(res, 200, { received, refused });
  }
  if (req.method !== "POST") {
    return answer(res, 405, { error: "method not allowed" });
  }
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > MAX_BODY) {
      refused += 1;
      return answer(res, 413, { error: "body too large" });
    }
    if (req.headers["content-type"] !== "text/plain") {
      refused += 1;
      return answer(res, 415, { error: "expected text/plain" });
    }
    let event;
    try {
      event = decryptWebhook(Buffer.concat(chunks).toString());
    } catch (err) {
      refused += 1;
      return answer(res, 400, { error: "cannot decrypt" });
    }
    received.push({ webhook_id: req.headers["webhook-id"] || null, event });
    answer(res, 200, { ok: true });
  });
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
