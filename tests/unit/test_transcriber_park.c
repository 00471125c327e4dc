/* test_transcriber_park: the in-memory ordering machinery: per-call parked queues (the offsets
 * that bound commits: test_offtrack; the string map under them: test_strmap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "park.h"

static struct tr_msg *msg(const char *topic, int32_t partition, int64_t offset)
{
	struct tr_msg *m =
	    tr_msg_new(topic, partition, offset, 1000 + offset, "k", "{}", 2, NULL, 0);

	assert_non_null(m);
	return m;
}

static void test_transcriber_park_keeps_call_order(void **state)
{
	struct tr_park *p = tr_park_new();
	struct tr_vec out = {0};

	(void)state;
	assert_false(tr_park_holds(p, "A"));
	assert_int_equal(tr_park_push(p, "A", msg("t", 0, 1), 500), 0);
	assert_int_equal(tr_park_push(p, "B", msg("t", 0, 2), 100), 0);
	assert_int_equal(tr_park_push(p, "A", msg("t", 0, 3), 50), 0); /* joins, due unchanged */
	assert_int_equal(tr_park_push(p, "A", msg("t", 0, 5), 9999), 0);
	assert_true(tr_park_holds(p, "A"));
	assert_int_equal(tr_park_count(p), 4);
	assert_int_equal(tr_park_next_due(p), 100);

	/* only B is due at 100 */
	assert_int_equal(tr_park_take_due(p, 100, &out), 1);
	assert_int_equal(out.v[0]->offset, 2);
	assert_false(tr_park_holds(p, "B"));
	assert_int_equal(tr_park_next_due(p), 500);
	tr_msg_free(out.v[0]);
	out.n = 0;

	/* a post-call with the conversation_id makes A due now */
	tr_park_wake(p, "A", 200);
	tr_park_wake(p, "A", 300); /* later: ignored */
	tr_park_wake(p, "none", 0);
	assert_int_equal(tr_park_next_due(p), 200);
	assert_int_equal(tr_park_take_due(p, 199, &out), 0);
	assert_int_equal(tr_park_take_due(p, 200, &out), 3);
	assert_int_equal(out.v[0]->offset, 1);
	assert_int_equal(out.v[1]->offset, 3);
	assert_int_equal(out.v[2]->offset, 5);
	assert_int_equal(tr_park_count(p), 0);
	assert_int_equal(tr_park_next_due(p), INT64_MAX);
	for (size_t i = 0; i < out.n; i++)
		tr_msg_free(out.v[i]);
	tr_vec_free(&out);
	tr_park_destroy(p);
}

static void count_msg(void *opaque, struct tr_msg *m)
{
	(void)m;
	(*(int *)opaque)++;
}

static void test_transcriber_park_drop_partition(void **state)
{
	struct tr_park *p = tr_park_new();
	struct tr_vec out = {0};
	int seen = 0;

	(void)state;
	/* call A has a line (transcription p1) and a post-call (post p1) parked */
	assert_int_equal(tr_park_push(p, "A", msg("lines", 1, 10), 0), 0);
	assert_int_equal(tr_park_push(p, "A", msg("posts", 1, 4), 0), 0);
	assert_int_equal(tr_park_push(p, "B", msg("lines", 2, 11), 0), 0);
	assert_int_equal(tr_park_drop_partition(p, "lines", 1), 1);
	assert_int_equal(tr_park_count(p), 2);
	assert_true(tr_park_holds(p, "A"));
	assert_int_equal(tr_park_drop_partition(p, "posts", 1), 1);
	assert_false(tr_park_holds(p, "A")); /* empty queues go away */
	tr_park_each(p, count_msg, &seen);
	assert_int_equal(seen, 1);
	assert_int_equal(tr_park_take_due(p, 0, &out), 1);
	assert_string_equal(out.v[0]->topic, "lines");
	tr_msg_free(out.v[0]);
	tr_vec_free(&out);
	/* destroy frees what is still parked (checked by sanitizers) */
	assert_int_equal(tr_park_push(p, "C", msg("lines", 0, 1), 0), 0);
	tr_park_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_park_keeps_call_order),
	    cmocka_unit_test(test_transcriber_park_drop_partition),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
