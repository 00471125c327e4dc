/* test_cfg_shared: what every service shares besides cfg_load: the CFG_OPT_* option macros,
 * cfg_start, cfg_parse_listen and cfg_redact_url. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cfg.h"
#include "log.h"

#include <string.h>

static void test_cfg_parse_listen(void **state)
{
	static const struct {
		const char *text;
		int rc;
		const char *host;
		unsigned port;
	} cases[] = {
	    {"127.0.0.1:8080", 0, "127.0.0.1", 8080},
	    {":9000", 0, "", 9000},
	    {"0.0.0.0:0", 0, "0.0.0.0", 0},
	    {"localhost:65535", 0, "localhost", 65535},
	    {"[::1]:8080", 0, "::1", 8080},
	    {"[::]:1", 0, "::", 1},
	    {"localhost:65536", -1, NULL, 0},
	    {"localhost:123456", -1, NULL, 0},
	    {"localhost", -1, NULL, 0},
	    {"localhost:", -1, NULL, 0},
	    {"localhost:80a", -1, NULL, 0},
	    {"localhost:-1", -1, NULL, 0},
	    {"::1:80", -1, NULL, 0},
	    {"[::1]8080", -1, NULL, 0},
	    {"[::1", -1, NULL, 0},
	    {"", -1, NULL, 0},
	    {"a-very-long-host-name-that-does-not-fit:80", -1, NULL, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char host[32] = "unchanged";
		unsigned port = 4242;
		int rc = cfg_parse_listen(cases[i].text, host, sizeof host, &port);

		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d, want %d", cases[i].text, rc, cases[i].rc);
		if (rc == 0) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
	}
	assert_int_equal(cfg_parse_listen(NULL, (char[8]){0}, 8, &(unsigned){0}), -1);
}

static void test_cfg_redact_url(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"postgres://app:secret@localhost:5432/calls",
	     "postgres://app:***@localhost:5432/calls"},
	    {"postgresql://app@localhost/calls", "postgresql://app@localhost/calls"},
	    {"postgresql://localhost/calls", "postgresql://localhost/calls"},
	    {"postgres://app:p@ss@host/db", "postgres://app:***@host/db"},
	    {"postgres://app:@host/db", "postgres://app:***@host/db"},
	    {"postgres://app:pw@host/db?sslmode=require&password=other",
	     "postgres://app:***@host/db?sslmode=require&password=***"},
	    {"postgres://host/db?password=x#frag", "postgres://host/db?password=***#frag"},
	    {"postgres://host/db#password=x", "postgres://host/db#password=x"},
	    {"host=localhost port=5432 password=secret dbname=calls",
	     "host=localhost port=5432 password=*** dbname=calls"},
	    {"password='a b\\' c' user=app", "password=*** user=app"},
	    {"host=h password = spaced user=u", "host=h password = *** user=u"},
	    {"PASSWORD=x", "PASSWORD=***"},
	    {"host=h passfile=/x/y", "host=h passfile=/x/y"},
	    {"dbname=calls", "dbname=calls"},
	    {"plain text", "plain text"},
	    {"", ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[256];

		cfg_redact_url(cases[i].in, out, sizeof out);
		assert_string_equal(out, cases[i].out);
	}
	/* A small buffer truncates (and still never shows the password). */
	{
		char out[10];

		cfg_redact_url("postgres://app:secret@h/db", out, sizeof out);
		assert_string_equal(out, "postgres:");
		cfg_redact_url(NULL, out, sizeof out);
		assert_string_equal(out, "");
	}
}

/* The shared option macros keep design.md §7's names, env names, defaults, bounds and flags. */
static void test_cfg_shared_options(void **state)
{
	struct shared {
		char *brokers, *prefix, *db_url, *schema, *listen, *level;
		long long session_ms;
	};
	static const struct cfg_option o[] = {
	    CFG_OPT_KAFKA_BROKERS(struct shared, brokers),
	    CFG_OPT_KAFKA_TOPIC_PREFIX(struct shared, prefix),
	    CFG_OPT_KAFKA_SESSION_TIMEOUT_MS(struct shared, session_ms),
	    CFG_OPT_DATABASE_URL(struct shared, db_url),
	    CFG_OPT_DB_SCHEMA(struct shared, schema),
	    CFG_OPT_HTTP_LISTEN(struct shared, listen, "0.0.0.0:9999"),
	    CFG_OPT_LOG_LEVEL(struct shared, level),
	    CFG_OPT(struct shared, "x", "X", CFG_INT, "3", "h", session_ms, -1, 7, true),
	};

	(void)state;
	assert_string_equal(o[0].env, "KAFKA_BROKERS");
	assert_null(o[0].def);
	assert_true(o[0].required);
	assert_string_equal(o[1].name, "kafka-topic-prefix");
	assert_string_equal(o[1].def, "");
	assert_false(o[1].required);
	assert_string_equal(o[2].env, "KAFKA_SESSION_TIMEOUT_MS");
	assert_int_equal(o[2].type, CFG_INT);
	assert_string_equal(o[2].def, "10000");
	assert_int_equal(o[2].min, 100);
	assert_int_equal(o[2].max, 3600000);
	assert_int_equal(o[3].type, CFG_SECRET);
	assert_string_equal(o[3].env, "DATABASE_URL");
	assert_string_equal(o[4].name, "db-schema");
	assert_string_equal(o[4].def, "dev");
	assert_string_equal(o[5].env, "HTTP_LISTEN");
	assert_string_equal(o[5].def, "0.0.0.0:9999");
	assert_int_equal(o[5].offset, offsetof(struct shared, listen));
	assert_string_equal(o[6].name, "log-level");
	assert_string_equal(o[6].def, "info");
	assert_true(o[6].required);
	assert_string_equal(o[7].name, "x");
	assert_int_equal(o[7].offset, offsetof(struct shared, session_ms));
	assert_int_equal(o[7].min, -1);
	assert_int_equal(o[7].max, 7);
	assert_true(o[7].required);
}

/* cfg_start never exits: it hands main the exit code, or initialises logging to go on. */
static void test_cfg_start(void **state)
{
	int code = 42;

	(void)state;
	assert_int_equal(cfg_start(CFG_EXIT_OK, "testprog", NULL, "", &code), -1);
	assert_int_equal(code, 0);
	code = 42;
	assert_int_equal(cfg_start(CFG_ERROR, "testprog", NULL, "X is required", &code), -1);
	assert_int_equal(code, 2);
	code = 42;
	assert_int_equal(cfg_start(CFG_OK, "testprog", "debug", "", &code), 0);
	assert_int_equal(code, 42);
	assert_true(log_enabled(LOG_DEBUG));
	assert_int_equal(cfg_start(CFG_OK, "testprog", "error", "", &code), 0);
	assert_false(log_enabled(LOG_WARN));
	assert_int_equal(cfg_start(CFG_OK, "testprog", NULL, "", &code), 0);
	assert_true(log_enabled(LOG_INFO));
	assert_false(log_enabled(LOG_DEBUG));
}

/* LOG_LEVEL and HTTP_LISTEN are checked once, here, with one message format for every service
 * (the three workers once said it three ways). */
static void test_cfg_check_shared(void **state)
{
	static const struct {
		const char *level, *listen, *err;
	} cases[] = {
	    {"info", "0.0.0.0:9101", ""},
	    {"DEBUG", "[::1]:0", ""},
	    {"warn", NULL, ""},
	    {"loud", "0.0.0.0:1", "LOG_LEVEL: 'loud' is not one of error, warn, info, debug"},
	    {NULL, "0.0.0.0:1", "LOG_LEVEL: '' is not one of error, warn, info, debug"},
	    {"info", "9101", "HTTP_LISTEN: '9101' is not host:port"},
	    {"info", "", "HTTP_LISTEN: '' is not host:port"},
	};
	char err[200];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc;

		err[0] = '\0';
		rc = cfg_check_shared(cases[i].level, cases[i].listen, err, sizeof err);
		if (rc != (cases[i].err[0] ? -1 : 0) || strcmp(err, cases[i].err) != 0)
			fail_msg("case %zu: rc %d err '%s'", i, rc, err);
	}
	assert_int_equal(cfg_check_listen("INGRESS_ADMIN_LISTEN", "x", err, sizeof err), -1);
	assert_string_equal(err, "INGRESS_ADMIN_LISTEN: 'x' is not host:port");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cfg_check_shared), cmocka_unit_test(test_cfg_parse_listen),
	    cmocka_unit_test(test_cfg_redact_url),   cmocka_unit_test(test_cfg_shared_options),
	    cmocka_unit_test(test_cfg_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
