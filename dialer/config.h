/* config: the dialer's settings (env + --long-option + --help), defaults and validation. */
#ifndef CALLPIPE_DIALER_CONFIG_H
#define CALLPIPE_DIALER_CONFIG_H

#include "cfg.h"

#include <stdbool.h>
#include <stddef.h>

/* Filled by dialer_config_load; strings are owned by the config (dialer_config_free). */
struct dialer_config {
	char *kafka_brokers, *topic_prefix, *group;
	char *kafka_config_file;
	long long session_timeout_ms;
	char *database_url, *db_schema;
	char *http_listen, *log_level;
	char *el_base_url, *el_api_key, *el_agent_id, *el_phone_number_id;
	char *dispatcher_name, *transfer_number;
	char *call_token_secret; /* NULL: no call_token dynamic variable */
	long long call_token_ttl_s;
	long long concurrency, rate_per_sec, max_attempts;
	long long request_timeout_ms, connect_timeout_ms;
	long long retry_base_ms, retry_max_ms, retry_after_max_s;
	long long backlog, commit_interval_ms, db_retry_max_ms, drain_timeout_ms;
	bool sweeper;
	long long sweep_age_s, sweep_interval_s, sweep_batch, sweep_max_age_s;
};

/* The option table (for --help, --dump-config and tests). */
const struct cfg_spec *dialer_config_spec(void);

/* Loads defaults < env < flags and validates. CFG_ERROR: errstr names the setting (exit 2);
 * CFG_EXIT_OK: --help/--dump-config printed (exit 0). conf must be freed with
 * dialer_config_free whatever the result. */
enum cfg_result dialer_config_load(struct dialer_config *conf, int argc, char **argv, char *errstr,
                                   size_t errstr_size);

/* Cross-setting checks (also run by dialer_config_load). Returns 0 or -1 with errstr. */
__attribute__((warn_unused_result)) int dialer_config_validate(const struct dialer_config *conf,
                                                               char *errstr, size_t errstr_size);

/* Longest time one dial can keep a call row without an answer: every attempt timing out plus
 * the longest waits between them (ms). The sweeper leaves claimed calls without a
 * conversation_id alone until their claim is older than this. */
long long dialer_config_max_dial_ms(const struct dialer_config *conf);

void dialer_config_free(struct dialer_config *conf);

#endif
