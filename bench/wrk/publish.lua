-- wrk script: POST one Centrifugo v6 publish proxy body per request, on keep-alive connections
-- (Centrifugo's Go client keeps them alive too). bench/callbacks.py passes the body and the shared
-- secret in BENCH_BODY and BENCH_SECRET and reads the one BENCH_RESULT line done() prints.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Centrifugo-Proxy-Secret"] = os.getenv("BENCH_SECRET")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max
  ))
end
