/* console_load: bench/console's data: calls, drivers and transcript lines through COPY.
 *
 * Calls are spread evenly over the last DAYS days, oldest first (ids follow created_at, as in
 * production); each is given a driver by a hash of its number (every driver about calls/drivers
 * calls), a trip of its own, and an outcome: the last 15 minutes' calls are in progress, older
 * ones completed (88%) or failed (12%, six reasons of unequal frequency). Calls with a
 * conversation get LINES lines each, inserted after the calls. Deterministic. */
#include "console_bench.h"

#include "db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define US_PER_S INT64_C(1000000)

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/* "2026-12-07 01:02:03.456789+00" */
static void ts(int64_t us, char *out, size_t size)
{
	time_t s = (time_t)(us / US_PER_S);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(out, size, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % US_PER_S));
}

struct copybuf {
	char *buf;
	size_t len, cap;
	PGconn *conn;
	int failed;
};

static void cb_flush(struct copybuf *b)
{
	if (b->len > 0 && PQputCopyData(b->conn, b->buf, (int)b->len) != 1)
		b->failed = 1;
	b->len = 0;
}

static void cb_add(struct copybuf *b, const char *line)
{
	size_t n = strlen(line);

	if (b->len + n > b->cap)
		cb_flush(b);
	memcpy(b->buf + b->len, line, n);
	b->len += n;
}

static int copy_begin(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	int ok = PQresultStatus(res) == PGRES_COPY_IN;

	if (!ok)
		fprintf(stderr, "console-bench: %s", PQerrorMessage(conn));
	PQclear(res);
	return ok ? 0 : -1;
}

static int copy_end(struct copybuf *b)
{
	PGresult *res;
	int ok;

	cb_flush(b);
	if (PQputCopyEnd(b->conn, b->failed ? "write failed" : NULL) != 1)
		return -1;
	res = PQgetResult(b->conn);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "console-bench: COPY: %s", PQerrorMessage(b->conn));
	PQclear(res);
	while ((res = PQgetResult(b->conn)) != NULL)
		PQclear(res);
	return ok && !b->failed ? 0 : -1;
}

static const char *const reasons[] = {
    "no_answer", "no_answer", "no_answer",      "busy",      "busy",
    "api_error", "voicemail", "invalid_number", "no_answer", "dial_outcome_unknown"};

/* What call n (0 = oldest) is. */
struct bench_call {
	int64_t created_us;
	uint64_t driver;
	const char *status;
	const char *reason; /* NULL unless failed */
	int has_conv;
	int duration_s;
};

static void bench_call(const struct console_bench_load *o, int64_t now_us, long n,
                       struct bench_call *c)
{
	uint64_t h = mix((uint64_t)n + 1);
	int64_t span = (int64_t)o->days * 86400 * US_PER_S;

	c->created_us = now_us - span + (int64_t)((double)span * (double)n / (double)o->calls);
	c->driver = 1 + h % (uint64_t)o->drivers;
	c->duration_s = 20 + (int)((h >> 20) % 400);
	c->reason = NULL;
	if (now_us - c->created_us < 15 * 60 * US_PER_S) {
		c->status = "in_progress";
		c->has_conv = (h >> 40) % 3 != 0;
	} else if ((h >> 32) % 100 < 12) {
		c->status = "failed";
		c->reason = reasons[(h >> 44) % 10];
		c->has_conv = strcmp(c->reason, "no_answer") != 0 && strcmp(c->reason, "busy") != 0;
	} else {
		c->status = "completed";
		c->has_conv = 1;
	}
}

int console_bench_load(struct db *db, const struct console_bench_load *o)
{
	PGconn *conn = db_conn(db);
	struct copybuf b = {.cap = 1 << 20, .conn = conn};
	int64_t now_us = (int64_t)time(NULL) * US_PER_S;
	char line[1024], c_at[96], s_at[96], e_at[96], d_at[96], dial_at[96];
	int rc = -1;

	b.buf = malloc(b.cap);
	if (b.buf == NULL || conn == NULL)
		goto out;
	if (copy_begin(conn,
	               "COPY calls (call_sid, conversation_id, driver_id, trip_id, status, "
	               "failure_reason, call_start_time, call_end_time, created_at, "
	               "updated_at, dial_attempted_at, dial_attempts, dialled_at) FROM STDIN") != 0)
		goto out;
	for (long n = 0; n < o->calls; n++) {
		struct bench_call c;
		char conv[40] = "\\N", end[96] = "\\N", dialled[96] = "\\N";

		bench_call(o, now_us, n, &c);
		ts(c.created_us, c_at, sizeof c_at);
		ts(c.created_us + 100000, dial_at, sizeof dial_at);
		ts(c.created_us + 2 * US_PER_S, s_at, sizeof s_at);
		if (c.has_conv) {
			snprintf(conv, sizeof conv, "conv_%ld", n);
			/* the dial answers in 0.4-3 s */
			ts(c.created_us + 400000 + (int64_t)(mix((uint64_t)n) % 2600000), d_at,
			   sizeof d_at);
			snprintf(dialled, sizeof dialled, "%s", d_at);
		}
		if (strcmp(c.status, "in_progress") != 0) {
			ts(c.created_us + 2 * US_PER_S + (int64_t)c.duration_s * US_PER_S, e_at,
			   sizeof e_at);
			snprintf(end, sizeof end, "%s", e_at);
		}
		snprintf(line, sizeof line,
		         "EL_%" PRIu64 "_%ld\t%s\t%" PRIu64
		         "\tTRIP-%ld\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t1\t%s\n",
		         c.driver, n, conv, c.driver, n, c.status, c.reason ? c.reason : "\\N",
		         s_at, end, c_at, c_at, dial_at, dialled);
		cb_add(&b, line);
	}
	if (copy_end(&b) != 0)
		goto out;
	if (o->lines > 0) {
		if (copy_begin(conn, "COPY call_transcriptions (conversation_id, speaker, message, "
		                     "sequence_number, created_at, event_id) FROM STDIN") != 0)
			goto out;
		for (long n = 0; n < o->calls; n++) {
			struct bench_call c;

			bench_call(o, now_us, n, &c);
			if (!c.has_conv)
				continue;
			for (int k = 1; k <= o->lines; k++) {
				ts(c.created_us + (2 + 3 * k) * US_PER_S, c_at, sizeof c_at);
				snprintf(
				    line, sizeof line,
				    "conv_%ld\t%s\tline %d of the conversation about trip %ld, "
				    "pickup confirmed\t%d\t%s\tev_%ld_%d\n",
				    n, k % 2 ? "agent" : "user", k, n, k, c_at, n, k);
				cb_add(&b, line);
			}
		}
		if (copy_end(&b) != 0)
			goto out;
	}
	rc = 0;
out:
	free(b.buf);
	return rc;
}
