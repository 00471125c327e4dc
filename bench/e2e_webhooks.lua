-- bench/e2e_webhooks.lua: wrk script posting signed transcription webhooks, each one a different
-- line (its own event id), read from BENCH_REQUESTS ("<ElevenLabs-Signature>\t<body>" per line,
-- written by bench/e2e) and shared out between wrk's BENCH_THREADS threads, each line sent once.
-- A thread that has sent all its lines asks GET /healthz instead (no publish) until bench/e2e,
-- which counts the ingress's acknowledged webhooks, stops wrk. BENCH_RATE (requests/s for the
-- whole run; 0: as fast as answered) paces the threads: each hands its connections send times
-- on a fixed schedule (wrk's delay()), so the rate holds whatever the answers' latency, as long
-- as a connection is free at each time. Prints one parseable BENCH line at the end.
local ffi = require("ffi")
ffi.cdef[[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct bench_timespec *ts);
]]
local ts = ffi.new("struct bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS"))
  local i = 0
  reqs = {}
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    if i % threads == id then
      local sig, body = line:match("^([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", nil,
        {["Content-Type"] = "application/json", ["ElevenLabs-Signature"] = sig}, body)
    end
    i = i + 1
  end
  idle = wrk.format("GET", "/healthz")
  local rate = tonumber(os.getenv("BENCH_RATE") or "0")
  interval = rate > 0 and threads * 1000 / rate or 0 -- ms between this thread's requests
  slot = nil
  sent = 0
end

function delay()
  if interval == 0 then
    return 0
  end
  local t = now_ms()
  if slot == nil then
    slot = t
  end
  local wait = slot - t
  slot = slot + interval
  return wait > 0 and math.floor(wait + 0.5) or 0
end

function request()
  if sent >= #reqs then
    return idle
  end
  sent = sent + 1
  return reqs[sent]
end

dofile("bench/wrk_report.lua") -- done(): the BENCH line
