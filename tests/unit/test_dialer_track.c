/* test_dialer_track: the dialer's offsets tracker when memory runs out: a message it could not
 * record leaves nothing behind, so the commit can never pass it once it is read again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "offsets.h"

/* Allocation failure injection (linked with --wrap=malloc,--wrap=realloc): the next allocation
 * fails while fail_next is set. */
void *__real_malloc(size_t size);
void *__real_realloc(void *ptr, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_realloc(void *ptr, size_t size);

static bool fail_next;

void *__wrap_malloc(size_t size)
{
	if (fail_next) {
		fail_next = false;
		return NULL;
	}
	return __real_malloc(size);
}

void *__wrap_realloc(void *ptr, size_t size)
{
	if (fail_next) {
		fail_next = false;
		return NULL;
	}
	return __real_realloc(ptr, size);
}

static void add(struct offsets *o, int32_t p, int64_t off)
{
	assert_int_equal(offsets_add(o, p, off), 0);
}

/* The ring of a partition grows at 64 entries: the 65th message needs memory. */
static void test_dialer_track_refused_message_is_not_passed(void **state)
{
	struct offsets *o = offsets_new();

	(void)state;
	for (int64_t off = 0; off < 64; off++)
		add(o, 0, off);
	fail_next = true;
	assert_int_equal(offsets_add(o, 0, 64), -1);
	assert_false(fail_next);
	assert_int_equal(offsets_pending(o, 0), 64); /* nothing recorded */
	for (int64_t off = 0; off < 64; off++)
		offsets_done(o, 0, off);
	assert_int_equal(offsets_committable(o, 0), 64); /* up to it, not past it */
	offsets_committed(o, 0, 64);
	/* read again: recorded now, and the commit waits for it even when later ones finish */
	add(o, 0, 64);
	add(o, 0, 65);
	offsets_done(o, 0, 65);
	assert_int_equal(offsets_committable(o, 0), -1);
	offsets_done(o, 0, 64);
	assert_int_equal(offsets_committable(o, 0), 66);
	offsets_destroy(o);
}

/* A new partition needs memory for its slot and its ring. */
static void test_dialer_track_refused_first_message(void **state)
{
	struct offsets *o = offsets_new();

	(void)state;
	add(o, 0, 7);
	fail_next = true; /* the partition table */
	assert_int_equal(offsets_add(o, 3, 40), -1);
	assert_int_equal(offsets_pending(o, 3), 0);
	assert_int_equal(offsets_committable(o, 3), -1);
	fail_next = true; /* the partition table grew; now its ring */
	assert_int_equal(offsets_add(o, 3, 40), -1);
	assert_int_equal(offsets_pending(o, 3), 0);
	assert_int_equal(offsets_committable(o, 3), -1);
	add(o, 3, 40);
	offsets_done(o, 3, 40);
	assert_int_equal(offsets_committable(o, 3), 41);
	assert_int_equal(offsets_pending(o, 0), 1); /* the other partition untouched */
	offsets_destroy(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_track_refused_message_is_not_passed),
	    cmocka_unit_test(test_dialer_track_refused_first_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
