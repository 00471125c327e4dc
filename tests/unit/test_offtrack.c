/* test_offtrack: the one offset tracker of both workers: a commit names at most the oldest
 * unfinished message of its partition, also when memory runs out recording one (linked with
 * --wrap=realloc to make an allocation fail). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "offtrack.h"

void *__real_realloc(void *ptr, size_t size);
void *__wrap_realloc(void *ptr, size_t size);

static bool fail_next; /* the next realloc fails */

void *__wrap_realloc(void *ptr, size_t size)
{
	if (fail_next) {
		fail_next = false;
		return NULL;
	}
	return __real_realloc(ptr, size);
}

static void add(struct offtrack *t, const char *topic, int32_t p, int64_t off)
{
	assert_int_equal(offtrack_add(t, topic, p, off, 1000 + off), 0);
}

static void test_offtrack_nothing_consumed(void **state)
{
	struct offtrack *t = offtrack_new();
	int64_t off, ts;

	(void)state;
	assert_int_equal(offtrack_committable(t, "t", 0), -1);
	assert_false(offtrack_last(t, "t", 0, &off, &ts));
	add(t, "t", 0, 10);
	add(t, "t", 0, 11);
	assert_int_equal(offtrack_committable(t, "t", 0), 10); /* nothing finished: the start */
	assert_int_equal(offtrack_committable(t, "t", 7), -1); /* never seen */
	assert_int_equal(offtrack_pending(t, "t", 7), 0);
	offtrack_done(t, "t", 7, 10); /* unknown partition: ignored */
	offtrack_destroy(t);
	offtrack_destroy(NULL);
}

static void test_offtrack_commit_stops_at_oldest_unfinished(void **state)
{
	struct offtrack *t = offtrack_new();
	int64_t off, ts;

	(void)state;
	for (int64_t i = 10; i < 15; i++)
		add(t, "t", 0, i);
	offtrack_done(t, "t", 0, 10);
	offtrack_done(t, "t", 0, 12);
	offtrack_done(t, "t", 0, 13);
	/* 11 is in hand: 12 and 13 are finished but must be read again after a crash */
	assert_int_equal(offtrack_committable(t, "t", 0), 11);
	assert_int_equal(offtrack_pending(t, "t", 0), 2);
	offtrack_done(t, "t", 0, 11);
	assert_int_equal(offtrack_committable(t, "t", 0), 14);
	offtrack_done(t, "t", 0, 14);
	offtrack_done(t, "t", 0, 99);                          /* not recorded: ignored */
	offtrack_done(t, "t", 0, 14);                          /* twice: ignored */
	assert_int_equal(offtrack_committable(t, "t", 0), 15); /* all finished: last + 1 */
	assert_int_equal(offtrack_pending(t, "t", 0), 0);
	assert_true(offtrack_last(t, "t", 0, &off, &ts));
	assert_int_equal(off, 14);
	assert_int_equal(ts, 1014);
	offtrack_destroy(t);
}

static void test_offtrack_partitions_and_topics_apart(void **state)
{
	struct offtrack *t = offtrack_new();

	(void)state;
	add(t, "a", 0, 5);
	add(t, "a", 3, 7);
	add(t, "b", 0, 100);
	add(t, "a", 0, 6);
	offtrack_done(t, "a", 3, 7);
	offtrack_done(t, "a", 0, 6);
	offtrack_done(t, "b", 0, 5); /* another topic's offset: not b's */
	assert_int_equal(offtrack_committable(t, "a", 3), 8);
	assert_int_equal(offtrack_committable(t, "a", 0), 5);
	assert_int_equal(offtrack_committable(t, "b", 0), 100);
	assert_int_equal(offtrack_pending(t, "b", 0), 1);
	offtrack_destroy(t);
}

static void test_offtrack_gaps_in_offsets(void **state)
{
	struct offtrack *t = offtrack_new();

	(void)state;
	/* compacted or transactional topics skip offsets: only consumed ones count */
	add(t, "t", 1, 10);
	add(t, "t", 1, 20);
	add(t, "t", 1, 35);
	offtrack_done(t, "t", 1, 20);
	offtrack_done(t, "t", 1, 10);
	assert_int_equal(offtrack_committable(t, "t", 1), 35);
	offtrack_done(t, "t", 1, 36);
	assert_int_equal(offtrack_committable(t, "t", 1), 35);
	offtrack_done(t, "t", 1, 35);
	assert_int_equal(offtrack_committable(t, "t", 1), 36);
	offtrack_destroy(t);
}

static void test_offtrack_delivered_again(void **state)
{
	struct offtrack *t = offtrack_new();
	int64_t off, ts;
	int64_t out[4];

	(void)state;
	add(t, "t", 0, 50);
	add(t, "t", 0, 51);
	add(t, "t", 0, 51); /* the same offset twice is one entry */
	assert_int_equal(offtrack_pending(t, "t", 0), 2);
	offtrack_done(t, "t", 0, 50);
	offtrack_done(t, "t", 0, 51);
	/* read again from an earlier position: in hand again, the commit waits for them */
	add(t, "t", 0, 49);
	add(t, "t", 0, 51);
	add(t, "t", 0, 50);
	assert_int_equal(offtrack_unfinished(t, "t", 0, out, 4), 3);
	assert_int_equal(out[0], 49);
	assert_int_equal(out[1], 50);
	assert_int_equal(out[2], 51);
	assert_int_equal(offtrack_committable(t, "t", 0), 49);
	assert_true(offtrack_last(t, "t", 0, &off, &ts));
	assert_int_equal(off, 51); /* the highest stays */
	offtrack_done(t, "t", 0, 50);
	offtrack_done(t, "t", 0, 49);
	assert_int_equal(offtrack_committable(t, "t", 0), 51);
	assert_int_equal(offtrack_unfinished(t, "t", 0, out, 0), 1);
	offtrack_destroy(t);
}

struct commits {
	int n;
	int64_t next[8];
};

static void record_commit(void *opaque, const char *topic, int32_t partition, int64_t next)
{
	struct commits *c = opaque;

	assert_string_equal(topic, "t");
	assert_int_equal(partition, 0);
	c->next[c->n++] = next;
}

static void test_offtrack_reports_only_progress(void **state)
{
	struct offtrack *t = offtrack_new();
	struct commits c = {0};

	(void)state;
	add(t, "t", 0, 0);
	add(t, "t", 0, 1);
	offtrack_each_uncommitted(t, record_commit, &c);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.next[0], 0); /* nothing finished: commit 0 (the start) */
	offtrack_committed(t, "t", 0, 0);
	c.n = 0;
	offtrack_each_uncommitted(t, record_commit, &c);
	assert_int_equal(c.n, 0);
	offtrack_done(t, "t", 0, 0);
	offtrack_done(t, "t", 0, 1);
	offtrack_each_uncommitted(t, record_commit, &c);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.next[0], 2);
	offtrack_committed(t, "t", 0, 2);
	offtrack_committed(t, "t", 0, 1); /* an older commit does not go back */
	c.n = 0;
	offtrack_each_uncommitted(t, record_commit, &c);
	assert_int_equal(c.n, 0);
	offtrack_destroy(t);
}

static void test_offtrack_drop_forgets(void **state)
{
	struct offtrack *t = offtrack_new();
	struct commits c = {0};
	int64_t off, ts;

	(void)state;
	add(t, "t", 0, 7);
	add(t, "t", 0, 8);
	offtrack_done(t, "t", 0, 7);
	offtrack_committed(t, "t", 0, 8);
	offtrack_drop(t, "t", 0);
	assert_int_equal(offtrack_committable(t, "t", 0), -1);
	assert_int_equal(offtrack_pending(t, "t", 0), 0);
	assert_false(offtrack_last(t, "t", 0, &off, &ts));
	offtrack_done(t, "t", 0, 8); /* after a drop: ignored */
	offtrack_drop(t, "t", 5);    /* unknown: nothing */
	/* assigned again lower down: its commits count again from there */
	add(t, "t", 0, 3);
	offtrack_done(t, "t", 0, 3);
	offtrack_each_uncommitted(t, record_commit, &c);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.next[0], 4);
	offtrack_destroy(t);
}

/* Many rounds with more in hand than the first array holds, finished from either end and from
 * the middle, against a plain list of what is unfinished. */
static void test_offtrack_matches_a_plain_list(void **state)
{
	struct offtrack *t = offtrack_new();
	static bool open[20000];
	int64_t next = 0, low = 0;
	unsigned seed = 7;

	(void)state;
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 100; i++) {
			add(t, "t", 2, next);
			open[next++] = true;
		}
		for (int i = 0; i < 90; i++) {
			int64_t off = low + (int64_t)((seed = seed * 1103515245u + 12345u) >> 8) %
			                        (next - low);
			size_t n = 0;

			offtrack_done(t, "t", 2, off);
			open[off] = false;
			while (low < next && !open[low])
				low++;
			for (int64_t k = low; k < next; k++)
				n += open[k];
			assert_int_equal(offtrack_committable(t, "t", 2), low);
			assert_int_equal(offtrack_pending(t, "t", 2), n);
		}
	}
	offtrack_destroy(t);
}

/* The array of a partition grows at 64 entries: the 65th message needs memory. */
static void test_offtrack_refused_message_is_not_passed(void **state)
{
	struct offtrack *t = offtrack_new();
	int64_t last, ts;

	(void)state;
	for (int64_t off = 0; off < 64; off++)
		add(t, "t", 0, off);
	fail_next = true;
	assert_int_equal(offtrack_add(t, "t", 0, 64, 1064), -1);
	assert_false(fail_next);
	assert_int_equal(offtrack_pending(t, "t", 0), 64); /* nothing recorded */
	assert_true(offtrack_last(t, "t", 0, &last, &ts));
	assert_int_equal(last, 63); /* not consumed */
	for (int64_t off = 0; off < 64; off++)
		offtrack_done(t, "t", 0, off);
	assert_int_equal(offtrack_committable(t, "t", 0), 64); /* up to it, not past it */
	/* read again: recorded now, and the commit waits for it even when later ones finish */
	add(t, "t", 0, 64);
	add(t, "t", 0, 65);
	offtrack_done(t, "t", 0, 65);
	assert_int_equal(offtrack_committable(t, "t", 0), 64);
	offtrack_done(t, "t", 0, 64);
	assert_int_equal(offtrack_committable(t, "t", 0), 66);
	offtrack_destroy(t);
}

/* A new partition needs memory for its place in the table and for its array. */
static void test_offtrack_refused_first_message(void **state)
{
	struct offtrack *t = offtrack_new();

	(void)state;
	add(t, "t", 0, 7);
	for (int32_t p = 1; p < 8; p++) /* fills the table's first 8 places */
		add(t, "t", p, 0);
	fail_next = true; /* the table */
	assert_int_equal(offtrack_add(t, "t", 9, 40, 0), -1);
	assert_int_equal(offtrack_committable(t, "t", 9), -1);
	fail_next = true; /* the table grew; now the partition's array */
	assert_int_equal(offtrack_add(t, "t", 9, 40, 0), -1);
	assert_int_equal(offtrack_pending(t, "t", 9), 0);
	assert_int_equal(offtrack_committable(t, "t", 9), -1);
	add(t, "t", 9, 40);
	offtrack_done(t, "t", 9, 40);
	assert_int_equal(offtrack_committable(t, "t", 9), 41);
	assert_int_equal(offtrack_pending(t, "t", 0), 1); /* the others untouched */
	assert_int_equal(offtrack_committable(t, "t", 0), 7);
	offtrack_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_offtrack_nothing_consumed),
	    cmocka_unit_test(test_offtrack_commit_stops_at_oldest_unfinished),
	    cmocka_unit_test(test_offtrack_partitions_and_topics_apart),
	    cmocka_unit_test(test_offtrack_gaps_in_offsets),
	    cmocka_unit_test(test_offtrack_delivered_again),
	    cmocka_unit_test(test_offtrack_reports_only_progress),
	    cmocka_unit_test(test_offtrack_drop_forgets),
	    cmocka_unit_test(test_offtrack_matches_a_plain_list),
	    cmocka_unit_test(test_offtrack_refused_message_is_not_passed),
	    cmocka_unit_test(test_offtrack_refused_first_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
