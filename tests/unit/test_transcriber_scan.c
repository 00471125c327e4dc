/* test_transcriber_scan: what a one-off run (replay, redrive) remembers across a rebalance: the
 * scan's last offset per partition, the offsets' history of handled offsets, and the engine's
 * once-per-run counting built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "engine_int.h"
#include "offsets.h"
#include "scan.h"
#include "tmetrics.h"

static void rebalance(struct tr_scan *s, bool assigned, const char *topic, int32_t partition)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

	rd_kafka_topic_partition_list_add(l, topic, partition);
	tr_scan_update(s, assigned, l);
	rd_kafka_topic_partition_list_destroy(l);
}

static void test_transcriber_scan_seen_is_run_wide(void **state)
{
	struct tr_scan *s = tr_scan_new();

	(void)state;
	assert_non_null(s);
	rebalance(s, true, "lines", 0);
	rebalance(s, true, "lines", 1);
	assert_int_equal(tr_scan_count(s), 2);
	for (int64_t off = 0; off < 5; off++)
		assert_true(tr_scan_seen(s, "lines", 0, off));
	assert_false(tr_scan_seen(s, "lines", 0, 3)); /* same assignment, again */
	/* revoked: the run no longer waits for it, but remembers how far it got */
	rebalance(s, false, "lines", 0);
	assert_int_equal(tr_scan_count(s), 1);
	rebalance(s, true, "lines", 0);
	assert_int_equal(tr_scan_count(s), 2);
	for (int64_t off = 0; off < 5; off++)
		assert_false(tr_scan_seen(s, "lines", 0, off));
	assert_true(tr_scan_seen(s, "lines", 0, 5));
	/* the other partition was never read: nothing to remember, a revoke is harmless */
	rebalance(s, false, "lines", 1);
	rebalance(s, true, "lines", 1);
	assert_true(tr_scan_seen(s, "lines", 1, 0));
	tr_scan_destroy(s);
}

static void test_transcriber_offsets_past_assignments(void **state)
{
	struct tr_offsets *o = tr_offsets_new();
	int64_t off, ts;

	(void)state;
	assert_non_null(o);
	assert_int_equal(tr_offsets_past(o, "t", 0, 0), TR_OFFSET_NEW);
	for (int64_t i = 0; i < 10; i++)
		assert_int_equal(tr_offsets_add(o, "t", 0, i, i), 0);
	for (int64_t i = 0; i < 10; i++)
		if (i != 3 && i != 6) /* still parked when the partition goes */
			tr_offsets_done(o, "t", 0, i);
	assert_int_equal(tr_offsets_drop(o, "t", 0), 0);
	assert_int_equal(tr_offsets_committable(o, "t", 0), -1);
	assert_int_equal(tr_offsets_pending(o, "t", 0), 0);
	assert_false(tr_offsets_progress(o, "t", 0, &off, &ts));
	/* the next assignment: only the two dropped unhandled are taken again, once each */
	assert_int_equal(tr_offsets_past(o, "t", 0, 2), TR_OFFSET_HANDLED);
	assert_int_equal(tr_offsets_past(o, "t", 0, 3), TR_OFFSET_RETAKE);
	assert_int_equal(tr_offsets_past(o, "t", 0, 3), TR_OFFSET_HANDLED);
	assert_int_equal(tr_offsets_add(o, "t", 0, 3, 3), 0);
	assert_int_equal(tr_offsets_past(o, "t", 0, 9), TR_OFFSET_HANDLED);
	assert_int_equal(tr_offsets_past(o, "t", 0, 10), TR_OFFSET_NEW);
	assert_int_equal(tr_offsets_add(o, "t", 0, 10, 10), 0);
	/* revoked again with 3 and 10 unhandled and 6 not taken again: all three stay holes */
	assert_int_equal(tr_offsets_drop(o, "t", 0), 0);
	assert_int_equal(tr_offsets_past(o, "t", 0, 6), TR_OFFSET_RETAKE);
	assert_int_equal(tr_offsets_past(o, "t", 0, 3), TR_OFFSET_RETAKE);
	assert_int_equal(tr_offsets_past(o, "t", 0, 10), TR_OFFSET_RETAKE);
	assert_int_equal(tr_offsets_past(o, "t", 0, 7), TR_OFFSET_HANDLED);
	assert_int_equal(tr_offsets_past(o, "t", 0, 11), TR_OFFSET_NEW);
	assert_int_equal(tr_offsets_past(o, "t", 1, 0), TR_OFFSET_NEW); /* another partition */
	tr_offsets_destroy(o);
}

static void take(struct tr_engine *e, int64_t offset)
{
	struct tr_msg *m = tr_msg_new("lines", 0, offset, 1000 + offset, "k", "{}", 2, NULL, 0);

	assert_non_null(m);
	assert_int_equal(tr_engine_add(e, m), 0);
}

/* Offsets 0-4 taken, all but 2 handled, the partition revoked and assigned again, 0-6
 * delivered. */
static const struct tr_stats *rebalance_mid_run(struct tr_engine *e)
{
	for (int64_t i = 0; i < 5; i++)
		take(e, i);
	for (int64_t i = 0; i < 5; i++)
		if (i != 2)
			tr_offsets_done(e->offsets, "lines", 0, i);
	tr_engine_revoke(e, "lines", 0);
	for (int64_t i = 0; i < 7; i++)
		take(e, i);
	return tr_engine_stats(e);
}

static void test_transcriber_engine_once_per_run(void **state)
{
	struct tr_engine_config conf = {.line_topic = "lines", .post_topic = "posts"};
	struct tr_metrics tm = {0};
	struct tr_engine *e;
	const struct tr_stats *st;

	(void)state;
	/* the service: a new assignment starts afresh (a recreated topic restarts at offset 0) */
	e = tr_engine_new(&conf, NULL, NULL, &tm, NULL, NULL, NULL);
	assert_non_null(e);
	st = rebalance_mid_run(e);
	assert_int_equal(st->read, 12);
	assert_int_equal(st->redelivered, 0);
	assert_int_equal(e->fresh.n, 7);
	tr_engine_destroy(e);
	/* a replay: 2 was dropped unhandled and is taken again but counted once, the other four
	 * were handled, 5 and 6 are new */
	conf.once_per_run = true;
	e = tr_engine_new(&conf, NULL, NULL, &tm, NULL, NULL, NULL);
	assert_non_null(e);
	st = rebalance_mid_run(e);
	assert_int_equal(st->read, 7);
	assert_int_equal(st->redelivered, 4);
	assert_int_equal(e->fresh.n, 3);
	assert_int_equal(e->fresh.v[0]->offset, 2);
	assert_int_equal(e->fresh.v[1]->offset, 5);
	tr_engine_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_scan_seen_is_run_wide),
	    cmocka_unit_test(test_transcriber_offsets_past_assignments),
	    cmocka_unit_test(test_transcriber_engine_once_per_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
