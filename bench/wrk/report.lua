-- Appended to every load script: done() prints the run's figures as one JSON line.
-- A load script may define extra() (run in done()) returning more "name": number fields.

function done(summary, latency, requests)
   local e = summary.errors
   local fields = {
      string.format('"requests": %d', summary.requests),
      string.format('"duration_us": %d', summary.duration),
      string.format('"p50_us": %d', latency:percentile(50)),
      string.format('"p99_us": %d', latency:percentile(99)),
      string.format('"max_us": %d', latency.max),
      string.format('"mean_us": %.1f', latency.mean),
      string.format('"status_errors": %d', e.status),
      string.format('"socket_errors": %d', e.connect + e.read + e.write + e.timeout),
   }
   if extra then
      for name, value in pairs(extra()) do
         table.insert(fields, string.format('"%s": %d', name, value))
      end
   end
   io.write("WRK_JSON {" .. table.concat(fields, ", ") .. "}\n")
end
