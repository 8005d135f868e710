// Peer (c): an Express receiver as the Passbase guide writes it, decrypting each webhook.
// Usage: node express_server.js --port P [--host H] [--secret S]   (or PORT, WEBHOOK_SECRET)
"use strict";

const express = require("express");
const { config, decryptWebhook, exitOnSignals } = require("./guide");

const { port, host, secret } = config();
const app = express();

app.post("/webhooks", express.text({ type: "text/plain", limit: "64kb" }), (req, res) => {
  // express.text leaves req.body as {} when the content type is not text/plain.
  if (typeof req.body !== "string") {
    res.sendStatus(415);
    return;
  }
  try {
    decryptWebhook(req.body, secret);
  } catch {
    res.sendStatus(400);
    return;
  }
  res.sendStatus(200);
});

// Body-parser failures (413 and the like) answer their status without a stack trace.
app.use((err, req, res, next) => {
  res.sendStatus(err.status || err.statusCode || 400);
});

exitOnSignals();
const server = app.listen(port, host, () => {
  console.log(`express peer listening on http://${host}:${server.address().port}`);
});
