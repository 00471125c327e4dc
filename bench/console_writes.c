/* console_writes: bench/console's measure of what the console's schema costs the workers' call
 * writes (store_calls: insert, claim, conversation, completion; the first and the last fire
 * migration 010's triggers), per call, in transactions rolled back. Three passes over the same
 * loaded data: everything (008's indexes and 010's triggers), without 010's triggers, and
 * without either; repeated and the fastest of each kept, so a burst of noise from the other
 * processes on the machine does not decide the ratio. */
#include "console_bench.h"

#include "db.h"
#include "store_calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *const SQL_DROP_010[] = {
    "DROP TRIGGER calls_console_window_ins ON calls",
    "DROP TRIGGER calls_console_window_del ON calls",
    "DROP TRIGGER calls_console_window_upd ON calls",
};
const char console_bench_drop_008[] =
    "DROP INDEX idx_calls_console_created, idx_calls_console_status, idx_calls_console_driver,"
    " idx_calls_console_trip";

/* One pass: calls call lives; its time per call in microseconds, or a negative value. */
static double writes_pass(struct db *db, int pass, int round, long calls)
{
	double t0;
	bool hit;

	if (db_begin(db) != 0)
		goto fail;
	for (int i = 0; pass >= 1 && i < 3; i++)
		if (db_cmd(db, SQL_DROP_010[i], 0, NULL) != 0)
			goto fail;
	if (pass >= 2 && db_cmd(db, console_bench_drop_008, 0, NULL) != 0)
		goto fail;
	t0 = console_bench_now_ms();
	for (long i = 0; i < calls; i++) {
		char sid[48], drv[24], conv[48];

		snprintf(sid, sizeof sid, "EL_w%d_%d_%ld", pass, round, i);
		snprintf(drv, sizeof drv, "%ld", 1 + i % 1000);
		snprintf(conv, sizeof conv, "conv_w%d_%d_%ld", pass, round, i);
		if (store_call_insert(db, sid, drv, sid, &hit) != 0 ||
		    store_call_claim_dial(db, sid, &hit) != 0 ||
		    store_call_set_conversation(db, sid, conv, &hit) != 0 ||
		    store_call_set_completed(db, sid, NULL, NULL, &hit) != 0)
			goto fail;
	}
	t0 = (console_bench_now_ms() - t0) * 1000.0 / (double)calls;
	db_rollback(db);
	return t0;
fail:
	fprintf(stderr, "console-bench: writes: %s\n", db_errmsg(db));
	db_rollback(db);
	return -1;
}

int console_bench_writes(struct db *db, long calls, int rounds, double us[3])
{
	us[0] = us[1] = us[2] = 0;
	for (int r = 0; r < rounds; r++)
		for (int pass = 0; pass < 3; pass++) {
			double t = writes_pass(db, pass, r, calls);

			if (t < 0)
				return -1;
			if (us[pass] == 0 || t < us[pass])
				us[pass] = t;
		}
	return 0;
}

/* What an advance pays `minutes` after the previous one (the ingress's period, or a read after a
 * pause): 010's console_driver_window_advance over the calls that left the window meanwhile, in a
 * transaction rolled back. *ms and *gone are set. */
int console_bench_advance_cost(struct db *db, int minutes, double *ms, long *gone)
{
	char q[200], v[32];
	double t0;

	snprintf(q, sizeof q,
	         "UPDATE console_driver_window_state SET span = span - interval '%d minutes'",
	         minutes);
	if (db_begin(db) != 0 || console_bench_sql(db, q) != 0 ||
	    console_bench_value(
	        db,
	        "SELECT count(*) FROM calls, console_driver_window_state s WHERE created_at >="
	        " s.cutoff AND created_at < now() - s.span",
	        v, sizeof v) != 0)
		goto fail;
	*gone = atol(v);
	t0 = console_bench_now_ms();
	if (console_bench_sql(db, "SELECT console_driver_window_advance()") != 0)
		goto fail;
	*ms = console_bench_now_ms() - t0;
	db_rollback(db);
	return 0;
fail:
	db_rollback(db);
	return -1;
}
