/* simopts: elevensim's start-up option table (common/cfg: environment, flags, --help). */
#include "simconf.h"

static const struct cfg_option sim_options_table[] = {
    CFG_OPT(struct sim_options, "listen", "ELEVENSIM_LISTEN", CFG_STR, "127.0.0.1:8090",
            "host:port of the fake API (port 0 picks a free port; see --url-file)", listen, 0, 0,
            false),
    CFG_OPT(struct sim_options, "url-file", "ELEVENSIM_URL_FILE", CFG_STR, "",
            "write the base URL (http://host:port) to this file once listening", url_file, 0, 0,
            false),
    CFG_OPT(struct sim_options, "api-key", "ELEVENLABS_API_KEY", CFG_SECRET, "",
            "expected xi-api-key (empty: any key is accepted)", api_key, 0, 0, false),
    CFG_OPT(struct sim_options, "webhook-secret", "ELEVENLABS_WEBHOOK_SECRET", CFG_SECRET, "",
            "HMAC secret for ElevenLabs-Signature on webhooks (empty: unsigned)", webhook_secret, 0,
            0, false),
    CFG_OPT(struct sim_options, "tool-secret", "INGRESS_TOOL_SECRET", CFG_SECRET, "",
            "X-Callpipe-Tool-Secret sent with the per-turn lines of calls that have a call_token "
            "(as an agent's tool configured with it would)",
            tool_secret, 0, 0, false),
    CFG_OPT(struct sim_options, "webhook-url", "ELEVENSIM_WEBHOOK_URL", CFG_STR, "",
            "ingress base URL; webhooks go to <url>/webhooks/elevenlabs/{transcription,post-call} "
            "(empty: calls play without webhooks)",
            webhook_url, 0, 0, false),
    CFG_OPT(struct sim_options, "latency-ms", "ELEVENSIM_LATENCY_MS", CFG_INT, "0",
            "delay before the outbound-call API answers", latency_ms, 0, 3600000, false),
    CFG_OPT(struct sim_options, "429-share", "ELEVENSIM_429_SHARE", CFG_STR, "0",
            "share (0..1) of outbound-call requests answered 429 with Retry-After", share_429, 0, 0,
            false),
    CFG_OPT(struct sim_options, "500-share", "ELEVENSIM_500_SHARE", CFG_STR, "0",
            "share answered 500", share_500, 0, 0, false),
    CFG_OPT(struct sim_options, "503-share", "ELEVENSIM_503_SHARE", CFG_STR, "0",
            "share answered 503", share_503, 0, 0, false),
    CFG_OPT(struct sim_options, "fail-share", "ELEVENSIM_FAIL_SHARE", CFG_STR, "0",
            "share refused for good: answered 200 {success: false, message}", share_success_false,
            0, 0, false),
    CFG_OPT(struct sim_options, "hang-share", "ELEVENSIM_HANG_SHARE", CFG_STR, "0",
            "share never answered (until --hang-ms): the client times out after sending",
            share_hang, 0, 0, false),
    CFG_OPT(struct sim_options, "placed-502-share", "ELEVENSIM_PLACED_502_SHARE", CFG_STR, "0",
            "share whose call is placed (it plays and sends its webhooks) but whose answer is a "
            "gateway's 502: the client cannot know the call exists",
            share_placed_502, 0, 0, false),
    CFG_OPT(struct sim_options, "placed-504-share", "ELEVENSIM_PLACED_504_SHARE", CFG_STR, "0",
            "the same, answered 504", share_placed_504, 0, 0, false),
    CFG_OPT(struct sim_options, "race-share", "ELEVENSIM_RACE_SHARE", CFG_STR, "0",
            "share of accepted calls whose first webhook is sent before the API answers",
            share_race, 0, 0, false),
    CFG_OPT(struct sim_options, "initiation-failure-share", "ELEVENSIM_INITIATION_FAILURE_SHARE",
            CFG_STR, "0",
            "share of accepted calls that send call_initiation_failure instead of turns",
            share_initiation_failure, 0, 0, false),
    CFG_OPT(struct sim_options, "no-post-call-share", "ELEVENSIM_NO_POST_CALL_SHARE", CFG_STR, "0",
            "share of accepted calls that never send the post-call webhook (sweeper tests)",
            share_no_post_call, 0, 0, false),
    CFG_OPT(struct sim_options, "turns", "ELEVENSIM_TURNS", CFG_INT, "4",
            "transcription turns per call (alternating agent, user)", turns, 0, 1000, false),
    CFG_OPT(struct sim_options, "turn-delay-ms", "ELEVENSIM_TURN_DELAY_MS", CFG_INT, "200",
            "delay between turns", turn_delay_ms, 0, 3600000, false),
    CFG_OPT(struct sim_options, "seed", "ELEVENSIM_SEED", CFG_INT, "1",
            "seed of the per-call choices (hash of seed and call_sid: reproducible)", seed, 0, 0,
            false),
    CFG_OPT(struct sim_options, "retry-after-s", "ELEVENSIM_RETRY_AFTER_S", CFG_INT, "1",
            "Retry-After sent with 429", retry_after_s, 0, 3600, false),
    CFG_OPT(struct sim_options, "hang-ms", "ELEVENSIM_HANG_MS", CFG_INT, "600000",
            "how long a hanging request is held before the connection is answered 504", hang_ms, 0,
            86400000, false),
    CFG_OPT(struct sim_options, "webhook-retries", "ELEVENSIM_WEBHOOK_RETRIES", CFG_INT, "3",
            "retries of a webhook answered with anything but 200 (like ElevenLabs)",
            webhook_retries, 0, 100, false),
    CFG_OPT(struct sim_options, "webhook-backoff-ms", "ELEVENSIM_WEBHOOK_BACKOFF_MS", CFG_INT,
            "500", "first webhook retry delay (doubles each retry)", webhook_backoff_ms, 0, 3600000,
            false),
    CFG_OPT(struct sim_options, "webhook-timeout-ms", "ELEVENSIM_WEBHOOK_TIMEOUT_MS", CFG_INT,
            "5000", "timeout of one webhook request", webhook_timeout_ms, 10, 600000, false),
    CFG_OPT(struct sim_options, "webhook-threads", "ELEVENSIM_WEBHOOK_THREADS", CFG_INT, "4",
            "threads sending webhooks (the API is never blocked by them)", webhook_threads, 1, 256,
            false),
    CFG_OPT_LOG_LEVEL(struct sim_options, log_level),
};

static const struct cfg_spec sim_spec = {
    .program = "elevensim",
    .usage = "[options]",
    .about = "A fake ElevenLabs for local runs and tests: POST /v1/convai/twilio/outbound-call, "
             "GET /v1/convai/conversations/{id}, scripted signed webhooks to the ingress, and "
             "knobs for latency and failures. Control: GET /sim/stats[?call_sid=], POST "
             "/sim/reset, GET|PUT /sim/config (any knob by name, plus per-call scripts "
             "{\"calls\": {\"<call_sid>\": {\"answers\": [\"429\", \"ok\"], \"mode\": "
             "\"race\"}}}; answers: ok 429 500 502 503 504 400 422 success_false hang placed_502 "
             "placed_504; modes: "
             "normal race initiation_failure no_post_call). State is in memory.",
    .options = sim_options_table,
    .noptions = sizeof sim_options_table / sizeof sim_options_table[0],
};

const struct cfg_spec *sim_conf_spec(void)
{
	return &sim_spec;
}
