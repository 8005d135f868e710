// Encrypts the way a Passbase sender does: base64(IV || AES-256-CBC(PKCS7(json))),
// key = the secret's UTF-8 bytes, IV 16 random bytes.
// stdin: {"secret": "...", "plaintexts": ["json", ...]}   stdout: ["base64", ...]
"use strict";
const crypto = require("crypto");

function encryptWebhook(secret, plaintext) {
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv("aes-256-cbc", secret, iv);
  const encrypted = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([iv, encrypted]).toString("base64");
}

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(input.plaintexts.map((p) => encryptWebhook(input.secret, p))));
