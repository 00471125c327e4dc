/* config: the transcriber's option table (env + --long-option + --help) and its validation. */
#include "config.h"

#include "log.h"
#include "timeutil.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const struct cfg_option tr_options[] = {
    CFG_OPT_KAFKA_BROKERS(struct tr_config, kafka_brokers),
    CFG_OPT_KAFKA_TOPIC_PREFIX(struct tr_config, topic_prefix),
    CFG_OPT_KAFKA_CONFIG_FILE(struct tr_config, kafka_config_file),
    CFG_OPT(struct tr_config, "group", "TRANSCRIBER_GROUP", CFG_STR, "transcriber",
            "consumer group on webhooks.transcription and webhooks.post_call", group, 0, 0, true),
    CFG_OPT_KAFKA_SESSION_TIMEOUT_MS(struct tr_config, session_timeout_ms),
    CFG_OPT_DATABASE_URL(struct tr_config, database_url),
    CFG_OPT_DB_SCHEMA(struct tr_config, db_schema),
    CFG_OPT_HTTP_LISTEN(struct tr_config, http_listen, "0.0.0.0:9102"),
    CFG_OPT_LOG_LEVEL(struct tr_config, log_level),
    CFG_OPT(struct tr_config, "batch-max", "TRANSCRIBER_BATCH_MAX", CFG_INT, "500",
            "most messages consumed into one database transaction", batch_max, 1, 100000, false),
    CFG_OPT(struct tr_config, "fetch-queue-kb", "TRANSCRIBER_FETCH_QUEUE_KB", CFG_INT, "256",
            "KiB of messages fetched ahead of processing (librdkafka's "
            "queued.max.messages.kbytes; up to about twice this is held, at ~7 KiB of memory "
            "per KiB of messages), kept filled while a backlog lasts; 0: librdkafka's default, "
            "64 MiB",
            fetch_queue_kb, 0, 2097151, false),
    CFG_OPT(struct tr_config, "batch-wait-ms", "TRANSCRIBER_BATCH_WAIT_MS", CFG_INT, "20",
            "longest wait for a batch to fill once its first message arrived", batch_wait_ms, 0,
            10000, false),
    CFG_OPT(struct tr_config, "unknown-retry-max-ms", "TRANSCRIBER_UNKNOWN_RETRY_MAX_MS", CFG_INT,
            "30000",
            "how long a call_sid with no call row is retried before dead-lettering "
            "(unknown_call_sid)",
            unknown_retry_max_ms, 0, 86400000, false),
    CFG_OPT(struct tr_config, "missing-conversation-wait-ms",
            "TRANSCRIBER_MISSING_CONVERSATION_WAIT_MS", CFG_INT, "120000",
            "how long lines wait for the dialer to record the call's conversation_id before "
            "dead-lettering (missing_conversation_id)",
            missing_conversation_wait_ms, 0, 86400000, false),
    CFG_OPT(struct tr_config, "post-call-gate-ms", "TRANSCRIBER_POST_CALL_GATE_MS", CFG_INT,
            "30000",
            "longest a post-call waits for its call's per-turn lines to be read before it is "
            "applied anyway",
            post_call_gate_ms, 0, 86400000, false),
    CFG_OPT(struct tr_config, "retry-base-ms", "TRANSCRIBER_RETRY_BASE_MS", CFG_INT, "100",
            "first retry delay of a waiting call (doubles per retry, with jitter)", retry_base_ms,
            1, 600000, false),
    CFG_OPT(struct tr_config, "retry-max-ms", "TRANSCRIBER_RETRY_MAX_MS", CFG_INT, "2000",
            "cap on one retry delay of a waiting call", retry_max_ms, 1, 600000, false),
    CFG_OPT(struct tr_config, "db-retry-max-ms", "TRANSCRIBER_DB_RETRY_MAX_MS", CFG_INT, "5000",
            "database down: consumption pauses and retries back off up to this", db_retry_max_ms,
            10, 600000, false),
    CFG_OPT(struct tr_config, "park-max", "TRANSCRIBER_PARK_MAX", CFG_INT, "10000",
            "most messages held in memory waiting for their call; above it consumption pauses",
            park_max, 1, 10000000, false),
    CFG_OPT(struct tr_config, "drain-timeout-ms", "TRANSCRIBER_DRAIN_TIMEOUT_MS", CFG_INT, "10000",
            "on SIGTERM, how long the batch in flight may keep retrying before exit (uncommitted "
            "messages are read again by the next owner)",
            drain_timeout_ms, 0, 600000, false),
    CFG_OPT(struct tr_config, "commit-interval-ms", "TRANSCRIBER_COMMIT_INTERVAL_MS", CFG_INT,
            "200",
            "how often handled offsets are committed (also when draining); a crash re-reads at "
            "most this much, which the idempotent writes absorb",
            commit_interval_ms, 0, 60000, false),
    CFG_OPT(struct tr_config, "dlq-timeout-ms", "TRANSCRIBER_DLQ_TIMEOUT_MS", CFG_INT, "10000",
            "wait for the broker to acknowledge one dead-letter", dlq_timeout_ms, 100, 600000,
            false),
    CFG_OPT(struct tr_config, "from", NULL, CFG_STR, NULL,
            "replay: start time (ISO-8601, e.g. 2025-11-21T10:00:00Z)", from, 0, 0, false),
    CFG_OPT(struct tr_config, "to", NULL, CFG_STR, NULL,
            "replay: end time (ISO-8601; default: now)", to, 0, 0, false),
    CFG_OPT(struct tr_config, "replay-wait-ms", "TRANSCRIBER_REPLAY_WAIT_MS", CFG_INT, "0",
            "replay: how long a line of an unknown call or of a call without conversation_id waits "
            "(the dials of a replayed window are long over)",
            replay_wait_ms, 0, 86400000, false),
    CFG_OPT(struct tr_config, "no-dead-letter", NULL, CFG_BOOL, "false",
            "replay: count what cannot be stored instead of dead-lettering it again (the first run "
            "already did)",
            no_dead_letter, 0, 0, false),
    CFG_OPT(struct tr_config, "reason", NULL, CFG_STR, NULL,
            "redrive: only messages dead-lettered with this reason (e.g. missing_conversation_id)",
            reason, 0, 0, false),
    CFG_OPT(
        struct tr_config, "redrive-group", "TRANSCRIBER_REDRIVE_GROUP", CFG_STR, NULL,
        "redrive: consumer group on the dead-letter topics (default <group>-redrive[-<reason>])",
        redrive_group, 0, 0, false),
    CFG_OPT(struct tr_config, "idle-timeout-ms", "TRANSCRIBER_IDLE_TIMEOUT_MS", CFG_INT, "15000",
            "replay/redrive: give up when nothing arrives for this long before the end is reached",
            idle_timeout_ms, 100, 3600000, false),
};

static const struct cfg_spec tr_spec = {
    .program = "transcriber",
    .usage = "[options] | replay --from TIME [--to TIME] [options] | redrive [--reason R] "
             "[options]",
    .about = "Consumes webhooks.transcription and webhooks.post_call and stores every spoken "
             "line once, in order, with sequence numbers 1..N per conversation; sets final call "
             "statuses from post-call webhooks. 'replay' re-reads the webhook topics for a time "
             "window through the same code (idempotent: already stored lines are skipped) and "
             "prints a summary; 'redrive' moves dead-lettered messages back to their source "
             "topic, once each. Health and metrics on HTTP_LISTEN.",
    .options = tr_options,
    .noptions = sizeof tr_options / sizeof tr_options[0],
};

const struct cfg_spec *tr_config_spec(void)
{
	return &tr_spec;
}

static int tr_config_validate(const struct tr_config *conf, char *errstr, size_t errstr_size)
{
	int64_t ms;

	if (cfg_check_shared(conf->log_level, conf->http_listen, errstr, errstr_size))
		return -1;
	if (conf->retry_max_ms < conf->retry_base_ms) {
		snprintf(errstr, errstr_size,
		         "TRANSCRIBER_RETRY_MAX_MS must be >= "
		         "TRANSCRIBER_RETRY_BASE_MS");
		return -1;
	}
	if (conf->from && time_parse_iso_ms(conf->from, &ms) < 0) {
		snprintf(errstr, errstr_size, "--from: '%s' is not an ISO-8601 time", conf->from);
		return -1;
	}
	if (conf->to && time_parse_iso_ms(conf->to, &ms) < 0) {
		snprintf(errstr, errstr_size, "--to: '%s' is not an ISO-8601 time", conf->to);
		return -1;
	}
	return 0;
}

enum cfg_result tr_config_load(struct tr_config *conf, int argc, char **argv, int *argi,
                               char *errstr, size_t errstr_size)
{
	enum cfg_result r;

	memset(conf, 0, sizeof *conf);
	r = cfg_load(&tr_spec, conf, argc, argv, argi, errstr, errstr_size);
	if (r != CFG_OK)
		return r;
	return tr_config_validate(conf, errstr, errstr_size) < 0 ? CFG_ERROR : CFG_OK;
}

void tr_config_free(struct tr_config *conf)
{
	cfg_free(&tr_spec, conf);
}
