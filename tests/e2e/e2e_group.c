/* e2e_group: reads the workers' partition assignments from their logs (see e2e_group.h). */
#include "e2e_group.h"
#include "e2e.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

long long e2e_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-12-06T21:36:48.483Z" as epoch ms; -1 when it is not one. */
static long long e2e_log_ts_ms(const char *ts)
{
	struct tm tm = {0};
	int ms = 0;

	if (!ts || sscanf(ts, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

/* Parses kbus' "topic[p],topic[p],..." into h->parts (a cut-off last entry is dropped). */
static void e2e_parse_parts(const char *list, struct e2e_holding *h)
{
	h->n = 0;
	while (list && *list && h->n < E2E_GROUP_MAX_PARTS) {
		const char *end = strchr(list, ','), *open;
		size_t len = end ? (size_t)(end - list) : strlen(list);
		struct e2e_part *p = &h->parts[h->n];

		open = memchr(list, '[', len);
		if (open && list[len - 1] == ']' && (size_t)(open - list) < sizeof p->topic) {
			memcpy(p->topic, list, (size_t)(open - list));
			p->topic[open - list] = '\0';
			p->partition = atoi(open + 1);
			h->n++;
		}
		list = end ? end + 1 : NULL;
	}
}

/* Calls fn for every assignment change in w's log, with what w holds after it; stops early when
 * fn returns true. */
static void e2e_group_replay(const struct e2e_worker *w,
                             bool (*fn)(const struct e2e_holding *h, void *opaque), void *opaque)
{
	struct e2e_holding *h = calloc(1, sizeof *h);
	FILE *fp = w->proc.log_path[0] ? fopen(w->proc.log_path, "r") : NULL;
	char *line = NULL;
	size_t cap = 0;

	if (!h)
		fail_msg("e2e: out of memory");
	while (fp && getline(&line, &cap, fp) > 0) {
		json_t *root;
		const char *msg;

		if (!strstr(line, "\"kafka partitions ")) /* cheap filter before parsing */
			continue;
		root = json_loads(line, 0, NULL);
		msg = json_string_value(json_object_get(root, "msg"));
		if (msg && (strcmp(msg, "kafka partitions assigned") == 0 ||
		            strcmp(msg, "kafka partitions revoked") == 0)) {
			bool assigned = strcmp(msg, "kafka partitions assigned") == 0;

			h->ms = e2e_log_ts_ms(json_string_value(json_object_get(root, "ts")));
			h->count = 0;
			h->n = 0;
			if (assigned) {
				h->count = (int)json_integer_value(json_object_get(root, "count"));
				e2e_parse_parts(
				    json_string_value(json_object_get(root, "partitions")), h);
			}
			if (fn(h, opaque)) {
				json_decref(root);
				break;
			}
		}
		json_decref(root);
	}
	free(line);
	if (fp)
		fclose(fp);
	free(h);
}

static bool e2e_keep_last(const struct e2e_holding *h, void *opaque)
{
	*(struct e2e_holding *)opaque = *h;
	return false;
}

void e2e_group_holding(const struct e2e_worker *w, struct e2e_holding *out)
{
	memset(out, 0, sizeof *out);
	e2e_group_replay(w, e2e_keep_last, out);
}

static const struct e2e_worker *e2e_group_worker(const struct e2e_stack *s, const char *kind, int i)
{
	return strcmp(kind, "dialer") == 0 ? &s->dialers[i] : &s->transcribers[i];
}

void e2e_group_wait_settled(const struct e2e_stack *s, const char *kind, int total, int timeout_ms)
{
	struct e2e_holding *h = calloc(1, sizeof *h);
	long long deadline = e2e_wall_ms() + timeout_ms;
	char seen[256] = "";

	if (!h)
		fail_msg("e2e: out of memory");
	for (;;) {
		int sum = 0, members = 0, empty = 0;
		size_t len = 0;

		for (int i = 0; i < E2E_MAX_WORKERS; i++) {
			const struct e2e_worker *w = e2e_group_worker(s, kind, i);

			if (!w->running)
				continue;
			e2e_group_holding(w, h);
			members++;
			sum += h->count;
			empty += h->count == 0;
			len +=
			    (size_t)snprintf(seen + len, len < sizeof seen ? sizeof seen - len : 0,
			                     " %s-%d:%d", kind, i + 1, h->count);
			if (len >= sizeof seen)
				len = sizeof seen - 1;
		}
		if (members && !empty && sum == total)
			break;
		if (e2e_wall_ms() > deadline) {
			free(h);
			fail_msg("e2e: the %s group did not settle on %d partitions in %d ms; its "
			         "members hold%s",
			         kind, total, timeout_ms, seen);
		}
		ts_sleep_ms(100);
	}
	free(h);
	print_message("e2e: %s group settled:%s\n", kind, seen);
}

int e2e_group_partitions(const struct e2e_stack *s, const struct e2e_holding *h, const char *base,
                         int *out, int max)
{
	char topic[256];
	int n = 0;

	ts_broker_topic(&s->broker, base, topic, sizeof topic);
	for (int i = 0; i < h->n && n < max; i++)
		if (strcmp(h->parts[i].topic, topic) == 0)
			out[n++] = h->parts[i].partition;
	return n;
}

struct e2e_reassigned {
	const struct e2e_holding *dead;
	long long after_ms, first_ms;
};

static bool e2e_find_reassigned(const struct e2e_holding *h, void *opaque)
{
	struct e2e_reassigned *r = opaque;

	if (h->ms <= r->after_ms)
		return false;
	for (int i = 0; i < h->n; i++) {
		for (int k = 0; k < r->dead->n; k++) {
			if (h->parts[i].partition == r->dead->parts[k].partition &&
			    strcmp(h->parts[i].topic, r->dead->parts[k].topic) == 0) {
				if (r->first_ms < 0 || h->ms < r->first_ms)
					r->first_ms = h->ms;
				return true;
			}
		}
	}
	return false;
}

long long e2e_group_reassigned(const struct e2e_stack *s, const char *kind,
                               const struct e2e_holding *dead, long long after_ms)
{
	struct e2e_reassigned r = {.dead = dead, .after_ms = after_ms, .first_ms = -1};

	for (int i = 0; i < E2E_MAX_WORKERS; i++) {
		const struct e2e_worker *w = e2e_group_worker(s, kind, i);

		if (w->running)
			e2e_group_replay(w, e2e_find_reassigned, &r);
	}
	return r.first_ms;
}
