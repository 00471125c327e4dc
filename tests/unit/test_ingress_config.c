/* test_ingress_config: the secure-by-default rules (token / webhook secret or explicit opt-in),
 * cross-field checks, and loading from environment and flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static const char *const env_names[] = {
    "HTTP_LISTEN",
    "KAFKA_BROKERS",
    "KAFKA_TOPIC_PREFIX",
    "DATABASE_URL",
    "DB_SCHEMA",
    "INGRESS_API_TOKEN",
    "ELEVENLABS_WEBHOOK_SECRET",
    "INGRESS_ALLOW_UNAUTHENTICATED",
    "INGRESS_ALLOW_UNSIGNED_WEBHOOKS",
    "INGRESS_TOOL_SECRET",
    "CALL_TOKEN_SECRET",
    "INGRESS_ADMIN_LISTEN",
    "INGRESS_MAX_BODY",
    "INGRESS_DELIVERY_TIMEOUT_MS",
    "INGRESS_DRAIN_TIMEOUT_MS",
    "INGRESS_CONNECTIONS_PER_ADDRESS",
    "INGRESS_HEADER_TIMEOUT_MS",
    "INGRESS_BODY_TIMEOUT_MS",
    "INGRESS_BODY_MIN_RATE",
    "INGRESS_BODY_BUDGET",
    "INGRESS_CONSOLE_ADVANCE_S",
    "LOG_LEVEL",
};

static int clear_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
		unsetenv(env_names[i]);
	return 0;
}

/* A config as the defaults would make it, with a token and a secret. */
static void base(struct ingress_config *c)
{
	memset(c, 0, sizeof *c);
	c->http_listen = "127.0.0.1:8080";
	c->kafka_brokers = "127.0.0.1:9092";
	c->db_schema = "dev";
	c->api_token = "0123456789abcdef0123";
	c->webhook_secret = "whsec_0123456789";
	c->max_body = 65536;
	c->max_post_call_body = 1048576;
	c->body_budget = 67108864;
	c->delivery_timeout_ms = 5000;
	c->drain_timeout_ms = 15000;
	c->log_level = "info";
}

static void expect_error(const struct ingress_config *c, const char *w1, const char *w2)
{
	char err[512] = "";

	assert_int_equal(ingress_config_validate(c, err, sizeof err), -1);
	if (strstr(err, w1) == NULL || (w2 != NULL && strstr(err, w2) == NULL))
		fail_msg("error '%s' lacks '%s' / '%s'", err, w1, w2 ? w2 : "");
}

static void test_config_secure_by_default(void **state)
{
	struct ingress_config c;
	char err[512];

	(void)state;
	base(&c);
	assert_int_equal(ingress_config_validate(&c, err, sizeof err), 0);

	base(&c);
	c.api_token = NULL;
	expect_error(&c, "INGRESS_API_TOKEN", "INGRESS_ALLOW_UNAUTHENTICATED");
	c.api_token = "";
	expect_error(&c, "INGRESS_API_TOKEN", "INGRESS_ALLOW_UNAUTHENTICATED");
	c.allow_unauthenticated = true;
	assert_int_equal(ingress_config_validate(&c, err, sizeof err), 0);

	base(&c);
	c.webhook_secret = NULL;
	expect_error(&c, "ELEVENLABS_WEBHOOK_SECRET", "INGRESS_ALLOW_UNSIGNED_WEBHOOKS");
	c.allow_unsigned_webhooks = true;
	assert_int_equal(ingress_config_validate(&c, err, sizeof err), 0);

	base(&c);
	c.api_token = "short";
	expect_error(&c, "INGRESS_API_TOKEN", "16");

	/* the tool secret alone would open every call: it needs the per-call token key */
	base(&c);
	c.tool_secret = "tool-secret-0123456789";
	expect_error(&c, "INGRESS_TOOL_SECRET", "CALL_TOKEN_SECRET");
	c.call_token_secret = "call-token-secret-0123";
	assert_int_equal(ingress_config_validate(&c, err, sizeof err), 0);
	c.call_token_secret = "short";
	expect_error(&c, "CALL_TOKEN_SECRET", "16");
	c.tool_secret = NULL;
	c.call_token_secret = "call-token-secret-0123"; /* a token key alone is fine */
	assert_int_equal(ingress_config_validate(&c, err, sizeof err), 0);
}

static void test_config_cross_checks(void **state)
{
	struct ingress_config c;
	char err[512];

	(void)state;
	base(&c);
	c.http_listen = "nonsense";
	expect_error(&c, "HTTP_LISTEN", NULL);
	base(&c);
	c.log_level = "loud";
	expect_error(&c, "LOG_LEVEL", NULL);
	base(&c);
	c.drain_timeout_ms = 5000;
	expect_error(&c, "INGRESS_DRAIN_TIMEOUT_MS", "INGRESS_DELIVERY_TIMEOUT_MS");
	base(&c);
	c.database_url = "host=localhost port";
	expect_error(&c, "DATABASE_URL", NULL);
	/* a budget a largest body cannot fit in would refuse that body forever */
	base(&c);
	c.body_budget = 1048575;
	expect_error(&c, "INGRESS_BODY_BUDGET", "INGRESS_MAX_POST_CALL_BODY");
	base(&c);
	c.admin_listen = "nonsense";
	expect_error(&c, "INGRESS_ADMIN_LISTEN", NULL);
	c.admin_listen = "127.0.0.1:9100";
	assert_int_equal(ingress_config_validate(&c, err, sizeof err), 0);
}

static void test_config_load(void **state)
{
	struct ingress_config c;
	char err[512] = "";
	char *argv[] = {"ingress", "--max-body", "1024", "--allow-unsigned-webhooks", NULL};

	(void)state;
	setenv("KAFKA_BROKERS", "127.0.0.1:1", 1);
	setenv("INGRESS_API_TOKEN", "tok-0123456789abcdef", 1);
	setenv("INGRESS_MAX_BODY", "4096", 1);
	setenv("ELEVENLABS_WEBHOOK_SECRET", "", 1); /* empty counts as unset */
	if (ingress_config_load(&c, 4, argv, err, sizeof err) != CFG_OK)
		fail_msg("load failed: %s", err);
	assert_int_equal(c.max_body, 1024); /* the flag wins over the environment */
	assert_string_equal(c.http_listen, "0.0.0.0:8080");
	assert_string_equal(c.db_schema, "dev");
	assert_string_equal(c.api_token, "tok-0123456789abcdef");
	assert_true(c.allow_unsigned_webhooks);
	assert_false(c.allow_unauthenticated);
	assert_int_equal(c.max_post_call_body, 1048576);
	assert_int_equal(c.delivery_timeout_ms, 5000);
	assert_int_equal(c.sig_max_age_s, 1800);
	assert_int_equal(c.sig_max_skew_s, 300);
	/* the edge's defaults (docs/ingress.md, Security model) */
	assert_int_equal(c.connections_per_address, 256);
	assert_int_equal(c.header_timeout_ms, 5000);
	assert_int_equal(c.body_timeout_ms, 5000);
	assert_int_equal(c.body_min_rate, 32768);
	assert_int_equal(c.body_budget, 67108864);
	assert_int_equal(c.console_advance_s, 60); /* the rolling window's periodic advance */
	ingress_config_free(&c);

	/* INGRESS_CONSOLE_ADVANCE_S: 0 turns it off; at most a day */
	setenv("INGRESS_CONSOLE_ADVANCE_S", "0", 1);
	if (ingress_config_load(&c, 4, argv, err, sizeof err) != CFG_OK)
		fail_msg("load failed: %s", err);
	assert_int_equal(c.console_advance_s, 0);
	ingress_config_free(&c);
	setenv("INGRESS_CONSOLE_ADVANCE_S", "86401", 1);
	assert_int_equal(ingress_config_load(&c, 4, argv, err, sizeof err), CFG_ERROR);
	assert_non_null(strstr(err, "INGRESS_CONSOLE_ADVANCE_S"));
	ingress_config_free(&c);
	unsetenv("INGRESS_CONSOLE_ADVANCE_S");

	/* no secret and no opt-in: refused, naming both settings */
	clear_env(NULL);
	setenv("KAFKA_BROKERS", "127.0.0.1:1", 1);
	setenv("INGRESS_API_TOKEN", "tok-0123456789abcdef", 1);
	assert_int_equal(ingress_config_load(&c, 1, argv, err, sizeof err), CFG_ERROR);
	assert_non_null(strstr(err, "ELEVENLABS_WEBHOOK_SECRET"));
	ingress_config_free(&c);

	/* KAFKA_BROKERS is required */
	clear_env(NULL);
	assert_int_equal(ingress_config_load(&c, 4, argv, err, sizeof err), CFG_ERROR);
	assert_non_null(strstr(err, "KAFKA_BROKERS"));
	ingress_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_config_secure_by_default, clear_env),
	    cmocka_unit_test_setup(test_config_cross_checks, clear_env),
	    cmocka_unit_test_setup(test_config_load, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
