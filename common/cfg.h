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

/* Writes "name=value" lines (secrets as "***", URLs with passwords redacted) to fp (FILE *). */
void cfg_dump(const struct cfg_spec *spec, const void *conf, void *fp);

/* Frees the strings cfg_load allocated in conf. Accepts NULL conf. */
void cfg_free(const struct cfg_spec *spec, void *conf);

/* Splits "host:port" (port required, host may be empty = all interfaces). Returns 0 or -1. */
int cfg_parse_listen(const char *s, char *host, size_t host_size, unsigned *port);

/* Copies a libpq URL/conninfo into out with any password replaced by "***". */
void cfg_redact_url(const char *url, char *out, size_t out_size);

#endif
