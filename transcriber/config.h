/* config: the transcriber's settings (env + --long-option + --help), defaults and validation. */
#ifndef CALLPIPE_TRANSCRIBER_CONFIG_H
#define CALLPIPE_TRANSCRIBER_CONFIG_H

#include "cfg.h"

#include <stddef.h>

/* Filled by tr_config_load; strings are owned by the config (tr_config_free). */
struct tr_config {
	char *kafka_brokers, *topic_prefix, *group;
	char *kafka_config_file;
	long long session_timeout_ms;
	char *database_url, *db_schema;
	char *http_listen, *log_level;
	long long batch_max, batch_wait_ms, fetch_queue_kb;
	long long unknown_retry_max_ms, missing_conversation_wait_ms, post_call_gate_ms;
	long long retry_base_ms, retry_max_ms, db_retry_max_ms;
	long long park_max, drain_timeout_ms, dlq_timeout_ms, commit_interval_ms;
	/* replay and redrive */
	char *from, *to, *reason, *redrive_group;
	long long idle_timeout_ms, replay_wait_ms;
	bool no_dead_letter;
};

/* The option table (for --help, --dump-config and tests). */
const struct cfg_spec *tr_config_spec(void);

/* Loads defaults < env < flags and validates. CFG_ERROR: errstr names the setting (exit 2);
 * CFG_EXIT_OK: --help/--dump-config printed (exit 0). *argi: first positional argument (the
 * subcommand). conf must be freed with tr_config_free whatever the result. */
enum cfg_result tr_config_load(struct tr_config *conf, int argc, char **argv, int *argi,
                               char *errstr, size_t errstr_size);

void tr_config_free(struct tr_config *conf);

#endif
