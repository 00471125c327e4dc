/* config: the dialer's option table (env + --long-option + --help) and its validation. */
#include "config.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

static const struct cfg_option dialer_options[] = {
    CFG_OPT_KAFKA_BROKERS(struct dialer_config, kafka_brokers),
    CFG_OPT_KAFKA_TOPIC_PREFIX(struct dialer_config, topic_prefix),
    CFG_OPT_KAFKA_CONFIG_FILE(struct dialer_config, kafka_config_file),
    CFG_OPT(struct dialer_config, "group", "DIALER_GROUP", CFG_STR, "dialer",
            "consumer group on calls.requested (dialers in one group share its partitions)", group,
            0, 0, true),
    CFG_OPT_KAFKA_SESSION_TIMEOUT_MS(struct dialer_config, session_timeout_ms),
    CFG_OPT_DATABASE_URL(struct dialer_config, database_url),
    CFG_OPT_DB_SCHEMA(struct dialer_config, db_schema),
    CFG_OPT_HTTP_LISTEN(struct dialer_config, http_listen, "0.0.0.0:9101"),
    CFG_OPT(struct dialer_config, "elevenlabs-base-url", "ELEVENLABS_BASE_URL", CFG_STR,
            "https://api.elevenlabs.io",
            "ElevenLabs API base URL (elevensim: http://127.0.0.1:8090)", el_base_url, 0, 0, true),
    CFG_OPT(struct dialer_config, "elevenlabs-api-key", "ELEVENLABS_API_KEY", CFG_SECRET, NULL,
            "ElevenLabs API key, sent as xi-api-key", el_api_key, 0, 0, true),
    CFG_OPT(struct dialer_config, "elevenlabs-agent-id", "ELEVENLABS_AGENT_ID", CFG_STR, NULL,
            "the Conversational AI agent that places the calls", el_agent_id, 0, 0, true),
    CFG_OPT(struct dialer_config, "elevenlabs-phone-number-id", "ELEVENLABS_PHONE_NUMBER_ID",
            CFG_STR, NULL, "the agent's Twilio phone number id (agent_phone_number_id)",
            el_phone_number_id, 0, 0, true),
    CFG_OPT(struct dialer_config, "dispatcher-name", "DIALER_DISPATCHER_NAME", CFG_STR, "dispatch",
            "name the agent introduces itself with (dynamic variable dispatcher_name)",
            dispatcher_name, 0, 0, true),
    CFG_OPT(struct dialer_config, "transfer-number", "DIALER_TRANSFER_NUMBER", CFG_STR, "",
            "number the agent transfers to when the driver asks for a human (transfer_to)",
            transfer_number, 0, 0, false),
    CFG_OPT(struct dialer_config, "call-token-secret", "CALL_TOKEN_SECRET", CFG_SECRET, NULL,
            "key of the per-call tool tokens (the ingress's CALL_TOKEN_SECRET): each call gets "
            "the dynamic variable call_token, which the agent's tool sends back in "
            "X-Callpipe-Call-Token; unset: no call_token",
            call_token_secret, 0, 0, false),
    CFG_OPT(struct dialer_config, "call-token-ttl-s", "DIALER_CALL_TOKEN_TTL_S", CFG_INT, "21600",
            "how long a call token is accepted after the dialer read the call request "
            "(seconds): longer than any dial plus conversation",
            call_token_ttl_s, 60, 2592000, false),
    CFG_OPT(struct dialer_config, "concurrency", "DIALER_CONCURRENCY", CFG_INT, "50",
            "most outbound-call requests in flight at once (ElevenLabs limits concurrent calls)",
            concurrency, 1, 10000, false),
    CFG_OPT(struct dialer_config, "rate-per-sec", "DIALER_RATE_PER_SEC", CFG_INT, "0",
            "most outbound-call requests started per second, retries included (0: unlimited)",
            rate_per_sec, 0, 100000, false),
    CFG_OPT(struct dialer_config, "max-attempts", "DIALER_MAX_ATTEMPTS", CFG_INT, "5",
            "HTTP attempts per call for retryable failures (connect errors before sending, 429, "
            "503)",
            max_attempts, 1, 50, false),
    CFG_OPT(struct dialer_config, "request-timeout-ms", "DIALER_REQUEST_TIMEOUT_MS", CFG_INT,
            "30000",
            "whole outbound-call request timeout; after the request was sent the outcome is "
            "unknown (never retried; the post-call webhook or the sweeper settles the call)",
            request_timeout_ms, 100, 600000, false),
    CFG_OPT(struct dialer_config, "connect-timeout-ms", "DIALER_CONNECT_TIMEOUT_MS", CFG_INT,
            "5000", "TCP/TLS connect timeout (a connect failure is retried: nothing was sent)",
            connect_timeout_ms, 10, 600000, false),
    CFG_OPT(struct dialer_config, "retry-base-ms", "DIALER_RETRY_BASE_MS", CFG_INT, "500",
            "first retry delay bound (exponential backoff with jitter)", retry_base_ms, 1, 600000,
            false),
    CFG_OPT(struct dialer_config, "retry-max-ms", "DIALER_RETRY_MAX_MS", CFG_INT, "10000",
            "cap on one retry delay", retry_max_ms, 1, 3600000, false),
    CFG_OPT(struct dialer_config, "retry-after-max-s", "DIALER_RETRY_AFTER_MAX_S", CFG_INT, "60",
            "cap on an honoured Retry-After (seconds)", retry_after_max_s, 0, 3600, false),
    CFG_OPT(struct dialer_config, "backlog", "DIALER_BACKLOG", CFG_INT, "200",
            "messages fetched ahead of free dial slots; fetching pauses above it", backlog, 1,
            100000, false),
    CFG_OPT(struct dialer_config, "commit-interval-ms", "DIALER_COMMIT_INTERVAL_MS", CFG_INT, "200",
            "how often handled offsets are committed (also at rebalance and shutdown)",
            commit_interval_ms, 0, 60000, false),
    CFG_OPT(struct dialer_config, "db-retry-max-ms", "DIALER_DB_RETRY_MAX_MS", CFG_INT, "5000",
            "database down: consuming stops and reconnects back off up to this", db_retry_max_ms,
            10, 600000, false),
    CFG_OPT(struct dialer_config, "drain-timeout-ms", "DIALER_DRAIN_TIMEOUT_MS", CFG_INT, "10000",
            "on SIGTERM, how long in-flight dials may finish before they are ended (outcome "
            "unknown: left to the post-call webhook or the sweeper)",
            drain_timeout_ms, 0, 600000, false),
    CFG_OPT(struct dialer_config, "sweeper", "DIALER_SWEEPER", CFG_BOOL, "true",
            "run the stuck-call sweeper (safe in every dialer: calls are leased)", sweeper, 0, 0,
            false),
    CFG_OPT(struct dialer_config, "sweep-age-s", "DIALER_SWEEP_AGE_S", CFG_INT, "1800",
            "calls in_progress older than this are checked against the conversations API (one "
            "without conversation_id only once its dial cannot still be running)",
            sweep_age_s, 1, 31536000, false),
    CFG_OPT(struct dialer_config, "sweep-interval-s", "DIALER_SWEEP_INTERVAL_S", CFG_INT, "60",
            "seconds between sweeps (a call still running is re-checked after 3 intervals)",
            sweep_interval_s, 1, 86400, false),
    CFG_OPT(struct dialer_config, "sweep-batch", "DIALER_SWEEP_BATCH", CFG_INT, "100",
            "calls leased per sweep round", sweep_batch, 1, 10000, false),
    CFG_OPT(struct dialer_config, "sweep-max-age-s", "DIALER_SWEEP_MAX_AGE_S", CFG_INT, "86400",
            "a call still not finished after this is failed with sweep_max_age (0: never)",
            sweep_max_age_s, 0, 31536000, false),
    CFG_OPT_LOG_LEVEL(struct dialer_config, log_level),
};

static const struct cfg_spec dialer_spec = {
    .program = "dialer",
    .usage = "[options]",
    .about = "Consumes calls.requested and places each requested call exactly once through the "
             "ElevenLabs outbound-call API (or elevensim): the call row and a durable dial "
             "claim are written before the request leaves; offsets are committed only after "
             "the outcome is stored. Also sweeps calls stuck in_progress. Every option can be "
             "set by its environment variable; flags win.",
    .options = dialer_options,
    .noptions = sizeof dialer_options / sizeof dialer_options[0],
};

const struct cfg_spec *dialer_config_spec(void)
{
	return &dialer_spec;
}

long long dialer_config_max_dial_ms(const struct dialer_config *conf)
{
	long long wait = conf->retry_max_ms;

	if (conf->retry_after_max_s * 1000 > wait)
		wait = conf->retry_after_max_s * 1000;
	return conf->max_attempts * conf->request_timeout_ms + (conf->max_attempts - 1) * wait;
}

int dialer_config_validate(const struct dialer_config *conf, char *errstr, size_t errstr_size)
{
	if (cfg_check_shared(conf->log_level, conf->http_listen, errstr, errstr_size))
		return -1;
	if (strncmp(conf->el_base_url, "http://", 7) != 0 &&
	    strncmp(conf->el_base_url, "https://", 8) != 0) {
		snprintf(errstr, errstr_size,
		         "ELEVENLABS_BASE_URL: must start with http:// or https://");
		return -1;
	}
	if (conf->connect_timeout_ms > conf->request_timeout_ms) {
		snprintf(
		    errstr, errstr_size,
		    "DIALER_CONNECT_TIMEOUT_MS (%lld) must not exceed DIALER_REQUEST_TIMEOUT_MS "
		    "(%lld)",
		    conf->connect_timeout_ms, conf->request_timeout_ms);
		return -1;
	}
	if (conf->retry_base_ms > conf->retry_max_ms) {
		snprintf(errstr, errstr_size,
		         "DIALER_RETRY_BASE_MS (%lld) must not exceed DIALER_RETRY_MAX_MS (%lld)",
		         conf->retry_base_ms, conf->retry_max_ms);
		return -1;
	}
	if (conf->call_token_secret && conf->call_token_secret[0] &&
	    strlen(conf->call_token_secret) < 16) {
		snprintf(errstr, errstr_size, "CALL_TOKEN_SECRET: shorter than 16 characters");
		return -1;
	}
	if (conf->sweep_max_age_s && conf->sweep_max_age_s < conf->sweep_age_s) {
		snprintf(
		    errstr, errstr_size,
		    "DIALER_SWEEP_MAX_AGE_S (%lld) must be 0 or at least DIALER_SWEEP_AGE_S (%lld)",
		    conf->sweep_max_age_s, conf->sweep_age_s);
		return -1;
	}
	return 0;
}

enum cfg_result dialer_config_load(struct dialer_config *conf, int argc, char **argv, char *errstr,
                                   size_t errstr_size)
{
	enum cfg_result r;
	int argi = 0;

	memset(conf, 0, sizeof *conf);
	r = cfg_load(&dialer_spec, conf, argc, argv, &argi, errstr, errstr_size);
	if (r != CFG_OK)
		return r;
	if (argi < argc) {
		snprintf(errstr, errstr_size, "unexpected argument '%s' (see --help)", argv[argi]);
		return CFG_ERROR;
	}
	if (dialer_config_validate(conf, errstr, errstr_size))
		return CFG_ERROR;
	return CFG_OK;
}

void dialer_config_free(struct dialer_config *conf)
{
	cfg_free(&dialer_spec, conf);
}
