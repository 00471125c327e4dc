/* test_dialer_config: the dialer's settings: required ones named in the error, defaults,
 * validation across settings, and --help listing every setting with its variable. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static const char *const required_env[][2] = {
    {"KAFKA_BROKERS", "127.0.0.1:9092"},       {"DATABASE_URL", "postgresql://u:pw@127.0.0.1/db"},
    {"ELEVENLABS_API_KEY", "xi-secret-key"},   {"ELEVENLABS_AGENT_ID", "agent_1"},
    {"ELEVENLABS_PHONE_NUMBER_ID", "phnum_1"},
};
#define NREQ (sizeof required_env / sizeof required_env[0])

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < NREQ; i++)
		setenv(required_env[i][0], required_env[i][1], 1);
	return 0;
}

static enum cfg_result load(struct dialer_config *c, char **argv, int argc, char *err, size_t size)
{
	memset(c, 0, sizeof *c);
	return dialer_config_load(c, argc, argv, err, size);
}

static void test_dialer_config_defaults(void **state)
{
	struct dialer_config c;
	char err[256] = "";
	char *argv[] = {"dialer"};

	(void)state;
	assert_int_equal(load(&c, argv, 1, err, sizeof err), CFG_OK);
	assert_string_equal(c.el_base_url, "https://api.elevenlabs.io");
	assert_string_equal(c.http_listen, "0.0.0.0:9101");
	assert_string_equal(c.group, "dialer");
	assert_string_equal(c.db_schema, "dev");
	assert_int_equal(c.concurrency, 50);
	assert_int_equal(c.rate_per_sec, 0);
	assert_true(c.sweeper);
	assert_string_equal(c.el_api_key, "xi-secret-key");
	/* 5 attempts x 30 s + 4 waits of at most 60 s */
	assert_int_equal(dialer_config_max_dial_ms(&c), 5 * 30000 + 4 * 60000);
	dialer_config_free(&c);
}

static void test_dialer_config_required(void **state)
{
	struct dialer_config c;
	char err[256];
	char *argv[] = {"dialer"};

	(void)state;
	for (size_t i = 0; i < NREQ; i++) {
		unsetenv(required_env[i][0]);
		err[0] = '\0';
		assert_int_equal(load(&c, argv, 1, err, sizeof err), CFG_ERROR);
		if (!strstr(err, required_env[i][0]))
			fail_msg("missing %s: error '%s' does not name it", required_env[i][0],
			         err);
		dialer_config_free(&c);
		setenv(required_env[i][0], required_env[i][1], 1);
	}
}

static void test_dialer_config_flags_and_validation(void **state)
{
	static const struct {
		const char *flag, *value, *expect; /* expect NULL: accepted */
	} cases[] = {
	    {"--concurrency", "7", NULL},
	    {"--concurrency", "0", "concurrency"},
	    {"--elevenlabs-base-url", "ftp://x", "ELEVENLABS_BASE_URL"},
	    {"--log-level", "loud", "LOG_LEVEL"},
	    {"--http-listen", "nocolon", "HTTP_LISTEN"},
	    {"--connect-timeout-ms", "60000", "DIALER_CONNECT_TIMEOUT_MS"},
	    {"--retry-base-ms", "20000", "DIALER_RETRY_BASE_MS"},
	    {"--sweep-max-age-s", "10", "DIALER_SWEEP_MAX_AGE_S"},
	    {"--call-token-secret", "short", "CALL_TOKEN_SECRET"},
	    {"--call-token-secret", "call-token-secret-0123", NULL},
	    {"--call-token-ttl-s", "10", "call-token-ttl-s"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dialer_config c;
		char err[256] = "";
		char *argv[] = {"dialer", (char *)cases[i].flag, (char *)cases[i].value};
		enum cfg_result r = load(&c, argv, 3, err, sizeof err);

		if (!cases[i].expect) {
			assert_int_equal(r, CFG_OK);
		} else {
			assert_int_equal(r, CFG_ERROR);
			if (!strstr(err, cases[i].expect))
				fail_msg("%s %s: error '%s' does not name %s", cases[i].flag,
				         cases[i].value, err, cases[i].expect);
		}
		dialer_config_free(&c);
	}
}

/* Runs --help with stdout captured; returns the text (caller frees). */
static char *help_text(void)
{
	char path[] = "/tmp/test_dialer_config_XXXXXX";
	int fd = mkstemp(path), saved = dup(1);
	struct dialer_config c;
	char err[256];
	char *argv[] = {"dialer", "--help"};
	char *text = calloc(1, 65536);

	assert_true(fd >= 0 && saved >= 0 && text);
	fflush(stdout);
	dup2(fd, 1);
	assert_int_equal(load(&c, argv, 2, err, sizeof err), CFG_EXIT_OK);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	dialer_config_free(&c);
	lseek(fd, 0, SEEK_SET);
	assert_true(read(fd, text, 65535) > 0);
	close(fd);
	unlink(path);
	return text;
}

static void test_dialer_config_help_lists_everything(void **state)
{
	static const char *const names[] = {
	    "KAFKA_BROKERS",
	    "KAFKA_TOPIC_PREFIX",
	    "DATABASE_URL",
	    "DB_SCHEMA",
	    "HTTP_LISTEN",
	    "ELEVENLABS_BASE_URL",
	    "ELEVENLABS_API_KEY",
	    "ELEVENLABS_AGENT_ID",
	    "ELEVENLABS_PHONE_NUMBER_ID",
	    "DIALER_DISPATCHER_NAME",
	    "DIALER_TRANSFER_NUMBER",
	    "DIALER_CONCURRENCY",
	    "DIALER_RATE_PER_SEC",
	    "DIALER_MAX_ATTEMPTS",
	    "DIALER_REQUEST_TIMEOUT_MS",
	    "DIALER_CONNECT_TIMEOUT_MS",
	    "DIALER_SWEEP_AGE_S",
	    "DIALER_SWEEP_INTERVAL_S",
	    "DIALER_GROUP",
	    "KAFKA_SESSION_TIMEOUT_MS",
	    "LOG_LEVEL",
	    "DIALER_DRAIN_TIMEOUT_MS",
	    "CALL_TOKEN_SECRET",
	    "DIALER_CALL_TOKEN_TTL_S",
	};
	char *text = help_text();

	(void)state;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strstr(text, names[i]))
			fail_msg("--help does not mention %s", names[i]);
	/* the API key's value is never printed */
	assert_null(strstr(text, "xi-secret-key"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_dialer_config_defaults, setup),
	    cmocka_unit_test_setup(test_dialer_config_required, setup),
	    cmocka_unit_test_setup(test_dialer_config_flags_and_validation, setup),
	    cmocka_unit_test_setup(test_dialer_config_help_lists_everything, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
