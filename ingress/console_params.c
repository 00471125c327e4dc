/* console_params: parsing and checking the console APIs' query parameters. */
#include "console_params.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_S                  INT64_C(1000000)
#define US_PER_DAY                (INT64_C(86400) * US_PER_S)
#define CONSOLE_ROLLING_SLACK_US  (INT64_C(60) * US_PER_S)

#define CONSOLE_LIST_LIMIT_MAX    200
#define CONSOLE_DRIVERS_LIMIT_MAX 200
#define CONSOLE_BUCKETS_MAX       1000
#define CONSOLE_US_MAX            (INT64_C(253402300800) * US_PER_S) /* year 10000 */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm). */
static int64_t console_days(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void console_civil(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* n decimal digits at *p into *v; advances *p. */
static bool console_digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		*v = *v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return true;
}

static bool console_expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

int console_time_parse(const char *s, int64_t *us)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *p = s;
	int y, mo, d, h, mi, sec, frac = 0, digits = 0, oh = 0, om = 0, sign = 0;
	bool leap;

	if (s == NULL || !console_digits(&p, 4, &y) || !console_expect(&p, '-') ||
	    !console_digits(&p, 2, &mo) || !console_expect(&p, '-') || !console_digits(&p, 2, &d) ||
	    !console_expect(&p, 'T') || !console_digits(&p, 2, &h) || !console_expect(&p, ':') ||
	    !console_digits(&p, 2, &mi) || !console_expect(&p, ':') || !console_digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (++digits > 9)
				return -1;
			if (digits <= 6)
				frac = frac * 10 + (*p - '0');
			p++;
		}
		if (digits == 0)
			return -1;
		for (int i = digits; i < 6; i++)
			frac *= 10;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (!console_digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (!console_digits(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
	} else {
		return -1; /* a time without its offset is ambiguous */
	}
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
		return -1;
	*us = ((console_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
	       sign * (oh * 3600 + om * 60)) *
	          US_PER_S +
	      frac;
	return 0;
}

static void console_time_format(int64_t us, int fdigits, char out[CONSOLE_TIME_LEN])
{
	int64_t s = us >= 0 ? us / US_PER_S : (us - US_PER_S + 1) / US_PER_S;
	int64_t frac = us - s * US_PER_S, day = s >= 0 ? s / 86400 : (s - 86399) / 86400;
	int64_t sod = s - day * 86400;
	char buf[96];
	size_t n;
	int y, m, d;

	console_civil(day, &y, &m, &d);
	if (fdigits == 3)
		snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
		         (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
		         (int)(frac / 1000));
	else
		snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, m, d,
		         (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)frac);
	n = strlen(buf) < CONSOLE_TIME_LEN ? strlen(buf) : CONSOLE_TIME_LEN - 1;
	memcpy(out, buf, n);
	out[n] = '\0';
}

void console_time_format_us(int64_t us, char out[CONSOLE_TIME_LEN])
{
	console_time_format(us, 6, out);
}

void console_time_format_ms(int64_t us, char out[CONSOLE_TIME_LEN])
{
	console_time_format(us, 3, out);
}

/* ---- cursor: base64url("c1.<created_at us>.<id>"), no padding ---- */

static const char console_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void console_cursor_encode(int64_t at_us, int64_t id, char out[CONSOLE_CURSOR_LEN])
{
	char raw[48];
	size_t n = (size_t)snprintf(raw, sizeof raw, "c1.%" PRId64 ".%" PRId64, at_us, id), o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)raw[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)raw[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)raw[i + 2];
		out[o++] = console_b64[(v >> 18) & 63];
		out[o++] = console_b64[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = console_b64[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = console_b64[v & 63];
	}
	out[o] = '\0';
}

int console_cursor_decode(const char *s, int64_t *at_us, int64_t *id)
{
	char raw[48], *end;
	size_t len = strlen(s), o = 0;
	uint32_t v = 0;
	int bits = 0;

	if (len == 0 || len > 60 || len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *c = strchr(console_b64, s[i]);

		if (s[i] == '\0' || c == NULL)
			return -1;
		v = (v << 6) | (uint32_t)(c - console_b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= sizeof raw - 1)
				return -1;
			raw[o++] = (char)((v >> bits) & 0xff);
		}
	}
	raw[o] = '\0';
	if (strncmp(raw, "c1.", 3) != 0 || raw[3] < '0' || raw[3] > '9')
		return -1;
	*at_us = strtoll(raw + 3, &end, 10);
	if (*end != '.' || end[1] < '1' || end[1] > '9')
		return -1;
	*id = strtoll(end + 1, &end, 10);
	return *end == '\0' && *at_us > 0 && *at_us<CONSOLE_US_MAX && * id> 0 && *id < INT64_MAX
	           ? 0
	           : -1;
}

/* ---- arguments ---- */

const char *console_arg(const struct console_args *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->name[i], name) == 0)
			return a->value[i] != NULL ? a->value[i] : "";
	return "";
}

static int console_fail(struct console_err *err, const char *field, const char *msg)
{
	snprintf(err->field, sizeof err->field, "%s", field);
	snprintf(err->msg, sizeof err->msg, "%s: %s", field, msg);
	return -1;
}

int console_args_check(const struct console_args *a, const char *const *allowed,
                       struct console_err *err)
{
	if (a->too_many)
		return console_fail(err, "query", "too many parameters");
	for (size_t i = 0; i < a->n; i++) {
		bool known = false;

		for (const char *const *k = allowed; *k != NULL && !known; k++)
			known = strcmp(*k, a->name[i]) == 0;
		if (!known) {
			snprintf(err->field, sizeof err->field, "%.31s", a->name[i]);
			snprintf(err->msg, sizeof err->msg, "unknown parameter '%.60s'",
			         a->name[i]);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(a->name[j], a->name[i]) == 0)
				return console_fail(err, a->name[i], "given more than once");
	}
	return 0;
}

/* An integer in [lo, hi] (plain digits), or def when absent. */
static int console_int(const struct console_args *a, const char *name, int lo, int hi, int def,
                       int *out, struct console_err *err)
{
	const char *v = console_arg(a, name);
	long n = 0;

	*out = def;
	if (v[0] == '\0')
		return 0;
	for (const char *p = v; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - v > 6) {
			snprintf(err->field, sizeof err->field, "%s", name);
			snprintf(err->msg, sizeof err->msg, "%s: must be an integer from %d to %d",
			         name, lo, hi);
			return -1;
		}
		n = n * 10 + (*p - '0');
	}
	if (n < lo || n > hi) {
		snprintf(err->field, sizeof err->field, "%s", name);
		snprintf(err->msg, sizeof err->msg, "%s: must be an integer from %d to %d", name,
		         lo, hi);
		return -1;
	}
	*out = (int)n;
	return 0;
}

/* A time parameter: *set false when absent. */
static int console_time_arg(const struct console_args *a, const char *name, bool *set, int64_t *us,
                            struct console_err *err)
{
	const char *v = console_arg(a, name);

	*set = v[0] != '\0';
	if (*set && console_time_parse(v, us) != 0)
		return console_fail(err, name,
		                    "not an ISO-8601 UTC time like 2026-12-07T01:02:03Z (an offset "
		                    "such as +00:00 is accepted)");
	return 0;
}

/* An identifier filter: at most 255 bytes, copied into out[256]. */
static int console_id_arg(const struct console_args *a, const char *name, char out[256],
                          struct console_err *err)
{
	const char *v = console_arg(a, name);

	if (strlen(v) > 255)
		return console_fail(err, name, "longer than 255 characters");
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int console_window(const struct console_args *a, int64_t now_us, int64_t default_us,
                          struct console_window *w, struct console_err *err)
{
	bool has_since, has_until;

	if (console_time_arg(a, "since", &has_since, &w->since_us, err) != 0 ||
	    console_time_arg(a, "until", &has_until, &w->until_us, err) != 0)
		return -1;
	if (!has_until)
		w->until_us = now_us;
	if (!has_since)
		w->since_us = w->until_us - default_us;
	if (w->since_us > w->until_us)
		return console_fail(err, "since", "is after until");
	console_time_format_us(w->since_us, w->since);
	console_time_format_us(w->until_us, w->until);
	return 0;
}

int console_parse_calls(const struct console_args *a, struct console_calls_req *r,
                        struct console_err *err)
{
	static const char *const allowed[] = {"status", "driver_id", "trip_id", "since",
	                                      "until",  "limit",     "cursor",  NULL};
	const char *cursor, *status;
	int64_t since = 0, until = 0;
	bool has_since, has_until;

	memset(r, 0, sizeof *r);
	if (console_args_check(a, allowed, err) != 0)
		return -1;
	status = console_arg(a, "status");
	if (status[0] != '\0' && strcmp(status, "in_progress") != 0 &&
	    strcmp(status, "completed") != 0 && strcmp(status, "failed") != 0)
		return console_fail(err, "status", "must be in_progress, completed or failed");
	snprintf(r->status, sizeof r->status, "%s", status);
	if (console_id_arg(a, "driver_id", r->driver_id, err) != 0 ||
	    console_id_arg(a, "trip_id", r->trip_id, err) != 0 ||
	    console_time_arg(a, "since", &has_since, &since, err) != 0 ||
	    console_time_arg(a, "until", &has_until, &until, err) != 0 ||
	    console_int(a, "limit", 1, CONSOLE_LIST_LIMIT_MAX, 50, &r->limit, err) != 0)
		return -1;
	if (has_since && has_until && since > until)
		return console_fail(err, "since", "is after until");
	if (has_since)
		console_time_format_us(since, r->since);
	if (has_until)
		console_time_format_us(until, r->until);
	cursor = console_arg(a, "cursor");
	if (cursor[0] != '\0') {
		int64_t at;

		if (console_cursor_decode(cursor, &at, &r->cursor_id) != 0)
			return console_fail(err, "cursor",
			                    "not a cursor this API returned (next_cursor)");
		r->has_cursor = true;
		console_time_format_us(at, r->cursor_at);
	}
	return 0;
}

const char *const console_driver_sorts[] = {
    "calls",        "completed", "failed", "in_progress", "success_rate", "median_duration_s",
    "last_call_at", "driver_id", NULL,
};

int console_parse_drivers(const struct console_args *a, int64_t now_us,
                          struct console_drivers_req *r, struct console_err *err)
{
	static const char *const allowed[] = {"since", "until",     "sort", "order",
	                                      "limit", "driver_id", NULL};
	const char *sort, *order;

	memset(r, 0, sizeof *r);
	if (console_args_check(a, allowed, err) != 0 ||
	    console_window(a, now_us, 30 * US_PER_DAY, &r->w, err) != 0)
		return -1;
	sort = console_arg(a, "sort");
	r->sort = -1;
	for (int i = 0; console_driver_sorts[i] != NULL; i++)
		if (strcmp(sort[0] != '\0' ? sort : "calls", console_driver_sorts[i]) == 0)
			r->sort = i;
	if (r->sort < 0)
		return console_fail(err, "sort",
		                    "must be calls, completed, failed, in_progress, success_rate, "
		                    "median_duration_s, last_call_at or driver_id");
	order = console_arg(a, "order");
	if (order[0] != '\0' && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
		return console_fail(err, "order", "must be asc or desc");
	r->ascending = strcmp(order, "asc") == 0;
	r->rolling =
	    strcmp(console_driver_sorts[r->sort], "median_duration_s") != 0 &&
	    llabs(r->w.until_us - now_us) <= CONSOLE_ROLLING_SLACK_US &&
	    llabs(r->w.until_us - r->w.since_us - 30 * US_PER_DAY) <= CONSOLE_ROLLING_SLACK_US;
	return console_int(a, "limit", 1, CONSOLE_DRIVERS_LIMIT_MAX, 100, &r->limit, err) != 0 ||
	               console_id_arg(a, "driver_id", r->driver_id, err) != 0
	           ? -1
	           : 0;
}

int console_parse_overview(const struct console_args *a, int64_t now_us,
                           struct console_overview_req *r, struct console_err *err)
{
	static const char *const allowed[] = {"since", "until", "bucket", NULL};
	const char *bucket;
	int64_t width;

	memset(r, 0, sizeof *r);
	if (console_args_check(a, allowed, err) != 0 ||
	    console_window(a, now_us, 86400 * US_PER_S, &r->w, err) != 0)
		return -1;
	bucket = console_arg(a, "bucket");
	if (bucket[0] == '\0')
		bucket = "hour";
	if (strcmp(bucket, "hour") != 0 && strcmp(bucket, "day") != 0)
		return console_fail(err, "bucket", "must be hour or day");
	snprintf(r->bucket, sizeof r->bucket, "%s", bucket);
	width = strcmp(r->bucket, "hour") == 0 ? 3600 * US_PER_S : US_PER_DAY;
	if ((r->w.until_us - r->w.since_us) / width >= CONSOLE_BUCKETS_MAX)
		return console_fail(
		    err, "bucket",
		    "too many buckets for this window (at most 1000): use day, or a "
		    "shorter window");
	return 0;
}
