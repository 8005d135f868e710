// Node.js peer for benchmarks/format.py: the Passbase guide's decryption + JSON.parse, in a loop.
// stdin: {"secret": "...", "bodies": ["base64", ...], "count": N, "rounds": R, "warmup": W}
// stdout: {"per_second": [one figure per round], "checksum": n}
// Plain JS, no dependencies. The secret comes on stdin so it never shows in `ps`.
"use strict";
// The guide's decryption, the same function the HTTP peers use.
const { decryptWebhook } = require("./guide.js");

function run(bodies, secret, count) {
  // A checksum of what was parsed, so no step can be optimised away.
  let checksum = 0;
  const n = bodies.length;
  for (let i = 0; i < count; i++) {
    checksum += decryptWebhook(bodies[i % n], secret).updated & 1;
  }
  return checksum;
}

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
// The bodies arrive as strings, as an HTTP server hands a text/plain body to the guide's code.
const { secret, bodies, count, rounds, warmup } = input;
run(bodies, secret, warmup);
const perSecond = [];
let checksum = 0;
for (let r = 0; r < rounds; r++) {
  const start = process.hrtime.bigint();
  checksum += run(bodies, secret, count);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  perSecond.push(count / seconds);
}
process.stdout.write(JSON.stringify({ per_second: perSecond, checksum }));
