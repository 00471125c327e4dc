/* scan: per-partition start/end bookkeeping for replay and redrive. */
#include "scan.h"

#include "kbus.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* Longest wait for the broker's watermarks or the group's committed offset. */
#define TR_SCAN_ASK_MS 10000

/* A revoked partition's progress, restored if it is assigned again. */
struct tr_scan_gone {
	char *topic;
	int32_t partition;
	int64_t last;
};

struct tr_scan {
	struct tr_scan_part *v;
	size_t n;
	bool *fresh; /* resolved by the last tr_scan_resolve */
	struct tr_scan_gone *gone;
	size_t ngone;
};

struct tr_scan *tr_scan_new(void)
{
	return calloc(1, sizeof(struct tr_scan));
}

void tr_scan_destroy(struct tr_scan *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].topic);
	for (size_t i = 0; i < s->ngone; i++)
		free(s->gone[i].topic);
	free(s->v);
	free(s->fresh);
	free(s->gone);
	free(s);
}

static struct tr_scan_part *tr_scan_find(struct tr_scan *s, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].partition == partition && strcmp(s->v[i].topic, topic) == 0)
			return &s->v[i];
	return NULL;
}

static void tr_scan_add(struct tr_scan *s, const char *topic, int32_t partition)
{
	struct tr_scan_part *v;
	bool *fresh;
	char *copy;

	if (tr_scan_find(s, topic, partition))
		return;
	v = realloc(s->v, (s->n + 1) * sizeof *v);
	if (v)
		s->v = v;
	fresh = realloc(s->fresh, (s->n + 1) * sizeof *fresh);
	if (fresh)
		s->fresh = fresh;
	copy = strdup(topic);
	if (!v || !fresh || !copy) {
		free(copy);
		log_error("out of memory recording a partition");
		return;
	}
	s->v[s->n] = (struct tr_scan_part){.topic = copy,
	                                   .partition = partition,
	                                   .lo = -1,
	                                   .hi = -1,
	                                   .start = -1,
	                                   .last = -1,
	                                   .reached = -1};
	s->fresh[s->n] = false;
	for (size_t i = 0; i < s->ngone; i++) {
		if (s->gone[i].partition == partition && strcmp(s->gone[i].topic, topic) == 0) {
			s->v[s->n].last = s->gone[i].last;
			free(s->gone[i].topic);
			s->gone[i] = s->gone[--s->ngone];
			break;
		}
	}
	s->n++;
}

/* Keeps a revoked partition's progress (the part itself goes: done no longer waits for it). */
static void tr_scan_remember(struct tr_scan *s, struct tr_scan_part *p)
{
	struct tr_scan_gone *gone;

	if (p->last < 0)
		return;
	gone = realloc(s->gone, (s->ngone + 1) * sizeof *gone);
	if (!gone) {
		log_error("out of memory recording a revoked partition");
		return;
	}
	s->gone = gone;
	s->gone[s->ngone++] = (struct tr_scan_gone){p->topic, p->partition, p->last};
	p->topic = NULL;
}

void tr_scan_update(struct tr_scan *s, bool assigned, const rd_kafka_topic_partition_list_t *parts)
{
	for (int i = 0; i < parts->cnt; i++) {
		struct tr_scan_part *p;

		if (assigned) {
			tr_scan_add(s, parts->elems[i].topic, parts->elems[i].partition);
			continue;
		}
		p = tr_scan_find(s, parts->elems[i].topic, parts->elems[i].partition);
		if (!p)
			continue;
		tr_scan_remember(s, p);
		free(p->topic);
		s->n--;
		s->fresh[p - s->v] = s->fresh[s->n];
		*p = s->v[s->n];
	}
}

int tr_scan_resolve(struct tr_scan *s, struct kbus_consumer *kc, bool use_committed)
{
	int resolved = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct tr_scan_part *p = &s->v[i];
		int64_t committed = -1;

		s->fresh[i] = false;
		if (p->resolved)
			continue;
		if (kbus_consumer_watermarks(kc, p->topic, p->partition, &p->lo, &p->hi,
		                             TR_SCAN_ASK_MS) < 0 ||
		    (use_committed && kbus_consumer_committed(kc, p->topic, p->partition,
		                                              &committed, TR_SCAN_ASK_MS) < 0))
			return -1;
		p->start = committed > p->lo ? committed : p->lo;
		p->resolved = true;
		s->fresh[i] = true;
		resolved++;
	}
	return resolved;
}

void tr_scan_each_new(struct tr_scan *s, void (*fn)(void *opaque, struct tr_scan_part *p),
                      void *opaque)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->fresh[i])
			fn(opaque, &s->v[i]);
}

bool tr_scan_seen(struct tr_scan *s, const char *topic, int32_t partition, int64_t offset)
{
	struct tr_scan_part *p = tr_scan_find(s, topic, partition);

	if (!p)
		return true;
	if (offset > p->reached)
		p->reached = offset;
	if (offset <= p->last)
		return false;
	p->last = offset;
	return true;
}

bool tr_scan_done(const struct tr_scan *s)
{
	if (s->n == 0)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		const struct tr_scan_part *p = &s->v[i];

		if (!p->resolved)
			return false;
		if (p->start < p->hi && p->reached + 1 < p->hi)
			return false;
	}
	return true;
}

size_t tr_scan_count(const struct tr_scan *s)
{
	return s->n;
}
