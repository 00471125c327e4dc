/* test_e2e_run_once: the README's first command, `scripts/run --once`, on the build under test:
 * it brings the stack up, shows both sample calls completing, prints their stored transcripts,
 * and stops everything it started. */
#include "e2e.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The build directory of the binaries under test: $CALLPIPE_BIN_DIR's parent. */
static void e2e_build_dir(char *out, size_t size)
{
	const char *bin = getenv("CALLPIPE_BIN_DIR");
	char *slash;

	if (!bin || !*bin)
		fail_msg("e2e: CALLPIPE_BIN_DIR is not set");
	snprintf(out, size, "%s", bin);
	slash = strrchr(out, '/');
	if (!slash || slash == out)
		fail_msg("e2e: CALLPIPE_BIN_DIR %s has no parent", bin);
	*slash = '\0';
}

/* Counts occurrences of needle in haystack. */
static int e2e_count(const char *haystack, const char *needle)
{
	int n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void test_e2e_scripts_run_once(void **state)
{
	char script[512], build[512], *out = NULL, *p;
	const char *argv[] = {script, "--once", "--build-dir", build, "--turns", "4", NULL};
	int rc, transcripts = 0;

	(void)state;
	snprintf(script, sizeof script, "%s/scripts/run", ts_source_dir());
	e2e_build_dir(build, sizeof build);
	rc = ts_run(argv, NULL, &out, 240000);
	/* (not print_message: it truncates long text) */
	fprintf(stderr, "e2e: scripts/run --once exited %d; its output:\n%s\n", rc, out ? out : "");
	assert_int_equal(rc, 0);
	assert_non_null(out);

	/* It followed both calls to completed and printed their lines as they arrived. */
	assert_true(strstr(out, "POST /driver_data/call-elevenlabs") != NULL);
	assert_int_equal(e2e_count(out, "status completed"), 2);
	assert_true(e2e_count(out, "conversation_id conv") >= 2 ||
	            e2e_count(out, "conversation_id ") >= 2);
	assert_true(e2e_count(out, " #4 ") == 2);
	assert_true(strstr(out, "done (--once)") != NULL);

	/* Then the stored transcripts: one JSON document per call, each completed with 4 lines in
	 * order. */
	p = strstr(out, "stored transcripts");
	assert_non_null(p);
	p = strchr(p, '\n'); /* past the heading, which names GET /calls/{call_sid} */
	assert_non_null(p);
	while ((p = strchr(p, '{')) != NULL) {
		json_error_t err;
		json_t *root = json_loadb(p, strlen(p), JSON_DISABLE_EOF_CHECK, &err), *tr;

		if (!root)
			break;
		tr = json_object_get(root, "transcript");
		assert_string_equal(
		    json_string_value(json_object_get(json_object_get(root, "call"), "status")),
		    "completed");
		assert_int_equal(json_array_size(tr), 4);
		for (size_t i = 0; i < json_array_size(tr); i++)
			assert_int_equal(json_integer_value(json_object_get(json_array_get(tr, i),
			                                                    "sequence_number")),
			                 (json_int_t)i + 1);
		transcripts++;
		p += err.position;
		json_decref(root);
	}
	assert_int_equal(transcripts, 2);

	/* Nothing left behind: the ingress it announced no longer answers. */
	p = strstr(out, "ingress      http://");
	assert_non_null(p);
	{
		char url[128];

		p += strlen("ingress      ");
		snprintf(url, sizeof url, "%.*s/healthz", (int)strcspn(p, " \n"), p);
		assert_false(ts_wait_http_ok(url, 300));
	}
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_e2e_scripts_run_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
