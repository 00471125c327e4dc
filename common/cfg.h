/* cfg: one option table per service drives env vars, --long-options, --help and --dump-config. */
#ifndef CALLPIPE_CFG_H
#define CALLPIPE_CFG_H

#include <stdbool.h>
#include <stddef.h>

enum cfg_type {
	CFG_STR,    /* char * field, owned by the config (cfg_free) */
	CFG_SECRET, /* char * field; redacted in --dump-config, registered with log_add_secret */
	CFG_INT,    /* long long field, checked against [min, max] */
	CFG_BOOL,   /* bool field: true/false/1/0/yes/no/on/off; the flag alone means true */
};

struct cfg_option {
	const char *name; /* long option without dashes, e.g. "kafka-brokers" */
	const char *env;  /* environment variable, e.g. "KAFKA_BROKERS"; NULL for flag-only */
	enum cfg_type type;
	const char *def; /* default as text; NULL = unset (NULL string / 0) */
	const char *help;
	size_t offset;      /* offsetof(struct your_config, field) */
	long long min, max; /* CFG_INT bounds (both 0: unbounded) */
	bool required;      /* error if still unset/empty after defaults, env and flags */
};

/* One designated-initialiser struct cfg_option for a field of conf_type (e.g. struct x_config).
 * lo/hi are the CFG_INT bounds (both 0: unbounded). */
#define CFG_OPT(conf_type, name_, env_, type_, def_, help_, field_, lo, hi, req)                   \
	{                                                                                          \
		.name = (name_), .env = (env_), .type = (type_), .def = (def_), .help = (help_),   \
		.offset = offsetof(conf_type, field_), .min = (lo), .max = (hi), .required = (req) \
	}

/* The options every service shares (design.md §7): one name, env, default and help text each. */
#define CFG_OPT_KAFKA_BROKERS(conf_type, field)                             \
	CFG_OPT(conf_type, "kafka-brokers", "KAFKA_BROKERS", CFG_STR, NULL, \
	        "Kafka bootstrap servers (host:port,...)", field, 0, 0, true)
#define CFG_OPT_KAFKA_TOPIC_PREFIX(conf_type, field)                                \
	CFG_OPT(conf_type, "kafka-topic-prefix", "KAFKA_TOPIC_PREFIX", CFG_STR, "", \
	        "prefix prepended to every topic name", field, 0, 0, false)
#define CFG_OPT_KAFKA_SESSION_TIMEOUT_MS(conf_type, field)                                        \
	CFG_OPT(conf_type, "kafka-session-timeout-ms", "KAFKA_SESSION_TIMEOUT_MS", CFG_INT,       \
	        "10000",                                                                          \
	        "consumer session.timeout.ms: how fast a dead consumer's partitions move to the " \
	        "others in its group",                                                            \
	        field, 100, 3600000, false)
#define CFG_OPT_KAFKA_CONFIG_FILE(conf_type, field)                                               \
	CFG_OPT(conf_type, "kafka-config-file", "KAFKA_CONFIG_FILE", CFG_STR, NULL,               \
	        "librdkafka properties file (key=value lines: security.protocol, sasl.*, ssl.*) " \
	        "applied to every Kafka client of the service; values are never logged",          \
	        field, 0, 0, false)
#define CFG_OPT_DATABASE_URL(conf_type, field)                               \
	CFG_OPT(conf_type, "database-url", "DATABASE_URL", CFG_SECRET, NULL, \
	        "libpq URL or conninfo of Postgres", field, 0, 0, true)
#define CFG_OPT_DB_SCHEMA(conf_type, field)                                                       \
	CFG_OPT(conf_type, "db-schema", "DB_SCHEMA", CFG_STR, "dev", "schema holding the tables", \
	        field, 0, 0, true)
/* def: the service's own "host:port" default. */
#define CFG_OPT_HTTP_LISTEN(conf_type, field, def)                                          \
	CFG_OPT(conf_type, "http-listen", "HTTP_LISTEN", CFG_STR, def,                      \
	        "host:port of the HTTP server (the service's API if it has one, /healthz, " \
	        "/readyz and /metrics; port 0 picks a free port, logged at start)",         \
	        field, 0, 0, true)
#define CFG_OPT_LOG_LEVEL(conf_type, field)                           \
	CFG_OPT(conf_type, "log-level", "LOG_LEVEL", CFG_STR, "info", \
	        "error, warn, info or debug (JSON lines on stderr)", field, 0, 0, true)

struct cfg_spec {
	const char *program; /* e.g. "dialer" */
	const char *usage;   /* one line after "usage: program", e.g. "[options]" */
	const char *about;   /* a paragraph printed by --help */
	const struct cfg_option *options;
	size_t noptions;
};

enum cfg_result {
	CFG_OK = 0,      /* config filled; *argi is the index of the first positional argument */
	CFG_EXIT_OK = 1, /* --help or --dump-config was printed: exit 0 */
	CFG_ERROR = -1,  /* errstr names the setting: exit 2 */
};

/* Fills conf from defaults < environment (an empty variable counts as unset) < flags.
 * Adds --help and --dump-config. Positional arguments are left at argv[*argi...]. */
enum cfg_result cfg_load(const struct cfg_spec *spec, void *conf, int argc, char **argv, int *argi,
                         char *errstr, size_t errstr_size);

/* The start every main shares once its config is loaded (r: what its loader returned).
 * CFG_EXIT_OK: sets *exit_code 0, returns -1. CFG_ERROR: prints "program: errstr" on stderr,
 * sets *exit_code 2, returns -1. CFG_OK: log_init(program, log_level parsed, info if it does not
 * parse) and returns 0: go on. Never exits; main() exits with *exit_code after its cleanup. */
__attribute__((warn_unused_result)) int cfg_start(enum cfg_result r, const char *program,
                                                  const char *log_level, const char *errstr,
                                                  int *exit_code);

/* Writes "name=value" lines (secrets as "***", URLs with passwords redacted) to fp (FILE *). */
void cfg_dump(const struct cfg_spec *spec, const void *conf, void *fp);

/* Frees the strings cfg_load allocated in conf. Accepts NULL conf. */
void cfg_free(const struct cfg_spec *spec, void *conf);

/* Splits "host:port" (port required, host may be empty = all interfaces). Returns 0 or -1. */
int cfg_parse_listen(const char *s, char *host, size_t host_size, unsigned *port);

/* The one check of a host:port setting: 0, or -1 with errstr "SETTING: 'value' is not host:port"
 * (setting is the environment variable's name). */
__attribute__((warn_unused_result)) int cfg_check_listen(const char *setting, const char *listen,
                                                         char *errstr, size_t errstr_size);

/* Validates the settings every service shares, once, with one message format ("LOG_LEVEL:
 * 'x' is not one of error, warn, info, debug"; "HTTP_LISTEN: 'x' is not host:port"). A NULL
 * http_listen is not checked (a service without one). Returns 0, or -1 with errstr. */
__attribute__((warn_unused_result)) int cfg_check_shared(const char *log_level,
                                                         const char *http_listen, char *errstr,
                                                         size_t errstr_size);

/* Copies a libpq URL/conninfo into out with any password replaced by "***". */
void cfg_redact_url(const char *url, char *out, size_t out_size);

#endif
