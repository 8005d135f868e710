// Peer (d): a bare Node `http` receiver doing the Passbase guide's decryption, nothing more.
// Usage: node http_server.js --port P [--host H] [--secret S]   (or PORT, WEBHOOK_SECRET)
"use strict";

const http = require("http");
const { config, decryptWebhook, exitOnSignals } = require("./guide");

const MAX_BODY = 64 * 1024;
const { port, host, secret } = config();

function answer(res, status) {
  res.writeHead(status, { "Content-Type": "text/plain" });
  res.end(http.STATUS_CODES[status]);
}

const server = http.createServer((req, res) => {
  if (req.url !== "/webhooks") {
    answer(res, 404);
    return;
  }
  if (req.method !== "POST") {
    answer(res, 405);
    return;
  }
  if (req.headers["content-type"] !== "text/plain") {
    answer(res, 415);
    return;
  }
  const chunks = [];
  let size = 0;
  let refused = false;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      refused = true;
      return;
    }
    chunks.push(chunk);
  });
  req.on("end", () => {
    if (refused) {
      answer(res, 413);
      return;
    }
    try {
      decryptWebhook(Buffer.concat(chunks).toString(), secret);
    } catch {
      answer(res, 400);
      return;
    }
    answer(res, 200);
  });
});

exitOnSignals();
server.listen(port, host, () => {
  console.log(`http peer listening on http://${host}:${server.address().port}`);
});
