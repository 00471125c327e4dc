/* console_params: the console read APIs' query parameters (docs/console.md): ISO-8601 times,
 * the opaque list cursor, limits and enumerations, each refused with a message naming the
 * parameter. Pure functions: unit-tested without a server. */
#ifndef CALLPIPE_INGRESS_CONSOLE_PARAMS_H
#define CALLPIPE_INGRESS_CONSOLE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_TIME_LEN   40
#define CONSOLE_CURSOR_LEN 64
#define CONSOLE_ARGS_MAX   16

/* A refusal: the parameter and why. */
struct console_err {
	char field[32];
	char msg[160];
};

/* Parses "2026-12-07T01:02:03Z", with optional fraction (up to 9 digits, kept to the
 * microsecond) and "Z", "+HH:MM" or "-HH:MM" (also "+HHMM"), into microseconds since the epoch.
 * Returns 0, or -1 when it is not such a time (or out of years 1970-9999). */
int console_time_parse(const char *s, int64_t *us);
/* "2026-12-07T01:02:03.456789Z" (exact: what SQL is given). */
void console_time_format_us(int64_t us, char out[CONSOLE_TIME_LEN]);
/* "2026-12-07T01:02:03.456Z" (what the APIs answer). */
void console_time_format_ms(int64_t us, char out[CONSOLE_TIME_LEN]);

/* The list cursor: the last row's created_at (microseconds) and id, as base64url text. */
void console_cursor_encode(int64_t at_us, int64_t id, char out[CONSOLE_CURSOR_LEN]);
int console_cursor_decode(const char *s, int64_t *at_us, int64_t *id);

/* One request's query arguments, as libmicrohttpd decoded them (borrowed: the parsed requests
 * below copy what they keep, so a read may outlive the connection's request). */
struct console_args {
	size_t n;
	const char *name[CONSOLE_ARGS_MAX];
	const char *value[CONSOLE_ARGS_MAX]; /* NULL: "name" without "=" */
	bool too_many;
};

/* The value of name ("" when absent or empty). */
const char *console_arg(const struct console_args *a, const char *name);

/* Refuses names not in allowed (NULL-terminated), repeated names, and more than
 * CONSOLE_ARGS_MAX arguments. 0 or -1 with *err. */
int console_args_check(const struct console_args *a, const char *const *allowed,
                       struct console_err *err);

/* GET /calls. */
struct console_calls_req {
	char status[16], driver_id[256], trip_id[256];         /* "" = any */
	char since[CONSOLE_TIME_LEN], until[CONSOLE_TIME_LEN]; /* "" = open */
	bool has_cursor;
	char cursor_at[CONSOLE_TIME_LEN];
	int64_t cursor_id;
	int limit;
};
int console_parse_calls(const struct console_args *a, struct console_calls_req *r,
                        struct console_err *err);

/* A window [since, until): explicit, or default_s long ending at now_us (or at until). */
struct console_window {
	int64_t since_us, until_us;
	char since[CONSOLE_TIME_LEN], until[CONSOLE_TIME_LEN]; /* exact, for SQL */
};

/* GET /stats/drivers. sort is an index into console_driver_sorts. */
extern const char *const console_driver_sorts[];
struct console_drivers_req {
	struct console_window w;
	int sort;
	bool ascending;
	int limit;
	char driver_id[256]; /* "" = every driver */
	/* the rolling 30-day window (migration 010's rollup answers it): no since/until, or until
	 * within 60 s of now and until - since within 60 s of 30 days; never for the median sort */
	bool rolling;
};
int console_parse_drivers(const struct console_args *a, int64_t now_us,
                          struct console_drivers_req *r, struct console_err *err);

/* GET /stats/overview. */
struct console_overview_req {
	struct console_window w;
	char bucket[8]; /* "hour" or "day" */
};
int console_parse_overview(const struct console_args *a, int64_t now_us,
                           struct console_overview_req *r, struct console_err *err);

#endif
