/* log: JSON lines on stderr (ts, level, service, msg, fields), level filter, secret redaction. */
#include "log.h"

#include "timeutil.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_SERVICE_MAX 64
#define LOG_SECRET_MIN  4

/* Process-wide logger state: set once by log_init, secrets guarded by the mutex. */
static char log_service[LOG_SERVICE_MAX] = "callpipe";
static atomic_int log_min_level = LOG_INFO;
static atomic_int log_fd = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char **log_secrets;
static size_t log_nsecrets;

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *service, enum log_level level)
{
	if (service != NULL) {
		strncpy(log_service, service, sizeof log_service - 1);
		log_service[sizeof log_service - 1] = '\0';
	}
	atomic_store(&log_min_level, (int)level);
}

int log_level_parse(const char *s, enum log_level *out)
{
	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof log_level_names / sizeof log_level_names[0]; i++) {
		if (strcasecmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

void log_add_secret(const char *value)
{
	char *copy, **grown;

	if (value == NULL || strlen(value) < LOG_SECRET_MIN)
		return;
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < log_nsecrets; i++) {
		if (strcmp(log_secrets[i], value) == 0)
			goto out;
	}
	copy = strdup(value);
	if (copy == NULL)
		goto out;
	grown = realloc(log_secrets, (log_nsecrets + 1) * sizeof *grown);
	if (grown == NULL) {
		free(copy);
		goto out;
	}
	log_secrets = grown;
	log_secrets[log_nsecrets++] = copy;
out:
	pthread_mutex_unlock(&log_lock);
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_min_level);
}

void log_set_fd(int fd)
{
	atomic_store(&log_fd, fd);
}

/* Copies s replacing invalid UTF-8 bytes with '?', so jansson accepts any input text.
 * Returns a malloc'd string or NULL. */
static char *log_utf8_clean(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1);
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0;

	if (out == NULL)
		return NULL;
	while (i < n) {
		unsigned c = p[i];
		size_t len = c < 0x80           ? 1
		             : (c >> 5) == 0x6  ? 2
		             : (c >> 4) == 0xe  ? 3
		             : (c >> 3) == 0x1e ? 4
		                                : 0;
		bool ok = len > 0 && i + len <= n;

		for (size_t k = 1; ok && k < len; k++)
			ok = (p[i + k] & 0xc0) == 0x80;
		if (ok && len == 2)
			ok = c >= 0xc2;
		if (ok && len == 3)
			ok = !(c == 0xe0 && p[i + 1] < 0xa0) && !(c == 0xed && p[i + 1] >= 0xa0);
		if (ok && len == 4)
			ok = c <= 0xf4 && !(c == 0xf0 && p[i + 1] < 0x90) &&
			     !(c == 0xf4 && p[i + 1] >= 0x90);
		if (!ok) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, p + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return out;
}

/* Replaces every registered secret in s (malloc'd, consumed) by "***". Caller holds log_lock.
 * Returns a malloc'd string (possibly s itself) or NULL. */
static char *log_redact_locked(char *s)
{
	for (size_t k = 0; s != NULL && k < log_nsecrets; k++) {
		const char *secret = log_secrets[k];
		size_t slen = strlen(secret), count = 0;
		char *hit, *out, *o;
		const char *from;

		for (hit = strstr(s, secret); hit != NULL; hit = strstr(hit + slen, secret))
			count++;
		if (count == 0)
			continue;
		/* "***" is never longer than a secret (>= 4 bytes): the result fits in strlen(s).
		 */
		out = malloc(strlen(s) + 1);
		if (out == NULL) {
			free(s);
			return NULL;
		}
		o = out;
		from = s;
		while ((hit = strstr(from, secret)) != NULL) {
			memcpy(o, from, (size_t)(hit - from));
			o += hit - from;
			memcpy(o, "***", 3);
			o += 3;
			from = hit + slen;
		}
		strcpy(o, from);
		free(s);
		s = out;
	}
	return s;
}

/* A JSON string of s after UTF-8 cleaning and redaction; NULL on allocation failure. */
static json_t *log_safe_string(const char *s)
{
	char *clean = log_utf8_clean(s != NULL ? s : "");
	json_t *str;

	pthread_mutex_lock(&log_lock);
	clean = log_redact_locked(clean);
	pthread_mutex_unlock(&log_lock);
	if (clean == NULL)
		return NULL;
	str = json_string(clean);
	free(clean);
	return str;
}

static void log_write_all(const char *buf, size_t len)
{
	int fd = atomic_load(&log_fd);

	if (fd < 0)
		fd = STDERR_FILENO;
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static const char *const log_reserved[] = {"ts", "level", "service", "msg"};

static bool log_key_reserved(const char *key)
{
	for (size_t i = 0; i < sizeof log_reserved / sizeof log_reserved[0]; i++) {
		if (strcmp(key, log_reserved[i]) == 0)
			return true;
	}
	return false;
}

void log_emit(enum log_level level, const char *msg, const struct log_field *fields, size_t nfields)
{
	static const char oom_line[] = "{\"level\":\"error\",\"msg\":\"log: out of memory\"}\n";
	char ts[32], *line = NULL, *key = NULL;
	json_t *root;
	size_t len;

	if ((int)level < LOG_ERROR || (int)level > LOG_DEBUG || !log_enabled(level))
		return;
	time_format_iso_ms(time_now_ms(), ts, sizeof ts);
	root = json_pack("{s:s, s:s, s:s, s:o*}", "ts", ts, "level", log_level_names[level],
	                 "service", log_service, "msg", log_safe_string(msg));
	if (root == NULL)
		goto out;
	for (size_t i = 0; i < nfields; i++) {
		const struct log_field *f = &fields[i];
		json_t *v = NULL;

		if (f->key == NULL || f->type == LOG_FIELD_NONE)
			continue;
		key = log_utf8_clean(f->key);
		if (key == NULL || log_key_reserved(key))
			goto next;
		if (f->type == LOG_FIELD_INT)
			v = json_integer(f->i);
		else if (f->s == NULL)
			v = json_null();
		else
			v = log_safe_string(f->s);
		if (v != NULL)
			json_object_set_new(root, key, v);
	next:
		free(key);
		key = NULL;
	}
	line = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (line == NULL)
		goto out;
	len = strlen(line);
	/* Append the newline in place so the line goes out in one write(2). */
	{
		char *grown = realloc(line, len + 2);

		if (grown == NULL)
			goto out;
		line = grown;
	}
	line[len++] = '\n';
	line[len] = '\0';
	log_write_all(line, len);
out:
	if (line == NULL)
		log_write_all(oom_line, sizeof oom_line - 1);
	free(line);
	json_decref(root);
}

bool log_limit_pass(struct log_limit *l, long long now_ms, long long interval_ms,
                    long long *suppressed)
{
	long long next = atomic_load(&l->next_ms);

	if (now_ms < next ||
	    !atomic_compare_exchange_strong(&l->next_ms, &next, now_ms + interval_ms)) {
		atomic_fetch_add(&l->suppressed, 1);
		return false;
	}
	*suppressed = atomic_exchange(&l->suppressed, 0);
	return true;
}
