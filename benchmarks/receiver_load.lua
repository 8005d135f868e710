-- wrk script for benchmarks/receiver.py: POST pre-encrypted webhook bodies, one per request.
-- Usage: wrk -t1 -c64 -d10s --latency -s receiver_load.lua http://127.0.0.1:P/webhooks -- BODIES
-- BODIES holds one base64 body per line (distinct events, so a deduplicating receiver stores
-- each one); they are sent in order and cycled if the run outlasts them. done() prints one
-- machine-readable line, "VERIHOOK_RESULT {json}", which the harness parses.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   bodies = {}
   for line in io.lines(args[1]) do
      if #line > 0 then
         bodies[#bodies + 1] = line
      end
   end
   if #bodies == 0 then
      error("no bodies in " .. tostring(args[1]))
   end
   -- Everything but Content-Length and the body is the same for every request: built once,
   -- so the load generator spends its core on sending, not on formatting.
   prefix = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port
      .. "\r\nContent-Type: text/plain\r\nContent-Length: "
   sent = 0
end

function request()
   local body = bodies[sent % #bodies + 1]
   sent = sent + 1
   return prefix .. #body .. "\r\n\r\n" .. body
end

function done(summary, latency, requests)
   local sent, bodies = 0, 0
   for _, thread in ipairs(threads) do
      sent = sent + thread:get("sent")
      bodies = bodies + #thread:get("bodies")
   end
   local e = summary.errors
   io.write(string.format(
      'VERIHOOK_RESULT {"duration_us": %d, "requests": %d, "sent": %d, "bodies": %d, '
         .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
         .. '"status_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
         .. '"mean_us": %.1f}\n',
      summary.duration, summary.requests, sent, bodies, e.connect, e.read, e.write, e.timeout,
      e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
