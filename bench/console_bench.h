/* console_bench: the halves of bench/console's helper (console_load.c: the data;
 * console_helper.c: the measurements; console_naive.c: the plans and naive forms). */
#ifndef CALLPIPE_BENCH_CONSOLE_BENCH_H
#define CALLPIPE_BENCH_CONSOLE_BENCH_H

#include <stdbool.h>
#include <stddef.h>

struct console_args;
struct db;

struct console_bench_load {
	long calls;
	long drivers;
	int lines; /* per call with a conversation */
	int days;  /* the calls span the last days */
};

/* COPYs the calls and their lines into db's schema. 0 or -1 (printed). */
int console_bench_load(struct db *db, const struct console_bench_load *o);

/* The workers' writes per call (console_writes.c), the fastest of rounds passes each: us[0] with
 * 008's indexes and 010's triggers, us[1] without the triggers, us[2] without either. 0 or -1. */
int console_bench_writes(struct db *db, long calls, int rounds, double us[3]);

/* ---- the measuring side (console_helper.c, console_naive.c) ---- */

enum kind { K_CALLS, K_DRIVERS, K_OVERVIEW };

/* since/until appended at each request, from the clock: the page's rolling window (30 days to
 * now: the rollup answers), or 30 days ending 2 minutes ago (not the rolling one: exact). */
enum { W_NONE, W_PAGE, W_EXACT };

struct scenario {
	enum kind kind;
	char name[96];
	char query[600]; /* path and query string */
	long naive_offset;
	bool goal; /* p99 < 100 ms over HTTP required: /calls, and /stats/drivers from the rollup */
	int window; /* /stats/drivers: W_* since/until written at each request */
	double http_p50, http_p99, direct_p50, direct_p99, naive_p50;
	long rows;
};

/* s's query with its window's since/until appended when it has one, into out. */
void console_bench_query(const struct scenario *s, char *out, size_t size);
/* Splits a query string in place into a (pointers into qs). */
void console_bench_split(char *qs, struct console_args *a);
/* Runs s once through store_console as the ingress would; -1 on a failure. *rows: what came back.
 */
int console_bench_direct(struct db *db, const struct scenario *s, long *rows);
double console_bench_now_ms(void);
/* The p-quantile of v[0..n) (sorts v). */
double console_bench_pct(double *v, int n, double p);
/* Runs q; 0 or -1 (printed). */
int console_bench_sql(struct db *db, const char *q);
/* Drops migration 008's indexes (inside a transaction the caller rolls back). */
extern const char console_bench_drop_008[];
/* One value of a one-row query ("" when NULL), into out. 0 or -1 (printed). */
int console_bench_value(struct db *db, const char *q, char *out, size_t size);
/* What an advance of 010's rolling window pays `minutes` after the previous one, in a
 * transaction rolled back (console_writes.c): *ms, and *gone calls left the window. 0 or -1. */
int console_bench_advance_cost(struct db *db, int minutes, double *ms, long *gone);
/* One EXPLAIN ANALYZE of every scenario, printed (console_naive.c). 0 or -1. */
int console_bench_explain(struct db *db, struct scenario *v, int n);
/* The naive form of every scenario, iters times each, into naive_p50 (console_naive.c). */
int console_bench_naive(struct db *db, struct scenario *v, int n, int iters);

#endif
