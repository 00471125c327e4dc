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

dofile("bench/wrk_report.lua") -- done(): the BENCH line
