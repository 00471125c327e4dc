/* test_transcriber_scan: what a one-off run (replay, redrive) remembers across a rebalance: the
 * scan's last offset per partition, the history of handled offsets (history.c), and the engine's
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
#include "history.h"
#include "offtrack.h"
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

/* Takes offsets first..last-1 of "t"/0 into t, finishes all but those in keep, and ends the
 * assignment (what the engine does at a revoke). */
static void assignment(struct tr_history *h, struct offtrack *t, int64_t first, int64_t last,
                       const int64_t *keep, size_t nkeep)
{
	for (int64_t i = first; i < last; i++)
		assert_int_equal(offtrack_add(t, "t", 0, i, i), 0);
	for (int64_t i = first; i < last; i++) {
		bool kept = false;

		for (size_t k = 0; k < nkeep; k++)
			kept = kept || keep[k] == i;
		if (!kept)
			offtrack_done(t, "t", 0, i);
	}
	assert_int_equal(tr_history_keep(h, t, "t", 0), 0);
	offtrack_drop(t, "t", 0);
}

static void test_transcriber_history_past_assignments(void **state)
{
	struct tr_history *h = tr_history_new();
	struct offtrack *t = offtrack_new();
	static const int64_t parked[] = {3, 6}, again[] = {3, 10};

	(void)state;
	assert_non_null(h);
	assert_non_null(t);
	assert_int_equal(tr_history_past(h, "t", 0, 0), TR_PAST_NEW);
	assert_int_equal(tr_history_keep(h, t, "t", 0), 0); /* nothing taken: nothing kept */
	assert_int_equal(tr_history_past(h, "t", 0, 0), TR_PAST_NEW);
	/* 0-9 taken, 3 and 6 still parked when the partition goes */
	assignment(h, t, 0, 10, parked, 2);
	assert_int_equal(offtrack_committable(t, "t", 0), -1);
	/* the next assignment: only the two dropped unhandled are taken again, once each */
	assert_int_equal(tr_history_past(h, "t", 0, 2), TR_PAST_HANDLED);
	assert_int_equal(tr_history_past(h, "t", 0, 3), TR_PAST_RETAKE);
	assert_int_equal(tr_history_past(h, "t", 0, 3), TR_PAST_HANDLED);
	assert_int_equal(tr_history_past(h, "t", 0, 9), TR_PAST_HANDLED);
	assert_int_equal(tr_history_past(h, "t", 0, 10), TR_PAST_NEW);
	/* it takes 3 and 10 and is revoked with both unhandled, 6 not taken again: all three
	 * stay holes */
	assert_int_equal(offtrack_add(t, "t", 0, 3, 3), 0);
	assignment(h, t, 10, 11, again, 2);
	assert_int_equal(tr_history_past(h, "t", 0, 6), TR_PAST_RETAKE);
	assert_int_equal(tr_history_past(h, "t", 0, 3), TR_PAST_RETAKE);
	assert_int_equal(tr_history_past(h, "t", 0, 10), TR_PAST_RETAKE);
	assert_int_equal(tr_history_past(h, "t", 0, 7), TR_PAST_HANDLED);
	assert_int_equal(tr_history_past(h, "t", 0, 11), TR_PAST_NEW);
	assert_int_equal(tr_history_past(h, "t", 1, 0), TR_PAST_NEW); /* another partition */
	offtrack_destroy(t);
	tr_history_destroy(h);
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
			offtrack_done(e->offsets, "lines", 0, i);
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
	    cmocka_unit_test(test_transcriber_history_past_assignments),
	    cmocka_unit_test(test_transcriber_engine_once_per_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
