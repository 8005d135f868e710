// The Passbase guide's decryption, shared by both Node peers, and their common configuration.
// The peers are baselines for benchmarks/receiver.py: they decrypt and parse, they store nothing.
"use strict";

const crypto = require("crypto");

// As in the guide: base64 -> IV (first 16 bytes) + ciphertext, AES-256-CBC, JSON.parse.
// Any failure (bad base64, bad padding, bad JSON) throws; the servers answer 400.
function decryptWebhook(requestBody, secret) {
  const encryptedResult = Buffer.from(requestBody, "base64");
  const iv = encryptedResult.subarray(0, 16);
  const cipher = crypto.createDecipheriv("aes-256-cbc", secret, iv);
  const decryptedResultBytes = Buffer.concat([
    cipher.update(encryptedResult.subarray(16)),
    cipher.final(),
  ]);
  return JSON.parse(decryptedResultBytes.toString());
}

// --port P / --host H / --secret S on the command line, else PORT, HOST, WEBHOOK_SECRET.
// The harness passes the secret through the environment so that it never shows in `ps`.
function config(argv = process.argv.slice(2), env = process.env) {
  const options = {
    port: env.PORT,
    host: env.HOST || "127.0.0.1",
    secret: env.WEBHOOK_SECRET,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    if (!(name in options) || i + 1 >= argv.length) {
      fail(`usage: node ${process.argv[1]} --port P [--host H] [--secret S]`);
    }
    options[name] = argv[i + 1];
  }
  const port = Number.parseInt(options.port, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    fail("a port (--port or PORT) between 0 and 65535 is required");
  }
  if (!options.secret || Buffer.byteLength(options.secret, "utf8") !== 32) {
    fail("a secret (--secret or WEBHOOK_SECRET) of exactly 32 bytes of UTF-8 is required");
  }
  return { port, host: options.host, secret: options.secret };
}

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

// Stop at once on SIGTERM/SIGINT: nothing is stored, so there is nothing to drain.
function exitOnSignals() {
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => process.exit(0));
  }
}

module.exports = { config, decryptWebhook, exitOnSignals };
