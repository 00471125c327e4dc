/* test_transcriber_track: the transcriber's engine when memory runs out taking a message:
 * nothing about it is recorded, so it is taken when it is read again (not mistaken for a second
 * delivery) and the commit never passes it (the tracker's own case: test_offtrack). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine.h"
#include "msg.h"
#include "tmetrics.h"

#include <string.h>

#define LINES "it.webhooks.transcription"
#define POSTS "it.webhooks.post_call"

/* Allocation failure injection (linked with --wrap=realloc): the next realloc fails while
 * fail_next is set. */
void *__real_realloc(void *ptr, size_t size);
void *__wrap_realloc(void *ptr, size_t size);

static bool fail_next;

void *__wrap_realloc(void *ptr, size_t size)
{
	if (fail_next) {
		fail_next = false;
		return NULL;
	}
	return __real_realloc(ptr, size);
}

static struct tr_msg *line(int32_t partition, int64_t offset)
{
	static const char value[] =
	    "{\"event_id\":\"e\",\"received_at\":\"2025-11-21T10:30:00Z\","
	    "\"call_sid\":\"EL_1_x\",\"speaker\":\"agent\",\"message\":\"hi\"}";
	struct tr_msg *m = tr_msg_new(LINES, partition, offset, 1000 + offset, "EL_1_x", value,
	                              strlen(value), NULL, 0);

	assert_non_null(m);
	return m;
}

/* The engine takes a message whole or not at all: after a failure the same offset is taken
 * when it is read again, and only a real second delivery is ignored. */
static void test_transcriber_track_engine_refused(void **state)
{
	struct tr_metrics tm;
	struct tr_engine_config conf = {
	    .line_topic = LINES,
	    .post_topic = POSTS,
	    .windows = {30000, 120000, 30000},
	    .retry_base_ms = 100,
	    .retry_max_ms = 2000,
	    .dlq_timeout_ms = 1000,
	};
	struct tr_engine *e;

	(void)state;
	tr_metrics_init(&tm, NULL);
	e = tr_engine_new(&conf, NULL, NULL, &tm, NULL, NULL, NULL);
	assert_non_null(e);
	for (int64_t off = 0; off < 64; off++)
		assert_int_equal(tr_engine_add(e, line(0, off)), 0);
	/* the 65th needs memory both for the engine's queue and for its offsets */
	fail_next = true;
	assert_int_equal(tr_engine_add(e, line(0, 64)), -1);
	assert_false(fail_next);
	assert_int_equal(tr_engine_stats(e)->read, 64);
	assert_int_equal(tr_engine_add(e, line(0, 64)), 0); /* read again: taken */
	assert_int_equal(tr_engine_stats(e)->read, 65);
	assert_int_equal(tr_engine_stats(e)->redelivered, 0);
	assert_int_equal(tr_engine_add(e, line(0, 64)), 0); /* a real second delivery */
	assert_int_equal(tr_engine_stats(e)->read, 65);
	assert_int_equal(tr_engine_stats(e)->redelivered, 1);

	/* a new partition: the queue has room, its offsets need memory */
	fail_next = true;
	assert_int_equal(tr_engine_add(e, line(1, 0)), -1);
	assert_false(fail_next);
	assert_int_equal(tr_engine_stats(e)->read, 65);
	assert_int_equal(tr_engine_add(e, line(1, 0)), 0);
	assert_int_equal(tr_engine_stats(e)->read, 66);
	assert_false(tr_engine_idle(e));
	tr_engine_destroy(e); /* frees each held message once */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_track_engine_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
