-- bench/wrk_report.lua: the one BENCH line every wrk script of bench/ prints at the end
-- (loaded with dofile by bench/ingress_webhook.lua and bench/e2e_webhooks.lua; wrk runs from the
-- repository's root).
function done(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
