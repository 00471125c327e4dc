/* test_cfg: cfg_load: precedence (default < env < flag), validation messages, --help,
 * --dump-config, secrets kept out of the log (the rest of cfg: test_cfg_shared.c). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "log.h"

struct tconf {
	char *listen, *db_url, *replica_url, *token, *prefix;
	long long workers, delta;
	bool verbose, dry_run;
};

#define OFF(f) offsetof(struct tconf, f)

#define OPT(n, e, t, d, h, f, ...)                                                               \
	{                                                                                        \
		.name = (n), .env = (e), .type = (t), .def = (d), .help = (h), .offset = OFF(f), \
		__VA_ARGS__                                                                      \
	}

static const struct cfg_option options[] = {
    OPT("http-listen", "CPT_HTTP_LISTEN", CFG_STR, "127.0.0.1:8080", "listen address", listen),
    OPT("database-url", "CPT_DATABASE_URL", CFG_STR, NULL, "libpq connection string", db_url,
        .required = true),
    OPT("replica-url", "CPT_REPLICA_URL", CFG_STR, "postgres://app:hunter22@localhost/db",
        "read replica", replica_url),
    OPT("api-token", "CPT_API_TOKEN", CFG_SECRET, "default-secret-value", "bearer token", token),
    OPT("topic-prefix", "CPT_TOPIC_PREFIX", CFG_STR, "", "topic prefix", prefix),
    OPT("workers", "CPT_WORKERS", CFG_INT, "4", "worker threads", workers, .min = 1, .max = 64),
    OPT("delta", "CPT_DELTA", CFG_INT, NULL, "any integer", delta),
    OPT("verbose", "CPT_VERBOSE", CFG_BOOL, "false", "more output", verbose),
    OPT("dry-run", NULL, CFG_BOOL, NULL, "do nothing", dry_run),
};

static const struct cfg_spec spec = {
    .program = "testprog",
    .usage = "[options] ARGS",
    .about = "A program that exists to test cfg.",
    .options = options,
    .noptions = sizeof options / sizeof options[0],
};

static const char *const all_env[] = {"CPT_HTTP_LISTEN", "CPT_DATABASE_URL", "CPT_REPLICA_URL",
                                      "CPT_API_TOKEN",   "CPT_TOPIC_PREFIX", "CPT_WORKERS",
                                      "CPT_DELTA",       "CPT_VERBOSE"};

#define MAXARGS 8

/* One run: environment "NAME=value" entries, then the flags after argv[0]. */
struct run {
	const char *env[4];
	const char *args[MAXARGS];
};

static enum cfg_result load(const struct run *r, struct tconf *c, char *err, size_t errsize,
                            int *argi)
{
	static char *argv[MAXARGS + 2];
	static char storage[MAXARGS + 1][256];
	int argc = 0;

	for (size_t i = 0; i < sizeof all_env / sizeof all_env[0]; i++)
		unsetenv(all_env[i]);
	for (size_t i = 0; i < 4 && r->env[i] != NULL; i++)
		putenv((char *)r->env[i]);
	/* getopt may permute argv: hand it private copies. */
	snprintf(storage[0], sizeof storage[0], "testprog");
	argv[argc++] = storage[0];
	for (size_t i = 0; i < MAXARGS && r->args[i] != NULL; i++) {
		snprintf(storage[argc], sizeof storage[argc], "%s", r->args[i]);
		argv[argc] = storage[argc];
		argc++;
	}
	argv[argc] = NULL;
	return cfg_load(&spec, c, argc, argv, argi, err, errsize);
}

static const char *const db = "CPT_DATABASE_URL=postgres://localhost/db";

static void test_cfg_precedence(void **state)
{
	static const struct {
		struct run r;
		long long workers;
		const char *listen;
		bool verbose;
	} cases[] = {
	    /* defaults */
	    {{{db}, {NULL}}, 4, "127.0.0.1:8080", false},
	    /* env over default */
	    {{{db, "CPT_WORKERS=8", "CPT_HTTP_LISTEN=:9000"}, {NULL}}, 8, ":9000", false},
	    /* an empty variable is unset: the default stays */
	    {{{db, "CPT_WORKERS=", "CPT_HTTP_LISTEN="}, {NULL}}, 4, "127.0.0.1:8080", false},
	    /* flag over env, both spellings */
	    {{{db, "CPT_WORKERS=8"}, {"--workers", "16"}}, 16, "127.0.0.1:8080", false},
	    {{{db, "CPT_WORKERS=8"}, {"--workers=32"}}, 32, "127.0.0.1:8080", false},
	    {{{db, "CPT_HTTP_LISTEN=:1"}, {"--http-listen=:2"}}, 4, ":2", false},
	    /* flag over default */
	    {{{db}, {"--http-listen", "[::1]:7"}}, 4, "[::1]:7", false},
	    /* a bad env value overridden by a flag is never looked at */
	    {{{db, "CPT_WORKERS=abc"}, {"--workers", "2"}}, 2, "127.0.0.1:8080", false},
	    /* the last flag wins */
	    {{{db}, {"--workers", "2", "--workers", "3"}}, 3, "127.0.0.1:8080", false},
	    /* bools: env, flag alone, flag=value over env */
	    {{{db, "CPT_VERBOSE=yes"}, {NULL}}, 4, "127.0.0.1:8080", true},
	    {{{db}, {"--verbose"}}, 4, "127.0.0.1:8080", true},
	    {{{db, "CPT_VERBOSE=true"}, {"--verbose=off"}}, 4, "127.0.0.1:8080", false},
	    /* a spelled-out value after a bool flag is its value, not a positional */
	    {{{db}, {"--verbose", "false"}}, 4, "127.0.0.1:8080", false},
	    {{{db, "CPT_VERBOSE=yes"}, {"--verbose", "no", "--workers", "5"}},
	     5,
	     "127.0.0.1:8080",
	     false},
	    {{{db}, {"--verbose", "ON"}}, 4, "127.0.0.1:8080", true},
	    /* bounds are inclusive */
	    {{{db, "CPT_WORKERS=1"}, {NULL}}, 1, "127.0.0.1:8080", false},
	    {{{db}, {"--workers=64"}}, 64, "127.0.0.1:8080", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tconf c;
		char err[256];
		int argi = -1;

		if (load(&cases[i].r, &c, err, sizeof err, &argi) != CFG_OK)
			fail_msg("case %zu: %s", i, err);
		assert_int_equal(c.workers, cases[i].workers);
		assert_string_equal(c.listen, cases[i].listen);
		assert_int_equal(c.verbose, cases[i].verbose);
		assert_string_equal(c.db_url, "postgres://localhost/db");
		assert_string_equal(c.prefix, "");
		assert_string_equal(c.token, "default-secret-value");
		assert_string_equal(c.replica_url, "postgres://app:hunter22@localhost/db");
		assert_int_equal(c.delta, 0);
		assert_false(c.dry_run);
		/* No positionals: argi is one past the last flag. */
		{
			int argc = 1;

			while (argc - 1 < MAXARGS && cases[i].r.args[argc - 1] != NULL)
				argc++;
			assert_int_equal(argi, argc);
		}
		cfg_free(&spec, &c);
		assert_null(c.listen);
		assert_null(c.db_url);
	}
}

static void test_cfg_errors(void **state)
{
	static const struct {
		struct run r;
		const char *want;
	} cases[] = {
	    {{{db, "CPT_WORKERS=abc"}, {NULL}},
	     "CPT_WORKERS (--workers): expected an integer, got 'abc'"},
	    {{{db, "CPT_WORKERS= 5"}, {NULL}}, "CPT_WORKERS (--workers): expected an integer"},
	    {{{db}, {"--workers", "5x"}}, "CPT_WORKERS (--workers): expected an integer, got '5x'"},
	    {{{db}, {"--workers=0"}}, "CPT_WORKERS (--workers): 0 is out of range [1, 64]"},
	    {{{db, "CPT_WORKERS=65"}, {NULL}},
	     "CPT_WORKERS (--workers): 65 is out of range [1, 64]"},
	    {{{db}, {"--delta", "99999999999999999999"}},
	     "CPT_DELTA (--delta): expected an integer"},
	    {{{NULL}, {NULL}}, "CPT_DATABASE_URL (--database-url) is required"},
	    {{{"CPT_DATABASE_URL="}, {NULL}}, "CPT_DATABASE_URL (--database-url) is required"},
	    {{{db}, {"--database-url="}}, "CPT_DATABASE_URL (--database-url) is required"},
	    {{{db, "CPT_VERBOSE=maybe"}, {NULL}},
	     "CPT_VERBOSE (--verbose): expected true/false/1/0/yes/no/on/off, got 'maybe'"},
	    {{{db}, {"--dry-run=perhaps"}}, "--dry-run: expected true/false"},
	    {{{db}, {"--bogus"}}, "unknown option '--bogus'"},
	    {{{db}, {"--bogus=1"}}, "unknown option '--bogus=1'"},
	    {{{db}, {"-x"}}, "unknown option '-x'"},
	    {{{db}, {"--workers"}}, "option '--workers' needs a value"},
	    {{{db}, {"--http-listen"}}, "option '--http-listen' needs a value"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tconf c;
		char err[256];

		if (load(&cases[i].r, &c, err, sizeof err, NULL) != CFG_ERROR)
			fail_msg("case %zu: expected an error containing '%s'", i, cases[i].want);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].want);
		/* Nothing is left allocated after an error. */
		assert_null(c.listen);
		assert_null(c.db_url);
		assert_null(c.token);
		cfg_free(&spec, &c);
	}
}

static void test_cfg_bool_values(void **state)
{
	static const struct {
		const char *text;
		bool ok, value;
	} cases[] = {
	    {"true", true, true},      {"TRUE", true, true}, {"1", true, true},
	    {"yes", true, true},       {"on", true, true},   {"false", true, false},
	    {"False", true, false},    {"0", true, false},   {"no", true, false},
	    {"off", true, false},      {"2", false, false},  {"y", false, false},
	    {"enabled", false, false}, {"", false, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char flag[64];
		struct run r = {{db}, {flag}};
		struct tconf c;
		char err[256];
		enum cfg_result rc;

		snprintf(flag, sizeof flag, "--verbose=%s", cases[i].text);
		rc = load(&r, &c, err, sizeof err, NULL);
		if (rc != (cases[i].ok ? CFG_OK : CFG_ERROR))
			fail_msg("'%s': rc %d (%s)", cases[i].text, rc, err);
		if (cases[i].ok)
			assert_int_equal(c.verbose, cases[i].value);
		else
			assert_non_null(strstr(err, "CPT_VERBOSE (--verbose)"));
		cfg_free(&spec, &c);
	}
}

static void test_cfg_positional(void **state)
{
	struct run r1 = {{db}, {"up", "--workers", "3", "2"}};
	struct run r2 = {{db}, {"--workers", "3", "--", "--not-an-option"}};
	struct run r3 = {{db}, {"down", "--verbose", "2"}}; /* a number stays a positional */
	struct tconf c;
	char err[256];
	int argi = -1;

	(void)state;
	/* GNU getopt permutes: options anywhere, positionals collected at argv[argi...]. */
	assert_int_equal(load(&r1, &c, err, sizeof err, &argi), CFG_OK);
	assert_int_equal(c.workers, 3);
	assert_int_equal(argi, 3);
	cfg_free(&spec, &c);
	assert_int_equal(load(&r2, &c, err, sizeof err, &argi), CFG_OK);
	assert_int_equal(argi, 4);
	cfg_free(&spec, &c);
	assert_int_equal(load(&r3, &c, err, sizeof err, &argi), CFG_OK);
	assert_true(c.verbose);
	assert_int_equal(argi, 2); /* argv: prog --verbose down 2 after permutation */
	cfg_free(&spec, &c);
}

/* Runs cfg_load with stdout redirected; returns what it printed (malloc'd). */
static char *load_capturing(const struct run *r, enum cfg_result *rc, struct tconf *c)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDOUT_FILENO);
	char err[256], *text;
	long size;

	assert_non_null(tmp);
	fflush(stdout);
	dup2(fileno(tmp), STDOUT_FILENO);
	*rc = load(r, c, err, sizeof err, NULL);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	fseek(tmp, 0, SEEK_END);
	size = ftell(tmp);
	rewind(tmp);
	text = calloc(1, (size_t)size + 1);
	assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
	fclose(tmp);
	return text;
}

/* Fails unless text (what the option printed) contains every want[0..n). */
static void assert_all_in(const char *text, const char *option, const char *const *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("%s lacks '%s':\n%s", option, want[i], text);
}

static void test_cfg_help(void **state)
{
	static const char *const want[] = {
	    "usage: testprog [options] ARGS\n",
	    "A program that exists to test cfg.",
	    "--http-listen VALUE\n      listen address\n      env CPT_HTTP_LISTEN; default: "
	    "127.0.0.1:8080\n",
	    "--database-url VALUE\n      libpq connection string\n      env CPT_DATABASE_URL; "
	    "default: (none); required\n",
	    "--api-token VALUE\n      bearer token\n      env CPT_API_TOKEN; default: (hidden)\n",
	    "--replica-url VALUE\n      read replica\n      env CPT_REPLICA_URL; default: "
	    "postgres://app:***@localhost/db\n",
	    "--topic-prefix VALUE\n      topic prefix\n      env CPT_TOPIC_PREFIX; default: \"\"\n",
	    "--workers N\n      worker threads\n      env CPT_WORKERS; default: 4; range: 1..64\n",
	    "--verbose[=BOOL]\n      more output\n      env CPT_VERBOSE; default: false\n",
	    "--dry-run[=BOOL]\n      do nothing\n      flag only; default: (none)\n",
	    "--help\n",
	    "--dump-config\n",
	};
	/* Help works even when the configuration is invalid or incomplete. */
	struct run r = {{"CPT_WORKERS=abc"}, {"--help"}};
	struct tconf c;
	enum cfg_result rc;
	char *text = load_capturing(&r, &rc, &c);

	(void)state;
	assert_int_equal(rc, CFG_EXIT_OK);
	assert_all_in(text, "--help", want, sizeof want / sizeof want[0]);
	assert_null(strstr(text, "default-secret-value"));
	assert_null(strstr(text, "hunter22"));
	assert_null(c.listen);
	free(text);
}

static void test_cfg_dump_config(void **state)
{
	struct run r = {{"CPT_DATABASE_URL=postgresql://app:pa55word@db:5432/calls?sslmode=disable",
	                 "CPT_API_TOKEN=tok-1234567"},
	                {"--dump-config", "--workers", "9", "--topic-prefix=host=x password=abcd"}};
	static const char *const want[] = {
	    "http-listen=127.0.0.1:8080\n",
	    "database-url=postgresql://app:***@db:5432/calls?sslmode=disable\n",
	    "replica-url=postgres://app:***@localhost/db\n",
	    "api-token=***\n",
	    "topic-prefix=host=x password=***\n",
	    "workers=9\n",
	    "delta=0\n",
	    "verbose=false\n",
	    "dry-run=false\n",
	};
	struct tconf c;
	enum cfg_result rc;
	char *text = load_capturing(&r, &rc, &c);

	(void)state;
	assert_int_equal(rc, CFG_EXIT_OK);
	assert_all_in(text, "--dump-config", want, sizeof want / sizeof want[0]);
	assert_null(strstr(text, "pa55word"));
	assert_null(strstr(text, "tok-1234567"));
	assert_null(strstr(text, "hunter22"));
	assert_null(strstr(text, "abcd"));
	assert_null(c.db_url);
	free(text);
}

static void test_cfg_secret_registered_with_log(void **state)
{
	struct run r = {{db, "CPT_API_TOKEN=tok-never-logged"}, {NULL}};
	FILE *tmp = tmpfile();
	struct tconf c;
	char err[256], line[512];

	(void)state;
	assert_int_equal(load(&r, &c, err, sizeof err, NULL), CFG_OK);
	log_init("testprog", LOG_INFO);
	log_set_fd(fileno(tmp));
	log_info("token is tok-never-logged", LOGS("auth", c.token));
	log_set_fd(-1);
	rewind(tmp);
	assert_non_null(fgets(line, sizeof line, tmp));
	assert_null(strstr(line, "tok-never-logged"));
	assert_non_null(strstr(line, "\"msg\":\"token is ***\""));
	assert_non_null(strstr(line, "\"auth\":\"***\""));
	fclose(tmp);
	cfg_free(&spec, &c);
	cfg_free(&spec, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cfg_precedence),
	    cmocka_unit_test(test_cfg_errors),
	    cmocka_unit_test(test_cfg_bool_values),
	    cmocka_unit_test(test_cfg_positional),
	    cmocka_unit_test(test_cfg_help),
	    cmocka_unit_test(test_cfg_dump_config),
	    cmocka_unit_test(test_cfg_secret_registered_with_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
