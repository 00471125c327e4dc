/* console_helper: bench/console's measuring half.
 *
 *   console-bench-helper load CALLS DRIVERS LINES DAYS
 *       COPYs the data set (console_load.c), then VACUUM ANALYZE
 *   console-bench-helper measure ADMIN_URL ITERATIONS STATS_ITERATIONS NAIVE_ITERATIONS
 *       for every scenario: p50/p99 through the ingress's admin address (HTTP, keep-alive, the
 *       token from INGRESS_API_TOKEN) and directly (the store_console code the workers run, on
 *       one connection); one EXPLAIN ANALYZE of each (auto_explain); the naive form of each
 *       (OFFSET pages, a count(*) per row, one GROUP BY computing everything for every driver,
 *       and none of migration 008's indexes: dropped in a transaction rolled back afterwards);
 *       the cost of 008's indexes and 010's triggers to the workers' writes. Exit 1 when a goal is
 * missed: p99 < 100 ms over HTTP for every /calls and /stats/drivers scenario.
 *
 * DATABASE_URL and DB_SCHEMA come from the environment. */
#include "console_bench.h"
#include "console_params.h"
#include "db.h"
#include "store_calls.h"
#include "store_console.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GOAL_MS 100.0

/* s's query, with its window's since/until appended when it has one. */
void console_bench_query(const struct scenario *s, char *out, size_t size)
{
	char since[CONSOLE_TIME_LEN], until[CONSOLE_TIME_LEN];
	int64_t now = time_now_ms() * 1000, end = now - (s->window == W_EXACT ? 120000000 : 0);

	if (s->window == W_NONE) {
		snprintf(out, size, "%s", s->query);
		return;
	}
	console_time_format_ms(end - INT64_C(30) * 86400000000, since);
	console_time_format_ms(end, until);
	snprintf(out, size, "%s%csince=%s&until=%s", s->query, strchr(s->query, '?') ? '&' : '?',
	         since, until);
}

double console_bench_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double console_bench_pct(double *v, int n, double p)
{
	int i;

	qsort(v, (size_t)n, sizeof *v, cmp_double);
	i = (int)ceil(p * n) - 1;
	return v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

static struct db *connect_db(void)
{
	const char *url = getenv("DATABASE_URL"), *schema = getenv("DB_SCHEMA");
	char errstr[256];
	struct db *db = db_open(url ? url : "", schema ? schema : "dev", errstr, sizeof errstr);

	if (!db || !db_ok(db)) {
		fprintf(stderr, "console-bench: %s\n", db ? db_errmsg(db) : errstr);
		db_close(db);
		return NULL;
	}
	return db;
}

int console_bench_sql(struct db *db, const char *q)
{
	if (db_cmd(db, q, 0, NULL) != 0) {
		fprintf(stderr, "console-bench: %s: %s\n", q, db_errmsg(db));
		return -1;
	}
	return 0;
}

/* One value of a one-row query ("" when NULL), into out. */
int console_bench_value(struct db *db, const char *q, char *out, size_t size)
{
	PGresult *res = db_exec(db, q, 0, NULL);

	if (res == NULL || PQntuples(res) == 0) {
		fprintf(stderr, "console-bench: %s: %s\n", q, db_errmsg(db));
		PQclear(res);
		return -1;
	}
	snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* ---- the direct path: the query string parsed as the ingress does, then store_console ---- */

static int count_call(void *opaque, const struct store_console_call *c)
{
	(void)c;
	(*(long *)opaque)++;
	return 0;
}
static int count_driver(void *opaque, const struct store_console_driver *d)
{
	(void)d;
	(*(long *)opaque)++;
	return 0;
}
static int count_bucket(void *opaque, const struct store_console_bucket *b)
{
	(void)b;
	(*(long *)opaque)++;
	return 0;
}
static int count_reason(void *opaque, const struct store_console_reason *r)
{
	(void)r;
	return opaque == NULL;
}

void console_bench_split(char *qs, struct console_args *a)
{
	memset(a, 0, sizeof *a);
	for (char *tok = strtok(qs, "&"); tok != NULL && a->n < CONSOLE_ARGS_MAX;
	     tok = strtok(NULL, "&")) {
		char *eq = strchr(tok, '=');

		if (eq != NULL)
			*eq = '\0';
		a->name[a->n] = tok;
		a->value[a->n] = eq != NULL ? eq + 1 : "";
		a->n++;
	}
}

/* Runs s once directly; -1 on a failure. *rows: what came back. */
int console_bench_direct(struct db *db, const struct scenario *s, long *rows)
{
	char qs[700], full[700];
	const char *q;
	struct console_args a;
	struct console_err err;
	int64_t now = time_now_ms() * 1000, total;
	struct store_console_latency lat;

	console_bench_query(s, full, sizeof full);
	q = strchr(full, '?');
	snprintf(qs, sizeof qs, "%s", q != NULL ? q + 1 : "");
	console_bench_split(qs, &a);
	*rows = 0;
	if (s->kind == K_CALLS) {
		struct console_calls_req r;
		struct store_console_filter f;

		if (console_parse_calls(&a, &r, &err) != 0)
			goto bad;
		f = (struct store_console_filter){r.status,    r.driver_id, r.trip_id,
		                                  r.since,     r.until,     r.has_cursor,
		                                  r.cursor_at, r.cursor_id, r.limit};
		return store_console_calls(db, &f, count_call, rows);
	}
	if (s->kind == K_DRIVERS) {
		struct console_drivers_req r;
		struct store_console_drivers_q dq;
		char since[STORE_CONSOLE_TS_LEN], until[STORE_CONSOLE_TS_LEN];

		if (console_parse_drivers(&a, now, &r, &err) != 0)
			goto bad;
		dq = (struct store_console_drivers_q){r.w.since,   r.w.until, r.sort,
		                                      r.ascending, r.limit,   r.driver_id};
		if (r.rolling)
			return store_console_drivers_rolling(db, &dq, count_driver, rows, &total,
			                                     since, until);
		return store_console_drivers(db, &dq, count_driver, rows, &total);
	}
	{
		struct console_overview_req r;

		if (console_parse_overview(&a, now, &r, &err) != 0)
			goto bad;
		return store_console_overview(db, r.w.since, r.w.until, r.bucket, count_bucket,
		                              count_reason, rows, &lat);
	}
bad:
	fprintf(stderr, "console-bench: %s: %s\n", s->query, err.msg);
	return -1;
}

/* ---- HTTP ---- */

static size_t sink(char *p, size_t size, size_t n, void *opaque)
{
	(void)p;
	*(size_t *)opaque += size * n;
	return size * n;
}

static int run_http(CURL *curl, const char *base, const struct scenario *s)
{
	char url[800], q[700];
	size_t got = 0;
	long status = 0;

	console_bench_query(s, q, sizeof q);
	snprintf(url, sizeof url, "%s%s", base, q);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &got);
	if (curl_easy_perform(curl) != CURLE_OK)
		return -1;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		fprintf(stderr, "console-bench: GET %s: %ld\n", s->query, status);
		return -1;
	}
	return 0;
}

/* ---- scenarios ---- */

static struct scenario *add(struct scenario *v, int *n, enum kind k, const char *name,
                            const char *query, long naive_offset)
{
	struct scenario *s = &v[(*n)++];

	memset(s, 0, sizeof *s);
	s->kind = k;
	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->query, sizeof s->query, "%s", query);
	s->naive_offset = naive_offset;
	s->goal = k == K_CALLS;
	return s;
}

/* The cursor of the row depth rows into the list that where selects (newest first). */
static int cursor_at(struct db *db, const char *where, long depth, char out[CONSOLE_CURSOR_LEN])
{
	char q[600], v[80];
	long long at, id;

	snprintf(q, sizeof q,
	         "SELECT ((extract(epoch FROM created_at) * 1000000)::bigint)::text || ' ' || id "
	         "FROM calls WHERE %s ORDER BY created_at DESC, id DESC OFFSET %ld LIMIT 1",
	         where, depth);
	if (console_bench_value(db, q, v, sizeof v) != 0 || sscanf(v, "%lld %lld", &at, &id) != 2)
		return -1;
	console_cursor_encode((int64_t)at, (int64_t)id, out);
	return 0;
}

static int scenarios(struct db *db, struct scenario *v, int *n)
{
	char q[600], c[CONSOLE_CURSOR_LEN], drv[64], trip[64], since[CONSOLE_TIME_LEN],
	    until[CONSOLE_TIME_LEN], d30[CONSOLE_TIME_LEN];
	long total, failed, deep, deep_failed, in_window;
	int64_t now = time_now_ms() * 1000, day = INT64_C(86400000000);

	if (console_bench_value(db, "SELECT count(*) FROM calls", q, sizeof q) != 0)
		return -1;
	total = atol(q);
	if (console_bench_value(db, "SELECT count(*) FROM calls WHERE status = 'failed'", q,
	                        sizeof q) != 0 ||
	    console_bench_value(db,
	                        "SELECT driver_id FROM calls ORDER BY id DESC LIMIT 1 OFFSET 1000",
	                        drv, sizeof drv) != 0 ||
	    console_bench_value(db, "SELECT trip_id FROM calls ORDER BY id LIMIT 1 OFFSET 1000",
	                        trip, sizeof trip) != 0)
		return -1;
	failed = atol(q);
	deep = total / 2;
	deep_failed = failed / 2;
	console_time_format_ms(now - 8 * day, since);
	console_time_format_ms(now - 1 * day, until);
	console_time_format_ms(now - 30 * day, d30);
	add(v, n, K_CALLS, "calls: first page", "/calls", 0);
	if (cursor_at(db, "true", deep, c) != 0)
		return -1;
	snprintf(q, sizeof q, "/calls?cursor=%s", c);
	add(v, n, K_CALLS, "calls: deep page (half-way)", q, deep + 1);
	add(v, n, K_CALLS, "calls: status=failed", "/calls?status=failed", 0);
	if (cursor_at(db, "status = 'failed'", deep_failed, c) != 0)
		return -1;
	snprintf(q, sizeof q, "/calls?status=failed&cursor=%s", c);
	add(v, n, K_CALLS, "calls: status=failed, deep page", q, deep_failed + 1);
	add(v, n, K_CALLS, "calls: status=in_progress", "/calls?status=in_progress", 0);
	snprintf(q, sizeof q, "/calls?driver_id=%s", drv);
	add(v, n, K_CALLS, "calls: driver_id", q, 0);
	snprintf(q, sizeof q, "/calls?driver_id=%s&status=completed", drv);
	add(v, n, K_CALLS, "calls: driver_id + status", q, 0);
	snprintf(q, sizeof q, "/calls?trip_id=%s", trip);
	add(v, n, K_CALLS, "calls: trip_id", q, 0);
	snprintf(q, sizeof q, "/calls?since=%s&until=%s", since, until);
	add(v, n, K_CALLS, "calls: 7-day window", q, 0);
	snprintf(q, sizeof q,
	         "SELECT count(*) FROM calls WHERE created_at >= '%s' AND created_at < '%s'", since,
	         until);
	if (console_bench_value(db, q, q, sizeof q) != 0)
		return -1;
	in_window = atol(q) / 2;
	snprintf(q, sizeof q, "created_at >= '%s' AND created_at < '%s'", since, until);
	if (cursor_at(db, q, in_window, c) != 0)
		return -1;
	snprintf(q, sizeof q, "/calls?since=%s&until=%s&status=completed&cursor=%s", since, until,
	         c);
	add(v, n, K_CALLS, "calls: 7-day window + status, deep page", q, in_window + 1);
	add(v, n, K_CALLS, "calls: limit=200", "/calls?limit=200", 0);
	/* the rolling window, from 010's rollup (the goal applies) */
	add(v, n, K_DRIVERS, "drivers rollup: 30 days, sort=calls (default)", "/stats/drivers", 0);
	add(v, n, K_DRIVERS, "drivers rollup: page's since/until", "/stats/drivers", 0)->window =
	    W_PAGE;
	add(v, n, K_DRIVERS, "drivers rollup: sort=success_rate asc",
	    "/stats/drivers?sort=success_rate&order=asc", 0);
	add(v, n, K_DRIVERS, "drivers rollup: sort=failed", "/stats/drivers?sort=failed", 0);
	add(v, n, K_DRIVERS, "drivers rollup: sort=in_progress asc",
	    "/stats/drivers?sort=in_progress&order=asc", 0);
	add(v, n, K_DRIVERS, "drivers rollup: sort=driver_id",
	    "/stats/drivers?sort=driver_id&order=asc", 0);
	add(v, n, K_DRIVERS, "drivers rollup: sort=last_call_at",
	    "/stats/drivers?sort=last_call_at", 0);
	add(v, n, K_DRIVERS, "drivers rollup: limit=200", "/stats/drivers?limit=200", 0);
	snprintf(q, sizeof q, "/stats/drivers?driver_id=%s", drv);
	add(v, n, K_DRIVERS, "drivers rollup: one driver", q, 0);
	for (int i = *n - 9; i < *n; i++)
		v[i].goal = true;
	/* any other window, and the median sort: the exact aggregation (reported, no goal) */
	add(v, n, K_DRIVERS, "drivers exact: 30 d to 2 min ago, sort=calls", "/stats/drivers", 0)
	    ->window = W_EXACT;
	add(v, n, K_DRIVERS, "drivers exact: 30 d to 2 min ago, success asc",
	    "/stats/drivers?sort=success_rate&order=asc", 0)
	    ->window = W_EXACT;
	add(v, n, K_DRIVERS, "drivers exact: sort=median_duration_s",
	    "/stats/drivers?sort=median_duration_s", 0);
	snprintf(q, sizeof q, "/stats/drivers?driver_id=%s", drv);
	add(v, n, K_DRIVERS, "drivers exact: one driver, 2 min ago", q, 0)->window = W_EXACT;
	add(v, n, K_OVERVIEW, "overview: 24 h by hour", "/stats/overview", 0);
	snprintf(q, sizeof q, "/stats/overview?bucket=day&since=%s", d30);
	add(v, n, K_OVERVIEW, "overview: 30 days by day", q, 0);
	return 0;
}

/* ---- the measurements ---- */

static int measure_one(struct db *db, CURL *curl, const char *base, struct scenario *s, int iters)
{
	double *h = calloc((size_t)iters, sizeof *h), *d = calloc((size_t)iters, sizeof *d);
	int rc = -1;

	if (h == NULL || d == NULL)
		goto out;
	/* warm both paths once (caches, the workers' connections) */
	if (run_http(curl, base, s) != 0 || console_bench_direct(db, s, &s->rows) != 0)
		goto out;
	for (int i = 0; i < iters; i++) {
		double t0 = console_bench_now_ms();

		if (run_http(curl, base, s) != 0)
			goto out;
		h[i] = console_bench_now_ms() - t0;
		t0 = console_bench_now_ms();
		if (console_bench_direct(db, s, &s->rows) != 0)
			goto out;
		d[i] = console_bench_now_ms() - t0;
	}
	s->http_p50 = console_bench_pct(h, iters, 0.5);
	s->http_p99 = console_bench_pct(h, iters, 0.99);
	s->direct_p50 = console_bench_pct(d, iters, 0.5);
	s->direct_p99 = console_bench_pct(d, iters, 0.99);
	rc = 0;
out:
	free(h);
	free(d);
	return rc;
}

static int measure(const char *base, int iters, int stats_iters, int naive_iters)
{
	struct scenario v[32];
	struct db *db = connect_db();
	CURL *curl = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char auth[300];
	double w[3], adv_ms[3];
	long adv_gone[3];
	int n = 0, missed = 0;

	if (db == NULL || curl == NULL)
		return 2;
	snprintf(auth, sizeof auth, "Authorization: Bearer %s",
	         getenv("INGRESS_API_TOKEN") ? getenv("INGRESS_API_TOKEN") : "");
	hdr = curl_slist_append(hdr, auth);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
	if (scenarios(db, v, &n) != 0)
		return 2;
	printf("%-44s %8s %8s %8s %8s %6s\n", "scenario", "http p50", "http p99", "sql p50",
	       "sql p99", "rows");
	for (int i = 0; i < n; i++) {
		if (measure_one(db, curl, base, &v[i],
		                v[i].kind == K_CALLS ? iters : stats_iters) != 0)
			return 2;
		printf("%-44s %8.2f %8.2f %8.2f %8.2f %6ld\n", v[i].name, v[i].http_p50,
		       v[i].http_p99, v[i].direct_p50, v[i].direct_p99, v[i].rows);
		fflush(stdout);
	}
	if (console_bench_explain(db, v, n) != 0)
		return 2;
	printf("\n");
	if (naive_iters > 0 && console_bench_naive(db, v, n, naive_iters) != 0)
		return 2;
	if (console_bench_writes(db, 1000, 3, w) != 0 ||
	    console_bench_advance_cost(db, 1, &adv_ms[0], &adv_gone[0]) != 0 ||
	    console_bench_advance_cost(db, 60, &adv_ms[1], &adv_gone[1]) != 0 ||
	    console_bench_advance_cost(db, 24 * 60, &adv_ms[2], &adv_gone[2]) != 0)
		return 2;
	printf("\n%-44s %8s %8s %8s %9s %7s\n", "summary (ms)", "http p50", "http p99", "sql p50",
	       "naive p50", "ratio");
	for (int i = 0; i < n; i++) {
		bool miss = v[i].goal && v[i].http_p99 >= GOAL_MS;

		missed += miss;
		printf("%-44s %8.2f %8.2f %8.2f %9.1f %6.0fx%s\n", v[i].name, v[i].http_p50,
		       v[i].http_p99, v[i].direct_p50, v[i].naive_p50,
		       v[i].direct_p50 > 0 ? v[i].naive_p50 / v[i].direct_p50 : 0,
		       miss ? "  GOAL MISSED (p99 >= 100 ms)" : (v[i].goal ? "" : "  (no goal)"));
	}
	printf(
	    "\nworkers' writes per call (insert, claim, conversation, completion; fastest of 3 x "
	    "1000 calls):\n  %.1f us with 008's indexes and 010's triggers, %.1f us without the "
	    "triggers (x%.2f), %.1f us without either (008's indexes: x%.2f)\n",
	    w[0], w[1], w[1] > 0 ? w[0] / w[1] : 0, w[2], w[2] > 0 ? w[1] / w[2] : 0);
	printf("the rolling window's advance 1 minute after the previous one (the ingress's "
	       "period): %.2f ms (%ld calls left the window); after 1 hour: %.1f ms (%ld calls); "
	       "after 24 hours: %.1f ms (%ld calls)\n",
	       adv_ms[0], adv_gone[0], adv_ms[1], adv_gone[1], adv_ms[2], adv_gone[2]);
	printf("%s\n", missed ? "RESULT: goal missed" : "RESULT: every goal met");
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	db_close(db);
	return missed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "load") == 0) {
		struct console_bench_load o = {atol(argv[2]), atol(argv[3]), atoi(argv[4]),
		                               atoi(argv[5])};
		struct db *db = connect_db();
		double t0 = console_bench_now_ms();
		int rc;

		if (db == NULL || o.calls <= 0 || o.drivers <= 0 || o.days <= 0)
			return 2;
		rc = console_bench_sql(db, "SET statement_timeout = 0");
		if (rc == 0)
			rc = console_bench_load(db, &o);
		if (rc == 0)
			rc = console_bench_sql(db, "VACUUM ANALYZE calls") ||
			     console_bench_sql(db, "VACUUM ANALYZE console_driver_window") ||
			     console_bench_sql(db, "VACUUM ANALYZE call_transcriptions");
		if (rc == 0)
			printf(
			    "loaded %ld calls, %ld drivers, %d lines a call over %d days in %.1f "
			    "s\n",
			    o.calls, o.drivers, o.lines, o.days,
			    (console_bench_now_ms() - t0) / 1000.0);
		db_close(db);
		return rc == 0 ? 0 : 1;
	}
	if (argc == 6 && strcmp(argv[1], "measure") == 0)
		return measure(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: console-bench-helper load CALLS DRIVERS LINES DAYS\n"
	                "       console-bench-helper measure ADMIN_URL ITERATIONS STATS_ITERATIONS "
	                "NAIVE_ITERATIONS\n");
	return 2;
}
