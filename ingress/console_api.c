/* console_api: GET /calls, /stats/drivers and /stats/overview on the admin address: parameters
 * checked on the connection's thread (400 naming the parameter), the query and the JSON on a
 * calls_read worker (store_console.c). */
#include "admin_int.h"
#include "calls_read.h"
#include "console_params.h"
#include "log.h"
#include "store_console.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- query arguments ---- */

static enum MHD_Result console_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
	struct console_args *a = cls;

	(void)kind;
	if (a->n >= CONSOLE_ARGS_MAX) {
		a->too_many = true;
		return MHD_NO;
	}
	a->name[a->n] = key;
	a->value[a->n] = value;
	a->n++;
	return MHD_YES;
}

static void console_args_get(struct MHD_Connection *conn, struct console_args *a)
{
	memset(a, 0, sizeof *a);
	(void)MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, console_collect, a);
}

static enum MHD_Result console_bad(struct MHD_Connection *conn, const struct console_err *err)
{
	return admin_reply_error(conn, MHD_HTTP_BAD_REQUEST, err->msg, err->field);
}

typedef int console_parse_fn(const struct console_args *args, int64_t now_us, void *req,
                             struct console_err *err);

/* Every read API's front: the query string parsed into a request of req_size bytes (400 naming
 * the parameter when it is bad), then fn run on a read worker with it (freed after). */
static enum MHD_Result console_serve(struct admin *a, struct MHD_Connection *conn, size_t req_size,
                                     console_parse_fn *parse, calls_read_fn *fn)
{
	void *r = malloc(req_size);
	struct console_args args;
	struct console_err err;

	if (r == NULL)
		return MHD_NO;
	console_args_get(conn, &args);
	if (parse(&args, time_now_ms() * 1000, r, &err) != 0) {
		free(r);
		return console_bad(conn, &err);
	}
	return admin_run_read(a, conn, fn, r, free, NULL);
}

static json_t *console_time_or_null(const char *t)
{
	return t != NULL && t[0] != '\0' ? json_string(t) : json_null();
}

/* ---- GET /calls ---- */

struct console_list {
	json_t *calls;
	int64_t last_at_us, last_id;
	bool oom;
};

static int console_list_row(void *opaque, const struct store_console_call *c)
{
	struct console_list *l = opaque;
	json_t *item = calls_read_call_json(&c->call);

	if (item == NULL ||
	    json_object_set_new(item, "line_count", json_integer((json_int_t)c->line_count)) ||
	    json_object_set_new(item, "last_line_at", console_time_or_null(c->last_line_at)) ||
	    json_array_append_new(l->calls, item)) {
		l->oom = true;
		return -1;
	}
	if (console_time_parse(c->created_at_exact, &l->last_at_us) != 0)
		l->last_at_us = 0;
	l->last_id = c->call.id;
	return 0;
}

static unsigned console_calls_fn(struct db *db, void *arg, json_t **out, char *errstr,
                                 size_t errstr_size)
{
	const struct console_calls_req *r = arg;
	struct store_console_filter f = {
	    .status = r->status,
	    .driver_id = r->driver_id,
	    .trip_id = r->trip_id,
	    .since = r->since,
	    .until = r->until,
	    .has_cursor = r->has_cursor,
	    .cursor_at = r->cursor_at,
	    .cursor_id = r->cursor_id,
	    .limit = r->limit,
	};
	struct console_list l = {.calls = json_array()};
	char cursor[CONSOLE_CURSOR_LEN];

	if (l.calls == NULL)
		goto oom;
	if (store_console_calls(db, &f, console_list_row, &l) != 0) {
		json_decref(l.calls);
		if (l.oom)
			goto oom;
		snprintf(errstr, errstr_size, "database unavailable");
		return 503;
	}
	/* a full page may have more after it; a short one is the end */
	if (json_array_size(l.calls) == (size_t)r->limit && l.last_at_us > 0)
		console_cursor_encode(l.last_at_us, l.last_id, cursor);
	else
		cursor[0] = '\0';
	*out =
	    json_pack("{s:o, s:o}", "calls", l.calls, "next_cursor", console_time_or_null(cursor));
	return *out != NULL ? 200 : 503;
oom:
	snprintf(errstr, errstr_size, "out of memory");
	return 503;
}

static int console_calls_parse(const struct console_args *args, int64_t now_us, void *r,
                               struct console_err *err)
{
	(void)now_us;
	return console_parse_calls(args, r, err);
}

enum MHD_Result admin_calls_list(struct admin *a, struct MHD_Connection *conn, const char *url,
                                 const char *rest)
{
	(void)url;
	(void)rest;
	return console_serve(a, conn, sizeof(struct console_calls_req), console_calls_parse,
	                     console_calls_fn);
}

/* ---- GET /stats/drivers ---- */

static int console_driver_row(void *opaque, const struct store_console_driver *d)
{
	json_t *list = opaque;
	json_t *reasons = json_loads(d->failure_reasons, 0, NULL);
	json_t *item = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:s, s:o}", "driver_id", d->driver_id, "calls",
	    (json_int_t)d->calls, "completed", (json_int_t)d->completed, "failed",
	    (json_int_t)d->failed, "in_progress", (json_int_t)d->in_progress, "success_rate",
	    d->has_success_rate ? json_real(d->success_rate) : json_null(), "median_duration_s",
	    d->has_median ? json_real(d->median_duration_s) : json_null(), "last_call_at",
	    d->last_call_at, "failure_reasons", reasons != NULL ? reasons : json_object());

	return item != NULL && json_array_append_new(list, item) == 0 ? 0 : -1;
}

static unsigned console_drivers_fn(struct db *db, void *arg, json_t **out, char *errstr,
                                   size_t errstr_size)
{
	const struct console_drivers_req *r = arg;
	struct store_console_drivers_q q = {
	    .since = r->w.since,
	    .until = r->w.until,
	    .sort = (enum store_console_sort)r->sort,
	    .ascending = r->ascending,
	    .limit = r->limit,
	    .driver_id = r->driver_id,
	};
	json_t *list = json_array();
	char since[STORE_CONSOLE_TS_LEN], until[STORE_CONSOLE_TS_LEN];
	int64_t total = 0;
	int rc;

	_Static_assert(STORE_CONSOLE_TS_LEN >= CONSOLE_TIME_LEN, "time buffers");
	if (list == NULL)
		goto fail;
	/* the rolling window from 010's rollup (since/until: the window it holds), else exact */
	if (r->rolling)
		rc = store_console_drivers_rolling(db, &q, console_driver_row, list, &total, since,
		                                   until);
	else
		rc = store_console_drivers(db, &q, console_driver_row, list, &total);
	if (rc != 0)
		goto fail;
	if (!r->rolling) {
		console_time_format_ms(r->w.since_us, since);
		console_time_format_ms(r->w.until_us, until);
	}
	*out = json_pack("{s:s, s:s, s:s, s:o, s:I}", "source", r->rolling ? "rollup" : "exact",
	                 "since", since, "until", until, "drivers", list, "total_drivers",
	                 (json_int_t)total);
	return *out != NULL ? 200 : 503;
fail:
	json_decref(list);
	snprintf(errstr, errstr_size, "database unavailable");
	return 503;
}

static int console_drivers_parse(const struct console_args *args, int64_t now_us, void *r,
                                 struct console_err *err)
{
	return console_parse_drivers(args, now_us, r, err);
}

enum MHD_Result admin_stats_drivers(struct admin *a, struct MHD_Connection *conn, const char *url,
                                    const char *rest)
{
	(void)url;
	(void)rest;
	return console_serve(a, conn, sizeof(struct console_drivers_req), console_drivers_parse,
	                     console_drivers_fn);
}

/* ---- GET /stats/overview ---- */

static int console_bucket_row(void *opaque, const struct store_console_bucket *b)
{
	json_t *buckets = json_object_get(opaque, "buckets");
	json_t *item = json_pack("{s:s, s:I, s:I, s:I}", "start", b->start, "in_progress",
	                         (json_int_t)b->in_progress, "completed", (json_int_t)b->completed,
	                         "failed", (json_int_t)b->failed);

	return item != NULL && json_array_append_new(buckets, item) == 0 ? 0 : -1;
}

static int console_reason_row(void *opaque, const struct store_console_reason *r)
{
	json_t *reasons = json_object_get(opaque, "failure_reasons");
	json_t *item = json_pack("{s:s, s:I}", "reason", r->reason, "count", (json_int_t)r->count);

	return item != NULL && json_array_append_new(reasons, item) == 0 ? 0 : -1;
}

static unsigned console_overview_fn(struct db *db, void *arg, json_t **out, char *errstr,
                                    size_t errstr_size)
{
	const struct console_overview_req *r = arg;
	struct store_console_latency lat;
	char since[CONSOLE_TIME_LEN], until[CONSOLE_TIME_LEN];
	json_t *body, *latency;

	console_time_format_ms(r->w.since_us, since);
	console_time_format_ms(r->w.until_us, until);
	body = json_pack("{s:s, s:s, s:s, s:[], s:[]}", "since", since, "until", until, "bucket",
	                 r->bucket, "buckets", "failure_reasons");
	if (body == NULL ||
	    store_console_overview(db, r->w.since, r->w.until, r->bucket, console_bucket_row,
	                           console_reason_row, body, &lat) != 0) {
		json_decref(body);
		snprintf(errstr, errstr_size, "database unavailable");
		return 503;
	}
	latency = lat.count > 0
	              ? json_pack("{s:I, s:f, s:f, s:f}", "count", (json_int_t)lat.count, "p50",
	                          lat.p50, "p90", lat.p90, "p99", lat.p99)
	              : json_pack("{s:i, s:n, s:n, s:n}", "count", 0, "p50", "p90", "p99");
	if (latency == NULL || json_object_set_new(body, "dial_latency_ms", latency) != 0) {
		json_decref(body);
		snprintf(errstr, errstr_size, "out of memory");
		return 503;
	}
	*out = body;
	return 200;
}

static int console_overview_parse(const struct console_args *args, int64_t now_us, void *r,
                                  struct console_err *err)
{
	return console_parse_overview(args, now_us, r, err);
}

enum MHD_Result admin_stats_overview(struct admin *a, struct MHD_Connection *conn, const char *url,
                                     const char *rest)
{
	(void)url;
	(void)rest;
	return console_serve(a, conn, sizeof(struct console_overview_req), console_overview_parse,
	                     console_overview_fn);
}
