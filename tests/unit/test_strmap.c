/* test_strmap: the string map under the transcriber's parked calls and elevensim's store:
 * probe chains intact across deletes, replace, clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "strmap.h"

static void test_strmap_many_keys(void **state)
{
	struct strmap *map = strmap_new();
	static int values[5000];
	char key[32];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "EL_%d_k", i);
		values[i] = i;
		assert_int_equal(strmap_put(map, key, &values[i]), 0);
	}
	assert_int_equal(strmap_count(map), 5000);
	/* delete every other key: probe chains must stay intact for the rest */
	for (int i = 0; i < 5000; i += 2) {
		snprintf(key, sizeof key, "EL_%d_k", i);
		assert_ptr_equal(strmap_del(map, key), &values[i]);
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "EL_%d_k", i);
		if (i % 2)
			assert_ptr_equal(strmap_get(map, key), &values[i]);
		else
			assert_null(strmap_get(map, key));
	}
	assert_int_equal(strmap_count(map), 2500);
	assert_null(strmap_del(map, "absent"));
	assert_int_equal(strmap_put(map, "EL_1_k", &values[7]), 0); /* replace */
	assert_ptr_equal(strmap_get(map, "EL_1_k"), &values[7]);
	assert_int_equal(strmap_count(map), 2500);
	strmap_destroy(map);
}

static int freed;

static void count_free(void *value)
{
	(void)value;
	freed++;
}

static void sum_values(void *opaque, const char *key, void *value)
{
	(void)key;
	*(int *)opaque += *(int *)value;
}

static void test_strmap_clear_and_each(void **state)
{
	struct strmap *map = strmap_new();
	static int values[100];
	char key[32];
	int sum = 0;

	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "call_%d", i);
		values[i] = i;
		assert_int_equal(strmap_put(map, key, &values[i]), 0);
	}
	strmap_each(map, sum_values, &sum);
	assert_int_equal(sum, 4950);
	strmap_clear(map, count_free);
	assert_int_equal(freed, 100);
	assert_int_equal(strmap_count(map), 0);
	assert_null(strmap_get(map, "call_5"));
	assert_int_equal(strmap_put(map, "call_5", &values[5]), 0); /* usable again */
	assert_ptr_equal(strmap_get(map, "call_5"), &values[5]);
	strmap_clear(map, NULL);
	assert_int_equal(freed, 100);
	strmap_destroy(map);
	strmap_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strmap_many_keys),
	    cmocka_unit_test(test_strmap_clear_and_each),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
