/* test_ingress_events_notify: migration 009's payloads read into events, line ranges, bulk, or
 * refused; and the data of a line.stored event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "events_notify.h"
#include "store_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_events_note_call_event(void **state)
{
	struct events_note note;
	char err[256];

	(void)state;
	/* as the trigger sends it (json_build_object's spacing) */
	assert_int_equal(events_note_parse(
	                     "{\"s\" : \"dev\", \"t\" : \"call.failed\", \"d\" : {\"call_sid\" : "
	                     "\"EL_1\", \"status\" : \"failed\", \"failure_reason\" : \"no\\nway\","
	                     " \"call_end_time\" : null}}",
	                     "dev", &note, err, sizeof err),
	                 0);
	assert_int_equal(note.kind, EVENTS_NOTE_EVENT);
	assert_string_equal(note.type, "call.failed");
	/* compact, one line, order kept */
	assert_string_equal(note.data, "{\"call_sid\":\"EL_1\",\"status\":\"failed\","
	                               "\"failure_reason\":\"no\\nway\",\"call_end_time\":null}");
	assert_null(strchr(note.data, '\n'));
	events_note_clear(&note);
}

static void test_events_note_other_schema(void **state)
{
	struct events_note note;
	char err[256];

	(void)state;
	assert_int_equal(events_note_parse("{\"s\":\"test_7\",\"t\":\"lines\",\"ids\":[[1,2]]}",
	                                   "dev", &note, err, sizeof err),
	                 0);
	assert_int_equal(note.kind, EVENTS_NOTE_IGNORE);
	events_note_clear(&note);
}

static void test_events_note_lines_bulk(void **state)
{
	struct events_note note;
	char err[256];

	(void)state;
	assert_int_equal(
	    events_note_parse("{\"s\":\"dev\",\"t\":\"lines\",\"ids\":[[3, 7], [9, 9], "
	                      "[12, 20]]}",
	                      "dev", &note, err, sizeof err),
	    0);
	assert_int_equal(note.kind, EVENTS_NOTE_LINES);
	assert_int_equal(note.nranges, 3);
	assert_int_equal(note.nlines, 5 + 1 + 9);
	assert_int_equal(note.lo[0], 3);
	assert_int_equal(note.hi[0], 7);
	assert_int_equal(note.lo[2], 12);
	assert_int_equal(note.hi[2], 20);
	events_note_clear(&note);
	assert_int_equal(events_note_parse("{\"s\":\"dev\",\"t\":\"bulk\",\"n\":5000}", "dev",
	                                   &note, err, sizeof err),
	                 0);
	assert_int_equal(note.kind, EVENTS_NOTE_BULK);
	assert_int_equal(note.nlines, 5000);
	events_note_clear(&note);
}

static void test_events_note_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[]",
	    "{\"t\":\"call.created\",\"d\":{}}",                  /* no schema */
	    "{\"s\":\"dev\",\"d\":{}}",                           /* no type */
	    "{\"s\":\"dev\",\"t\":\"call.deleted\",\"d\":{}}",    /* unknown type */
	    "{\"s\":\"dev\",\"t\":\"call.created\"}",             /* no data */
	    "{\"s\":\"dev\",\"t\":\"call.created\",\"d\":\"x\"}", /* data not an object */
	    "{\"s\":\"dev\",\"t\":\"lines\"}",
	    "{\"s\":\"dev\",\"t\":\"lines\",\"ids\":[]}",
	    "{\"s\":\"dev\",\"t\":\"lines\",\"ids\":[[5,3]]}",
	    "{\"s\":\"dev\",\"t\":\"lines\",\"ids\":[[0,3]]}",
	    "{\"s\":\"dev\",\"t\":\"lines\",\"ids\":[[1,2,3]]}",
	    "{\"s\":\"dev\",\"t\":\"lines\",\"ids\":[[\"1\",2]]}",
	    "{\"s\":\"dev\",\"s\":\"dev\",\"t\":\"bulk\"}", /* duplicate key */
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct events_note note;
		char err[256] = "";

		if (events_note_parse(bad[i], "dev", &note, err, sizeof err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		events_note_clear(&note);
	}
	/* more ranges than any notification holds */
	{
		size_t cap = 16 * (EVENTS_NOTE_MAX_RANGES + 2) + 64, n;
		char *p = malloc(cap);
		struct events_note note;
		char err[256];

		assert_non_null(p);
		n = (size_t)snprintf(p, cap, "{\"s\":\"dev\",\"t\":\"lines\",\"ids\":[");
		for (int i = 0; i <= EVENTS_NOTE_MAX_RANGES; i++)
			n += (size_t)snprintf(p + n, cap - n, "%s[%d,%d]", i ? "," : "", 2 * i + 1,
			                      2 * i + 1);
		snprintf(p + n, cap - n, "]}");
		assert_int_equal(events_note_parse(p, "dev", &note, err, sizeof err), -1);
		events_note_clear(&note);
		free(p);
	}
}

static void test_events_line_data(void **state)
{
	struct store_event_line line = {
	    .id = 9,
	    .call_sid = "EL_7",
	    .sequence_number = 3,
	    .speaker = "user",
	    .message = "two\nlines \"quoted\" \xc3\xa9",
	    .created_at = "2026-12-07T01:02:03.456Z",
	};
	char *data = events_line_data(&line);

	(void)state;
	assert_non_null(data);
	assert_string_equal(data,
	                    "{\"call_sid\":\"EL_7\",\"sequence_number\":3,\"speaker\":\"user\","
	                    "\"message\":\"two\\nlines \\\"quoted\\\" \xc3\xa9\","
	                    "\"created_at\":\"2026-12-07T01:02:03.456Z\"}");
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_events_note_call_event),
	    cmocka_unit_test(test_events_note_other_schema),
	    cmocka_unit_test(test_events_note_lines_bulk),
	    cmocka_unit_test(test_events_note_refused),
	    cmocka_unit_test(test_events_line_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
