-- wrk script of the serving benchmark: POSTs one JSON body (BENCH_BODY, a file) to
-- BENCH_PATH and prints the run's figures as one JSON line, read by hack/bench/bench.py.
-- Besides wrk's -d time bound, a thread stops after BENCH_MAX_REQUESTS responses (a safety
-- bound set far above what a run serves; bench.py flags a run that reaches it).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()

local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "5000000")
local seen = 0

function response(status, headers, body)
  seen = seen + 1
  if seen >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, "non2xx": %d, ' ..
    '"p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
