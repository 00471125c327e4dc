/* config: the ingress settings (one cfg table), their validation and the auth opt-in rules. */
#ifndef CALLPIPE_INGRESS_CONFIG_H
#define CALLPIPE_INGRESS_CONFIG_H

#include "cfg.h"

#include <stdbool.h>
#include <stddef.h>

#define INGRESS_THREADS_MAX 64 /* HTTP threads (each its own daemon and listening socket) */

struct ingress_config {
	char *http_listen;
	char *kafka_brokers;
	char *kafka_topic_prefix;
	char *kafka_config_file;
	char *database_url; /* may be NULL: GET /calls then answers 503 */
	char *db_schema;
	char *api_token;      /* secret; NULL = none */
	char *webhook_secret; /* secret; NULL = none */
	char *tool_secret;    /* secret; NULL = none: the tool's shared header, with a call token */
	char *call_token_secret; /* secret; NULL = no tool path: key of the per-call tool tokens */
	char *admin_listen;      /* NULL = none: /metrics stays on http_listen */
	char *console_dir;       /* NULL = the built-in default (admin.h) */
	long long admin_connection_limit;
	long long events_max_subscribers; /* GET /events: streams open at once */
	long long events_queue;           /* per stream: events waiting to be written ... */
	long long events_queue_bytes;     /* ... and their bytes */
	long long events_ring;            /* recent events kept for Last-Event-ID ... */
	long long events_ring_bytes;      /* ... and their bytes */
	long long events_max_lines;       /* lines one notification may name */
	long long events_ping_ms;
	bool allow_unauthenticated;
	bool allow_unsigned_webhooks;
	long long max_body;
	long long max_post_call_body;
	long long delivery_timeout_ms;
	long long retry_after_s;
	long long connection_timeout_s;
	long long connection_limit;
	long long connection_memory;
	long long connections_per_address; /* 0: no limit */
	long long header_timeout_ms;
	long long body_timeout_ms;
	long long body_min_rate; /* bytes per second */
	long long body_budget;   /* bytes of request bodies held at once */
	long long threads;
	long long sig_max_age_s;
	long long sig_max_skew_s;
	long long drain_timeout_ms;
	long long linger_us;
	long long db_wait_ms;
	long long console_advance_s; /* 0: off; the rolling window's periodic advance */
	char *log_level;
};

/* The option table behind --help; exposed for tests and cfg_dump. */
const struct cfg_spec *ingress_config_spec(void);

/* Loads defaults < environment < argv, then validates (ingress_config_validate). Returns CFG_OK,
 * CFG_EXIT_OK (--help/--dump-config printed) or CFG_ERROR with errstr naming the setting.
 * The caller frees with ingress_config_free in every case. */
enum cfg_result ingress_config_load(struct ingress_config *conf, int argc, char **argv,
                                    char *errstr, size_t errstr_size);

/* Cross-field checks: listen addresses, log level, limits, and the secure-by-default rule (no
 * token without INGRESS_ALLOW_UNAUTHENTICATED, no webhook secret without
 * INGRESS_ALLOW_UNSIGNED_WEBHOOKS, no tool secret without CALL_TOKEN_SECRET). Returns 0 or -1
 * with errstr. */
__attribute__((warn_unused_result)) int ingress_config_validate(const struct ingress_config *conf,
                                                                char *errstr, size_t errstr_size);

/* Frees the strings of conf (NULL ok). */
void ingress_config_free(struct ingress_config *conf);

#endif
