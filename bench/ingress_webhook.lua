-- bench/ingress_webhook.lua: wrk script posting one signed transcription webhook per request.
-- The body and its ElevenLabs-Signature (computed by bench/ingress with a current t) come from
-- the environment: BENCH_BODY, BENCH_SIGNATURE. Prints one parseable BENCH line at the end.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local sig = os.getenv("BENCH_SIGNATURE")
if sig ~= nil and sig ~= "" then
  wrk.headers["ElevenLabs-Signature"] = sig
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
