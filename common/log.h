/* log: one JSON object per line on stderr, with levels, context fields and secret redaction. */
#ifndef CALLPIPE_LOG_H
#define CALLPIPE_LOG_H

#include "timeutil.h"

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

enum log_field_type { LOG_FIELD_NONE = 0, LOG_FIELD_STR, LOG_FIELD_INT };

/* One context field. Build them with LOGS()/LOGI(); keys and strings are borrowed for the call. */
struct log_field {
	const char *key;
	enum log_field_type type;
	const char *s;
	long long i;
};

#define LOGS(k, v) ((struct log_field){.key = (k), .type = LOG_FIELD_STR, .s = (v)})
#define LOGI(k, v) ((struct log_field){.key = (k), .type = LOG_FIELD_INT, .i = (long long)(v)})

/* Sets the service name written in every line and the minimum level. Call once, before threads. */
void log_init(const char *service, enum log_level level);

/* Parses "error", "warn", "info", "debug"; returns 0, or -1 for anything else. */
int log_level_parse(const char *s, enum log_level *out);

/* Registers a secret value (copied); any occurrence in a message or field is written as "***".
 * Values shorter than 4 bytes are ignored. Thread-safe. */
void log_add_secret(const char *value);

bool log_enabled(enum log_level level);

/* Writes one line atomically (one write(2)). Fields whose key is NULL are skipped. */
void log_emit(enum log_level level, const char *msg, const struct log_field *fields,
              size_t nfields);

/* Redirects output (tests); fd -1 restores stderr. */
void log_set_fd(int fd);

/* Rate limit for one repetitive line (a failure per message or per request during an outage, a
 * refusal an attacker can repeat): embed it zeroed next to the code that logs; thread-safe. */
struct log_limit {
	_Atomic long long next_ms;
	_Atomic long long suppressed;
};

/* True when the line may be written at now_ms (at most once per interval_ms); *suppressed then
 * gets how many were held back since the last one written, to log with it. False: the line is
 * counted as suppressed and must not be written. */
bool log_limit_pass(struct log_limit *l, long long now_ms, long long interval_ms,
                    long long *suppressed);

#define LOG_LIMIT_INTERVAL_MS 1000

/* One line through lim (at most once per LOG_LIMIT_INTERVAL_MS on the monotonic clock), with a
 * "suppressed" field: log_warn_limited(&s->lim, "msg", LOGS(...), ...); at least one field. */
#define LOG_LIMITED_(lvl, lim, msg, ...)                                                        \
	do {                                                                                    \
		long long log_held_;                                                            \
		if (log_enabled(lvl) &&                                                         \
		    log_limit_pass((lim), time_mono_ms(), LOG_LIMIT_INTERVAL_MS, &log_held_)) { \
			const struct log_field log_f_[] = {                                     \
			    {0}, __VA_ARGS__, LOGI("suppressed", log_held_)};                   \
			log_emit(lvl, msg, log_f_, sizeof log_f_ / sizeof log_f_[0]);           \
		}                                                                               \
	} while (0)
#define log_warn_limited(...) LOG_LIMITED_(LOG_WARN, __VA_ARGS__)
#define log_info_limited(...) LOG_LIMITED_(LOG_INFO, __VA_ARGS__)
/* The level chosen at run time: log_limited(LOG_WARN, &s->lim, "msg", LOGS(...), ...). */
#define log_limited(...) LOG_LIMITED_(__VA_ARGS__)

#define LOG_AT_(lvl, msg, ...)                                                        \
	do {                                                                          \
		if (log_enabled(lvl)) {                                               \
			const struct log_field log_f_[] = {{0}, __VA_ARGS__};         \
			log_emit(lvl, msg, log_f_, sizeof log_f_ / sizeof log_f_[0]); \
		}                                                                     \
	} while (0)

/* log_info("dial started", LOGS("call_sid", sid), LOGI("attempt", n)); fields are optional. */
#define log_error(...) LOG_AT_(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  LOG_AT_(LOG_WARN, __VA_ARGS__)
#define log_info(...)  LOG_AT_(LOG_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT_(LOG_DEBUG, __VA_ARGS__)

#endif
