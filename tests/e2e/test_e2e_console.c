/* test_e2e_console: the operations console in a real browser. Brings the whole stack up with the
 * e2e harness (the ctest Postgres, a devbroker, elevensim, the ingress with its admin address
 * serving console/ from the source tree, a dialer and a transcriber), then runs
 * tests/browser/console.test.mjs (Debian's chromium driven by the pinned playwright-core), which
 * signs in, posts three drivers and compares what the page shows with Postgres. */
#include "e2e.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *console_getenv(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		fail_msg("e2e_console: %s is not set (tests/e2e/console.cmake sets it)", name);
	return v;
}

static void test_e2e_console_in_browser(void **state)
{
	struct e2e_fixture *f = *state;
	struct e2e_stack *s = &f->stack;
	struct e2e_env env = {0};
	char admin_env[64], console_env[600], admin_url[64], health[128], script[600];
	/* lines arrive over a few seconds: the page must show them as they are stored */
	const char *sim_args[] = {"--turns", "4", "--turn-delay-ms", "700", "--latency-ms",
	                          "200",     NULL};
	const char *ingress_env[] = {admin_env, console_env, NULL};
	const char *argv[] = {"/usr/bin/env", "node", script, NULL};
	struct e2e_opts opts = {
	    .name = "e2e_console", .sim_args = sim_args, .ingress_env = ingress_env};
	unsigned admin_port = ts_free_port();
	char *out = NULL;
	int rc;

	snprintf(admin_env, sizeof admin_env, "INGRESS_ADMIN_LISTEN=127.0.0.1:%u", admin_port);
	snprintf(console_env, sizeof console_env, "INGRESS_CONSOLE_DIR=%s/console",
	         ts_source_dir());
	snprintf(admin_url, sizeof admin_url, "http://127.0.0.1:%u", admin_port);
	snprintf(script, sizeof script, "%s/tests/browser/console.test.mjs", ts_source_dir());
	e2e_stack_start(s, &opts);
	snprintf(health, sizeof health, "%s/healthz", admin_url);
	if (!ts_wait_http_ok(health, 10000))
		fail_msg("e2e_console: the admin address %s does not answer", admin_url);

	e2e_env_add(&env, "CONSOLE_URL=%s", admin_url);
	e2e_env_add(&env, "PUBLIC_URL=%s", s->ingress_url);
	e2e_env_add(&env, "CONSOLE_TOKEN=%s", s->token);
	e2e_env_add(&env, "SIM_URL=%s", s->sim_url);
	e2e_env_add(&env, "PG_URL=%s", ts_pg_url());
	e2e_env_add(&env, "PG_SCHEMA=%s", s->schema);
	e2e_env_add(&env, "INGRESS_PID=%ld", (long)s->ingress.pid); /* its LISTEN session's name */
	e2e_env_add(&env, "CONSOLE_SHOTS_DIR=%s", console_getenv("CONSOLE_SHOTS_DIR"));
	e2e_env_add(&env, "CONSOLE_NODE_MODULES=%s", console_getenv("CONSOLE_NODE_MODULES"));
	rc = ts_run_all(argv, (const char *const *)env.items, &out, 240000);
	e2e_env_free(&env);
	fprintf(stderr, "e2e_console: the browser test exited %d; its output:\n%s\n", rc,
	        out ? out : "");
	free(out);
	if (rc != 0) {
		e2e_stack_dump_logs(s, 25);
		fail_msg("e2e_console: the browser test failed (screenshots in %s)",
		         console_getenv("CONSOLE_SHOTS_DIR"));
	}
	e2e_stack_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_e2e_console_in_browser, e2e_setup, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
