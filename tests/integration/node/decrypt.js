// The Passbase guide's decryption, verbatim in its steps, over many bodies.
// stdin: {"secret": "...", "bodies": ["base64", ...]}
// stdout: [{"plaintext": "...", "event": "..."} or {"error": "..."}, ...]
"use strict";
const crypto = require("crypto");

function decryptWebhook(secret, requestBody) {
  const encrypted_result = Buffer.from(requestBody, "base64");
  const iv = encrypted_result.slice(0, 16);
  const cipher = crypto.createDecipheriv("aes-256-cbc", secret, iv);
  const decrypted_result_bytes = Buffer.concat([
    cipher.update(encrypted_result.slice(16)),
    cipher.final(),
  ]);
  const decrypted_result = decrypted_result_bytes.toString();
  const json_result = JSON.parse(decrypted_result);
  return { plaintext: decrypted_result, event: json_result.event };
}

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const results = input.bodies.map((body) => {
  try {
    return decryptWebhook(input.secret, body);
  } catch (err) {
    return { error: String(err.message || err) };
  }
});
process.stdout.write(JSON.stringify(results));
