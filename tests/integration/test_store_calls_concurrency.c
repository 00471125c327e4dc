/* test_store_calls_concurrency: store_calls.c against the throwaway Postgres (a migrated schema
 * per test): the dialer's claim-once guard and the sweeper's lease, alone and under concurrent
 * connections (the Call model's life cycle and db.c: test_store_calls.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "log.h"
#include "store_calls.h"
#include "test_store_calls_helpers.h"
#include "tsupport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 6

static void test_store_call_claim_dial_once(void **state)
{
	struct sstate *st = *state;
	struct store_call c;
	bool claimed = false;

	insert_call(st->db, "EL_d7_1", "d7");
	assert_int_equal(store_call_claim_dial(st->db, "EL_d7_1", &claimed), 0);
	assert_true(claimed);
	get_call(st->db, "EL_d7_1", &c);
	assert_int_equal(c.dial_attempts, 1);
	assert_iso_utc(c.dial_attempted_at);
	assert_int_equal(store_call_claim_dial(st->db, "EL_d7_1", &claimed), 0);
	assert_false(claimed);
	get_call(st->db, "EL_d7_1", &c);
	assert_int_equal(c.dial_attempts, 1);
	assert_int_equal(store_call_claim_dial(st->db, "EL_nobody", &claimed), 0);
	assert_false(claimed);
}

struct claimer {
	const char *schema;
	const char *sid;
	pthread_barrier_t *barrier;
	atomic_bool done;
	int rc;
	bool claimed;
};

static void *claimer_run(void *arg)
{
	struct claimer *c = arg;
	char err[256];
	struct db *db = db_open(ts_pg_url(), c->schema, err, sizeof err);

	c->rc = -1;
	if (db && db_ok(db)) {
		if (c->barrier)
			pthread_barrier_wait(c->barrier);
		c->rc = store_call_claim_dial(db, c->sid, &c->claimed);
	} else if (c->barrier) {
		pthread_barrier_wait(c->barrier);
	}
	db_close(db);
	atomic_store(&c->done, true);
	return NULL;
}

static void test_store_call_claim_dial_concurrent(void **state)
{
	struct sstate *st = *state;
	struct claimer one = {.schema = st->schema, .sid = "EL_d8_1"}, many[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t barrier;
	bool claimed = false;
	int winners = 0;

	/* A second dialer blocks on the first one's open transaction, then loses. */
	insert_call(st->db, "EL_d8_1", "d8");
	assert_int_equal(db_begin(st->db), 0);
	assert_int_equal(store_call_claim_dial(st->db, "EL_d8_1", &claimed), 0);
	assert_true(claimed);
	assert_int_equal(pthread_create(&th[0], NULL, claimer_run, &one), 0);
	ts_sleep_ms(300);
	assert_false(atomic_load(&one.done));
	assert_int_equal(db_commit(st->db), 0);
	pthread_join(th[0], NULL);
	assert_int_equal(one.rc, 0);
	assert_false(one.claimed);

	/* NTHREADS connections race on one call: exactly one wins. */
	insert_call(st->db, "EL_d8_2", "d8");
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		many[i] =
		    (struct claimer){.schema = st->schema, .sid = "EL_d8_2", .barrier = &barrier};
		assert_int_equal(pthread_create(&th[i], NULL, claimer_run, &many[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(many[i].rc, 0);
		winners += many[i].claimed;
	}
	pthread_barrier_destroy(&barrier);
	assert_int_equal(winners, 1);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT dial_attempts FROM calls WHERE "
	                                            "call_sid = 'EL_d8_2'"),
	                 1);
}

/* 20 stuck calls (s00..s19, started an hour ago), plus ones the sweeper must not take. */
static void insert_stuck(struct sstate *st)
{
	char sid[32];
	bool changed;

	for (int i = 0; i < 20; i++) {
		snprintf(sid, sizeof sid, "EL_s%02d_1", i);
		insert_call(st->db, sid, "s");
	}
	ts_pg_exec(st->schema, "UPDATE calls SET call_start_time = now() - interval '1 hour'");
	insert_call(st->db, "EL_fresh_1", "f");
	insert_call(st->db, "EL_done_1", "f");
	assert_int_equal(store_call_set_failed(st->db, "EL_done_1", "x", &changed), 0);
	ts_pg_exec(st->schema, "UPDATE calls SET call_start_time = now() - interval '1 hour' "
	                       "WHERE call_sid = 'EL_done_1'");
}

static void test_store_call_lease_stuck_two_connections(void **state)
{
	struct sstate *st = *state;
	struct store_call a[50], b[50];
	struct db *db2 = ts_pg_db_open(st->schema);
	int na = 0, nb = 0;

	insert_stuck(st);
	/* A holds its 5 rows in an open transaction; B skips them instead of waiting. */
	assert_int_equal(db_begin(st->db), 0);
	assert_int_equal(store_call_lease_stuck(st->db, 60, 300, a, 5, &na), 0);
	assert_int_equal(na, 5);
	assert_int_equal(store_call_lease_stuck(db2, 60, 300, b, 50, &nb), 0);
	assert_int_equal(nb, 15);
	for (int i = 0; i < na; i++)
		for (int j = 0; j < nb; j++)
			assert_true(a[i].id != b[j].id);
	for (int j = 0; j < nb; j++) {
		assert_string_equal(b[j].status, STORE_CALL_IN_PROGRESS);
		assert_string_equal(b[j].driver_id, "s");
	}
	assert_int_equal(db_commit(st->db), 0);
	/* Everything is leased now; expired leases are free again. */
	assert_int_equal(store_call_lease_stuck(db2, 60, 300, b, 50, &nb), 0);
	assert_int_equal(nb, 0);
	ts_pg_exec(st->schema, "UPDATE calls SET sweep_lease_until = now() - interval '1 second'");
	assert_int_equal(store_call_lease_stuck(db2, 60, 300, b, 50, &nb), 0);
	assert_int_equal(nb, 20);
	db_close(db2);
}

struct sweeper {
	const char *schema;
	pthread_barrier_t *barrier;
	int64_t ids[64];
	int n, rc;
};

static void *sweeper_run(void *arg)
{
	struct sweeper *s = arg;
	char err[256];
	struct db *db = db_open(ts_pg_url(), s->schema, err, sizeof err);
	struct store_call batch[3];
	int n = 0;

	s->rc = db && db_ok(db) ? 0 : -1;
	pthread_barrier_wait(s->barrier);
	while (s->rc == 0) {
		s->rc = store_call_lease_stuck(db, 60, 300, batch, 3, &n);
		if (s->rc < 0 || n == 0)
			break;
		for (int i = 0; i < n && s->n < 64; i++)
			s->ids[s->n++] = batch[i].id;
	}
	db_close(db);
	return NULL;
}

static void test_store_call_lease_stuck_concurrent(void **state)
{
	struct sstate *st = *state;
	struct sweeper sw[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t barrier;
	int64_t seen[128];
	int nseen = 0;

	insert_stuck(st);
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		sw[i] = (struct sweeper){.schema = st->schema, .barrier = &barrier};
		assert_int_equal(pthread_create(&th[i], NULL, sweeper_run, &sw[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(sw[i].rc, 0);
		for (int j = 0; j < sw[i].n; j++) {
			for (int k = 0; k < nseen; k++)
				if (seen[k] == sw[i].ids[j])
					fail_msg("call id %lld leased twice", (long long)seen[k]);
			seen[nseen++] = sw[i].ids[j];
		}
	}
	pthread_barrier_destroy(&barrier);
	assert_int_equal(nseen, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_call_claim_dial_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_claim_dial_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_lease_stuck_two_connections, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_lease_stuck_concurrent, setup,
	                                    teardown),
	};

	log_init("test_store_calls_concurrency", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
