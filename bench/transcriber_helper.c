/* transcriber_helper: the measuring halves of bench/transcriber that need libpq directly.
 *
 *   transcriber-bench-helper plain-insert ROWS CONVERSATIONS
 *       the naive baseline: one autocommit INSERT per row (PQexecParams), rows spread over
 *       conversations conv_p_0..; prints "rows seconds rows_per_second"
 *   transcriber-bench-helper pipeline-insert ROWS CONVERSATIONS [PER_TX]
 *       the second baseline: the same plain INSERT (prepared once), PER_TX (500) rows per
 *       transaction, each transaction sent whole in libpq pipeline mode (BEGIN, the INSERTs,
 *       COMMIT, one sync) and its results read before the next; rows spread over conv_q_0..;
 *       prints "rows seconds rows_per_second"
 *   transcriber-bench-helper lookup SAMPLES CALLS
 *       SAMPLES single lookups of random call_sids EL_lk_0..EL_lk_<CALLS-1> through
 *       store_call_get (the transcriber's own code path); prints "p50_ms p99_ms max_ms"
 *
 * DATABASE_URL and DB_SCHEMA come from the environment. */
#include "db.h"
#include "log.h"
#include "store_calls.h"
#include "timeutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct db *connect_db(void)
{
	const char *url = getenv("DATABASE_URL"), *schema = getenv("DB_SCHEMA");
	char errstr[256];
	struct db *db = db_open(url ? url : "", schema ? schema : "dev", errstr, sizeof errstr);

	if (!db || !db_ok(db)) {
		fprintf(stderr, "transcriber-bench-helper: %s\n", db ? db_errmsg(db) : errstr);
		db_close(db);
		return NULL;
	}
	return db;
}

static int plain_insert(long rows, long convs)
{
	static const char sql[] =
	    "INSERT INTO call_transcriptions (conversation_id, speaker, message, sequence_number, "
	    "event_id) VALUES ($1, $2, $3, $4, $5)";
	struct db *db = connect_db();
	PGconn *conn;
	double t0;

	if (!db)
		return 1;
	conn = db_conn(db);
	t0 = now_s();
	for (long i = 0; i < rows; i++) {
		char conv[32], msg[96], seq[24], ev[32];
		const char *params[5] = {conv, i % 2 ? "user" : "agent", msg, seq, ev};
		PGresult *res;

		snprintf(conv, sizeof conv, "conv_p_%ld", i % convs);
		snprintf(msg, sizeof msg,
		         "plain line %ld of a conversation, about as long as a turn",
		         i / convs + 1);
		snprintf(seq, sizeof seq, "%ld", i / convs + 1);
		snprintf(ev, sizeof ev, "plain-%ld", i);
		res = PQexecParams(conn, sql, 5, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			fprintf(stderr, "insert: %s", PQerrorMessage(conn));
			PQclear(res);
			db_close(db);
			return 1;
		}
		PQclear(res);
	}
	printf("%ld %.3f %.1f\n", rows, now_s() - t0, (double)rows / (now_s() - t0));
	db_close(db);
	return 0;
}

/* Reads a pipeline's results up to its sync; returns 0 when every statement succeeded. */
static int pipeline_results(PGconn *conn)
{
	int rc = 0;

	for (;;) {
		PGresult *res = PQgetResult(conn);
		ExecStatusType st;

		if (!res) {
			if (PQstatus(conn) != CONNECTION_OK)
				return -1;
			continue; /* between the results of two statements */
		}
		st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			return rc;
		}
		if (st != PGRES_COMMAND_OK) {
			if (rc == 0)
				fprintf(stderr, "pipeline: %s", PQresultErrorMessage(res));
			rc = -1;
		}
		PQclear(res);
	}
}

static int pipeline_insert(long rows, long convs, long per_tx)
{
	static const char sql[] =
	    "INSERT INTO call_transcriptions (conversation_id, speaker, message, sequence_number, "
	    "event_id, source_partition, source_offset) VALUES ($1, $2, $3, $4, $5, $6, $7)";
	struct db *db = connect_db();
	PGconn *conn;
	PGresult *res;
	double t0;
	int rc = 1;

	if (!db)
		return 1;
	conn = db_conn(db);
	res = PQprepare(conn, "ins", sql, 7, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "prepare: %s", PQerrorMessage(conn));
		PQclear(res);
		goto out;
	}
	PQclear(res);
	if (PQenterPipelineMode(conn) != 1) {
		fprintf(stderr, "pipeline mode: %s", PQerrorMessage(conn));
		goto out;
	}
	t0 = now_s();
	for (long i = 0; i < rows;) {
		if (PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) != 1)
			goto fail;
		for (long k = 0; k < per_tx && i < rows; k++, i++) {
			char conv[32], msg[96], seq[24], ev[32], part[16], off[24];
			const char *params[7] = {conv, i % 2 ? "user" : "agent", msg, seq, ev, part,
			                         off};

			snprintf(conv, sizeof conv, "conv_q_%ld", i % convs);
			snprintf(msg, sizeof msg,
			         "pipelined line %ld of a conversation, about as long as a turn",
			         i / convs + 1);
			snprintf(seq, sizeof seq, "%ld", i / convs + 1);
			snprintf(ev, sizeof ev, "pipe-%ld", i);
			snprintf(part, sizeof part, "%ld", (i % convs) % 8);
			snprintf(off, sizeof off, "%ld", i);
			if (PQsendQueryPrepared(conn, "ins", 7, params, NULL, NULL, 0) != 1)
				goto fail;
		}
		if (PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
		    PQpipelineSync(conn) != 1 || pipeline_results(conn) < 0)
			goto fail;
	}
	printf("%ld %.3f %.1f\n", rows, now_s() - t0, (double)rows / (now_s() - t0));
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "pipeline insert: %s", PQerrorMessage(conn));
out:
	db_close(db);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int lookup(long samples, long calls)
{
	struct db *db = connect_db();
	double *lat = calloc((size_t)samples, sizeof *lat);
	uint64_t rng = (uint64_t)time_now_ms() | 1;

	if (!db || !lat) {
		free(lat);
		db_close(db);
		return 1;
	}
	for (long i = 0; i < samples; i++) {
		char sid[32];
		struct store_call call;
		bool found = false;
		double t0;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		snprintf(sid, sizeof sid, "EL_lk_%" PRIu64, rng % (uint64_t)calls);
		t0 = now_s();
		if (store_call_get(db, sid, &call, &found) < 0 || !found) {
			fprintf(stderr, "lookup %s: %s\n", sid,
			        found ? db_errmsg(db) : "not found");
			free(lat);
			db_close(db);
			return 1;
		}
		lat[i] = (now_s() - t0) * 1000.0;
	}
	qsort(lat, (size_t)samples, sizeof *lat, cmp_double);
	printf("%.3f %.3f %.3f\n", lat[samples / 2], lat[samples * 99 / 100], lat[samples - 1]);
	free(lat);
	db_close(db);
	return 0;
}

int main(int argc, char **argv)
{
	long a = argc > 2 ? atol(argv[2]) : 0, b = argc > 3 ? atol(argv[3]) : 0;

	log_init("transcriber-bench-helper", LOG_WARN);

	if (argc == 4 && strcmp(argv[1], "plain-insert") == 0 && a > 0 && b > 0)
		return plain_insert(a, b);
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "pipeline-insert") == 0 && a > 0 && b > 0)
		return pipeline_insert(a, b, argc == 5 && atol(argv[4]) > 0 ? atol(argv[4]) : 500);
	if (argc == 4 && strcmp(argv[1], "lookup") == 0 && a > 0 && b > 0)
		return lookup(a, b);
	fprintf(stderr, "usage: transcriber-bench-helper plain-insert ROWS CONVERSATIONS | "
	                "pipeline-insert ROWS CONVERSATIONS [PER_TX] | lookup SAMPLES CALLS\n");
	return 2;
}
