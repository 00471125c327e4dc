/* test_transcriber_ahead: what is read during a round is handed over afterwards in arrival order,
 * messages and rebalances interleaved; a flush that does not take the messages frees them and
 * still applies the rebalances. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ahead.h"

struct seen {
	char log[256];
};

static void seen_msg(void *opaque, struct tr_msg *m)
{
	struct seen *s = opaque;
	size_t len = strlen(s->log);

	snprintf(s->log + len, sizeof s->log - len, "m%lld ", (long long)m->offset);
	tr_msg_free(m);
}

static void seen_rebalance(void *opaque, bool assigned,
                           const rd_kafka_topic_partition_list_t *parts)
{
	struct seen *s = opaque;
	size_t len = strlen(s->log);

	snprintf(s->log + len, sizeof s->log - len, "%c%d ", assigned ? '+' : '-',
	         (int)parts->elems[0].partition);
}

static struct tr_msg *msg(int64_t offset)
{
	struct tr_msg *m = tr_msg_new("t", 0, offset, 0, "k", "{}", 2, NULL, 0);

	assert_non_null(m);
	return m;
}

static void push_rebalance(struct tr_ahead *a, bool assigned, int32_t partition)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);

	rd_kafka_topic_partition_list_add(parts, "t", partition);
	assert_int_equal(tr_ahead_push_rebalance(a, assigned, parts), 0);
	rd_kafka_topic_partition_list_destroy(parts); /* the ahead keeps a copy */
}

static void test_transcriber_ahead_keeps_arrival_order(void **state)
{
	struct tr_ahead *a = tr_ahead_new();
	struct seen s = {""};
	struct tr_ahead_sink sink = {seen_msg, seen_rebalance, &s};

	(void)state;
	assert_int_equal(tr_ahead_push_msg(a, msg(1)), 0);
	push_rebalance(a, false, 3);
	assert_int_equal(tr_ahead_push_msg(a, msg(2)), 0);
	push_rebalance(a, true, 4);
	assert_int_equal(tr_ahead_push_msg(a, msg(3)), 0);
	assert_int_equal(tr_ahead_messages(a), 3);
	tr_ahead_flush(a, &sink);
	assert_string_equal(s.log, "m1 -3 m2 +4 m3 ");
	assert_int_equal(tr_ahead_messages(a), 0);
	/* empty now: a second flush hands over nothing */
	s.log[0] = '\0';
	tr_ahead_flush(a, &sink);
	assert_string_equal(s.log, "");
	tr_ahead_destroy(a);
}

static void test_transcriber_ahead_drop_keeps_rebalances(void **state)
{
	struct tr_ahead *a = tr_ahead_new();
	struct seen s = {""};
	struct tr_ahead_sink sink = {NULL, seen_rebalance, &s};

	(void)state;
	assert_int_equal(tr_ahead_push_msg(a, msg(1)), 0);
	push_rebalance(a, false, 1);
	assert_int_equal(tr_ahead_push_msg(a, msg(2)), 0);
	tr_ahead_flush(a, &sink); /* messages freed, not taken (ASan/valgrind see leaks) */
	assert_string_equal(s.log, "-1 ");
	/* what is left at destroy is freed too */
	assert_int_equal(tr_ahead_push_msg(a, msg(9)), 0);
	push_rebalance(a, true, 2);
	tr_ahead_destroy(a);
	tr_ahead_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_ahead_keeps_arrival_order),
	    cmocka_unit_test(test_transcriber_ahead_drop_keeps_rebalances),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
