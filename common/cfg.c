/* cfg: table-driven configuration: defaults < environment < getopt_long flags, --help,
 * --dump-config. */
#include "cfg.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_OPT_HELP 1
#define CFG_OPT_DUMP 2
#define CFG_OPT_BASE 256

/* Where an option's effective text came from; only the effective text is parsed. */
struct cfg_raw {
	const char *text; /* borrowed: the table, environ or argv */
	bool set;
};

/* "KAFKA_BROKERS (--kafka-brokers)" or "--name" for flag-only options. */
static void cfg_label(const struct cfg_option *o, char *buf, size_t size)
{
	if (o->env != NULL)
		snprintf(buf, size, "%s (--%s)", o->env, o->name);
	else
		snprintf(buf, size, "--%s", o->name);
}

static int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* A spelled-out boolean ("false", "on", ...): one a bool flag may take as its next argument. */
static bool cfg_bool_word(const char *s)
{
	bool ignored;

	return s[0] != '\0' && (s[0] < '0' || s[0] > '9') && cfg_parse_bool(s, &ignored) == 0;
}

static int cfg_parse_int(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || isspace((unsigned char)*s))
		return -1;
	return 0;
}

/* Stores one option's effective text into conf. Returns 0, or -1 with errstr. */
static int cfg_apply(const struct cfg_option *o, const struct cfg_raw *raw, void *conf,
                     char *errstr, size_t errstr_size)
{
	char *field = (char *)conf + o->offset;
	char label[160];

	cfg_label(o, label, sizeof label);
	switch (o->type) {
	case CFG_STR:
	case CFG_SECRET: {
		char **sp = (char **)(void *)field;

		if (raw->set && raw->text != NULL) {
			*sp = strdup(raw->text);
			if (*sp == NULL) {
				snprintf(errstr, errstr_size, "%s: out of memory", label);
				return -1;
			}
		}
		if (o->required && (*sp == NULL || **sp == '\0')) {
			snprintf(errstr, errstr_size, "%s is required", label);
			return -1;
		}
		return 0;
	}
	case CFG_INT: {
		long long *ip = (long long *)(void *)field;
		long long v = 0;

		*ip = 0;
		if (!raw->set || raw->text == NULL) {
			if (o->required) {
				snprintf(errstr, errstr_size, "%s is required", label);
				return -1;
			}
			return 0;
		}
		if (cfg_parse_int(raw->text, &v) < 0) {
			/* Secrets never get here: only CFG_SECRET values are secret. */
			snprintf(errstr, errstr_size, "%s: expected an integer, got '%.64s'", label,
			         raw->text);
			return -1;
		}
		if ((o->min != 0 || o->max != 0) && (v < o->min || v > o->max)) {
			snprintf(errstr, errstr_size, "%s: %lld is out of range [%lld, %lld]",
			         label, v, o->min, o->max);
			return -1;
		}
		*ip = v;
		return 0;
	}
	case CFG_BOOL: {
		bool *bp = (bool *)(void *)field;

		*bp = false;
		if (!raw->set || raw->text == NULL) {
			if (o->required) {
				snprintf(errstr, errstr_size, "%s is required", label);
				return -1;
			}
			return 0;
		}
		if (cfg_parse_bool(raw->text, bp) < 0) {
			snprintf(errstr, errstr_size,
			         "%s: expected true/false/1/0/yes/no/on/off, got '%.64s'", label,
			         raw->text);
			return -1;
		}
		return 0;
	}
	}
	snprintf(errstr, errstr_size, "%s: unknown option type", label);
	return -1;
}

static const char *cfg_type_meta(enum cfg_type type)
{
	switch (type) {
	case CFG_INT:
		return " N";
	case CFG_BOOL:
		return "[=BOOL]";
	default:
		return " VALUE";
	}
}

static void cfg_print_help(const struct cfg_spec *spec, FILE *fp)
{
	fprintf(fp, "usage: %s %s\n", spec->program,
	        spec->usage != NULL ? spec->usage : "[options]");
	if (spec->about != NULL)
		fprintf(fp, "\n%s\n", spec->about);
	fprintf(fp, "\noptions (flags override environment variables, which override defaults; "
	            "an empty variable counts as unset):\n");
	for (size_t i = 0; i < spec->noptions; i++) {
		const struct cfg_option *o = &spec->options[i];
		char redacted[512];
		const char *def = o->def;

		fprintf(fp, "  --%s%s\n", o->name, cfg_type_meta(o->type));
		fprintf(fp, "      %s\n", o->help != NULL ? o->help : "");
		if (o->env != NULL)
			fprintf(fp, "      env %s", o->env);
		else
			fprintf(fp, "      flag only");
		if (o->type == CFG_SECRET) {
			def = def != NULL ? "(hidden)" : "(none)";
		} else if (def != NULL && o->type == CFG_STR) {
			cfg_redact_url(def, redacted, sizeof redacted);
			def = redacted;
		}
		fprintf(fp, "; default: %s",
		        def != NULL ? (*def != '\0' ? def : "\"\"") : "(none)");
		if (o->type == CFG_INT && (o->min != 0 || o->max != 0))
			fprintf(fp, "; range: %lld..%lld", o->min, o->max);
		if (o->required)
			fprintf(fp, "; required");
		fprintf(fp, "\n");
	}
	fprintf(fp, "  --help\n      print this help and exit\n");
	fprintf(fp, "  --dump-config\n      print the effective configuration (secrets redacted) "
	            "and exit\n");
}

/* Puts every field in a known state (NULL / 0 / false) so cfg_free is always safe. */
static void cfg_zero(const struct cfg_spec *spec, void *conf)
{
	for (size_t i = 0; i < spec->noptions; i++) {
		const struct cfg_option *o = &spec->options[i];
		char *field = (char *)conf + o->offset;

		if (o->type == CFG_STR || o->type == CFG_SECRET)
			*(char **)(void *)field = NULL;
		else if (o->type == CFG_INT)
			*(long long *)(void *)field = 0;
		else
			*(bool *)(void *)field = false;
	}
}

/* Builds the getopt_long table: the spec's options, then --help and --dump-config. */
static struct option *cfg_longopts(const struct cfg_spec *spec)
{
	struct option *lo = calloc(spec->noptions + 3, sizeof *lo);

	if (lo == NULL)
		return NULL;
	for (size_t i = 0; i < spec->noptions; i++) {
		lo[i].name = spec->options[i].name;
		lo[i].has_arg =
		    spec->options[i].type == CFG_BOOL ? optional_argument : required_argument;
		lo[i].val = CFG_OPT_BASE + (int)i;
	}
	lo[spec->noptions] = (struct option){"help", no_argument, NULL, CFG_OPT_HELP};
	lo[spec->noptions + 1] = (struct option){"dump-config", no_argument, NULL, CFG_OPT_DUMP};
	return lo;
}

enum cfg_result cfg_load(const struct cfg_spec *spec, void *conf, int argc, char **argv, int *argi,
                         char *errstr, size_t errstr_size)
{
	enum cfg_result rc = CFG_ERROR;
	struct cfg_raw *raw = NULL;
	struct option *lo = NULL;
	bool help = false, dump = false;
	int c;

	if (errstr_size > 0)
		errstr[0] = '\0';
	cfg_zero(spec, conf);
	raw = calloc(spec->noptions + 1, sizeof *raw);
	lo = cfg_longopts(spec);
	if (raw == NULL || lo == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	/* Defaults, then the environment (empty = unset). */
	for (size_t i = 0; i < spec->noptions; i++) {
		const struct cfg_option *o = &spec->options[i];
		const char *env = o->env != NULL ? getenv(o->env) : NULL;

		raw[i] = (struct cfg_raw){.text = o->def, .set = o->def != NULL};
		if (env != NULL && *env != '\0')
			raw[i] = (struct cfg_raw){.text = env, .set = true};
	}
	/* Then the flags. optind = 0 fully re-initialises GNU getopt (cfg_load may run twice). */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (c == 'h' || c == CFG_OPT_HELP) {
			help = true;
		} else if (c == CFG_OPT_DUMP) {
			dump = true;
		} else if (c >= CFG_OPT_BASE && (size_t)(c - CFG_OPT_BASE) < spec->noptions) {
			size_t i = (size_t)(c - CFG_OPT_BASE);

			raw[i].text = optarg != NULL ? optarg : "true";
			raw[i].set = true;
			/* "--flag false" means what it says (not: flag on, positional "false").
			 * Only words are taken, so a number after a bool flag stays a positional.
			 */
			if (optarg == NULL && spec->options[i].type == CFG_BOOL && optind < argc &&
			    cfg_bool_word(argv[optind]))
				raw[i].text = argv[optind++];
		} else if (c == ':') {
			snprintf(errstr, errstr_size, "option '%s' needs a value",
			         argv[optind - 1]);
			goto out;
		} else {
			if (optopt > 0 && optopt < 128 && isprint(optopt))
				snprintf(errstr, errstr_size, "unknown option '-%c'", optopt);
			else
				snprintf(errstr, errstr_size, "unknown option '%s'",
				         argv[optind - 1]);
			goto out;
		}
	}
	if (help) {
		cfg_print_help(spec, stdout);
		fflush(stdout);
		rc = CFG_EXIT_OK;
		goto out;
	}
	for (size_t i = 0; i < spec->noptions; i++) {
		if (cfg_apply(&spec->options[i], &raw[i], conf, errstr, errstr_size) < 0)
			goto out;
	}
	for (size_t i = 0; i < spec->noptions; i++) {
		const struct cfg_option *o = &spec->options[i];

		if (o->type == CFG_SECRET)
			log_add_secret(*(char **)(void *)((char *)conf + o->offset));
	}
	if (argi != NULL)
		*argi = optind;
	if (dump) {
		cfg_dump(spec, conf, stdout);
		fflush(stdout);
		rc = CFG_EXIT_OK;
		goto out;
	}
	rc = CFG_OK;
out:
	/* Nothing for the caller to use unless CFG_OK: every string is left NULL. */
	if (rc != CFG_OK)
		cfg_free(spec, conf);
	free(lo);
	free(raw);
	return rc;
}

int cfg_start(enum cfg_result r, const char *program, const char *log_level, const char *errstr,
              int *exit_code)
{
	enum log_level level = LOG_INFO;

	if (r == CFG_EXIT_OK) {
		*exit_code = 0;
		return -1;
	}
	if (r != CFG_OK) {
		fprintf(stderr, "%s: %s\n", program, errstr);
		*exit_code = 2;
		return -1;
	}
	(void)log_level_parse(log_level, &level);
	log_init(program, level);
	return 0;
}

void cfg_dump(const struct cfg_spec *spec, const void *conf, void *fp)
{
	FILE *out = fp;

	for (size_t i = 0; i < spec->noptions; i++) {
		const struct cfg_option *o = &spec->options[i];
		const char *field = (const char *)conf + o->offset;

		switch (o->type) {
		case CFG_SECRET: {
			const char *v = *(char *const *)(const void *)field;

			fprintf(out, "%s=%s\n", o->name, v != NULL && *v != '\0' ? "***" : "");
			break;
		}
		case CFG_STR: {
			const char *v = *(char *const *)(const void *)field;
			size_t size = v != NULL ? 2 * strlen(v) + 8 : 1;
			char *redacted = malloc(size);

			if (redacted == NULL) {
				fprintf(out, "%s=(out of memory)\n", o->name);
				break;
			}
			cfg_redact_url(v != NULL ? v : "", redacted, size);
			fprintf(out, "%s=%s\n", o->name, redacted);
			free(redacted);
			break;
		}
		case CFG_INT:
			fprintf(out, "%s=%lld\n", o->name, *(const long long *)(const void *)field);
			break;
		case CFG_BOOL:
			fprintf(out, "%s=%s\n", o->name,
			        *(const bool *)(const void *)field ? "true" : "false");
			break;
		}
	}
}

void cfg_free(const struct cfg_spec *spec, void *conf)
{
	if (spec == NULL || conf == NULL)
		return;
	for (size_t i = 0; i < spec->noptions; i++) {
		const struct cfg_option *o = &spec->options[i];

		if (o->type == CFG_STR || o->type == CFG_SECRET) {
			char **sp = (char **)(void *)((char *)conf + o->offset);

			free(*sp);
			*sp = NULL;
		}
	}
}

int cfg_check_listen(const char *setting, const char *listen, char *errstr, size_t errstr_size)
{
	char host[256];
	unsigned port;

	if (cfg_parse_listen(listen, host, sizeof host, &port) < 0) {
		snprintf(errstr, errstr_size, "%s: '%s' is not host:port", setting,
		         listen != NULL ? listen : "");
		return -1;
	}
	return 0;
}

int cfg_check_shared(const char *log_level, const char *http_listen, char *errstr,
                     size_t errstr_size)
{
	enum log_level level;

	if (log_level_parse(log_level, &level) < 0) {
		snprintf(errstr, errstr_size,
		         "LOG_LEVEL: '%s' is not one of error, warn, info, debug",
		         log_level != NULL ? log_level : "");
		return -1;
	}
	if (http_listen != NULL &&
	    cfg_check_listen("HTTP_LISTEN", http_listen, errstr, errstr_size))
		return -1;
	return 0;
}

int cfg_parse_listen(const char *s, char *host, size_t host_size, unsigned *port)
{
	const char *colon, *hbeg, *hend, *p;
	unsigned long v = 0;

	if (s == NULL || host_size == 0)
		return -1;
	if (s[0] == '[') {
		/* "[::1]:8080": an IPv6 literal in brackets. */
		hbeg = s + 1;
		hend = strchr(hbeg, ']');
		if (hend == NULL || hend[1] != ':')
			return -1;
		colon = hend + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hbeg = s;
		hend = colon;
		if (memchr(hbeg, ':', (size_t)(hend - hbeg)) != NULL)
			return -1; /* an unbracketed IPv6 literal is ambiguous */
	}
	p = colon + 1;
	if (*p == '\0' || strlen(p) > 5)
		return -1;
	for (; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535 || (size_t)(hend - hbeg) >= host_size)
		return -1;
	memcpy(host, hbeg, (size_t)(hend - hbeg));
	host[hend - hbeg] = '\0';
	*port = (unsigned)v;
	return 0;
}
