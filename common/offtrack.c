/* offtrack: per partition, a sorted array of the unfinished offsets; its first bounds the
 * commit. The live entries are v[start, end): messages mostly finish near either end, so the
 * removal moves the shorter side, and one at the front costs nothing. */
#include "offtrack.h"

#include <stdlib.h>
#include <string.h>

struct offtrack_part {
	char *topic;
	int32_t partition;
	int64_t *v; /* unfinished offsets in v[start, end): ascending, unique */
	size_t start, end, cap;
	int64_t last;      /* highest offset consumed, -1: none */
	int64_t last_ts;   /* its timestamp */
	int64_t committed; /* the last commit's next offset, -1: none */
};

struct offtrack {
	struct offtrack_part *parts;
	size_t nparts, cap;
};

struct offtrack *offtrack_new(void)
{
	return calloc(1, sizeof(struct offtrack));
}

void offtrack_destroy(struct offtrack *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nparts; i++) {
		free(t->parts[i].topic);
		free(t->parts[i].v);
	}
	free(t->parts);
	free(t);
}

static struct offtrack_part *offtrack_find(const struct offtrack *t, const char *topic,
                                           int32_t partition)
{
	for (size_t i = 0; i < t->nparts; i++)
		if (t->parts[i].partition == partition && strcmp(t->parts[i].topic, topic) == 0)
			return &t->parts[i];
	return NULL;
}

static void offtrack_reset(struct offtrack_part *p)
{
	p->start = p->end = 0;
	p->last = p->last_ts = p->committed = -1;
}

static struct offtrack_part *offtrack_get(struct offtrack *t, const char *topic, int32_t partition)
{
	struct offtrack_part *p = offtrack_find(t, topic, partition);
	char *name;

	if (p)
		return p;
	if (t->nparts == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct offtrack_part *parts = realloc(t->parts, cap * sizeof *parts);

		if (!parts)
			return NULL;
		t->parts = parts;
		t->cap = cap;
	}
	name = strdup(topic);
	if (!name)
		return NULL;
	p = &t->parts[t->nparts++];
	*p = (struct offtrack_part){.topic = name, .partition = partition};
	offtrack_reset(p);
	return p;
}

/* Where offset is in v[start, end), or where it would go. */
static size_t offtrack_search(const struct offtrack_part *p, int64_t offset)
{
	size_t lo = p->start, hi = p->end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->v[mid] < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Makes room for one more entry at the end: moves the entries to the front when a quarter of
 * the array lies unused before them, else doubles it. Returns 0 or -1 (nothing changed). */
static int offtrack_room(struct offtrack_part *p)
{
	size_t n = p->end - p->start, cap;
	int64_t *v;

	if (p->end < p->cap)
		return 0;
	if (p->start > 0 && p->start >= p->cap / 4) {
		memmove(p->v, p->v + p->start, n * sizeof *p->v);
		p->start = 0;
		p->end = n;
		return 0;
	}
	cap = p->cap ? p->cap * 2 : 64;
	v = realloc(p->v, cap * sizeof *v);
	if (!v)
		return -1;
	p->v = v;
	p->cap = cap;
	return 0;
}

int offtrack_add(struct offtrack *t, const char *topic, int32_t partition, int64_t offset,
                 int64_t timestamp_ms)
{
	struct offtrack_part *p = offtrack_get(t, topic, partition);
	size_t at;

	if (!p)
		return -1;
	at = offtrack_search(p, offset);
	if (at < p->end && p->v[at] == offset)
		return 0;
	if (offtrack_room(p))
		return -1;
	at = offtrack_search(p, offset); /* the entries may have moved */
	memmove(&p->v[at + 1], &p->v[at], (p->end - at) * sizeof *p->v);
	p->v[at] = offset;
	p->end++;
	/* Only now: an offset refused for want of memory must not count as consumed, or the
	 * commit (last + 1 once all are finished) would pass it. */
	if (offset > p->last) {
		p->last = offset;
		p->last_ts = timestamp_ms;
	}
	return 0;
}

void offtrack_done(struct offtrack *t, const char *topic, int32_t partition, int64_t offset)
{
	struct offtrack_part *p = offtrack_find(t, topic, partition);
	size_t at;

	if (!p)
		return;
	at = offtrack_search(p, offset);
	if (at == p->end || p->v[at] != offset)
		return;
	if (at - p->start < p->end - 1 - at) {
		memmove(&p->v[p->start + 1], &p->v[p->start], (at - p->start) * sizeof *p->v);
		p->start++;
	} else {
		memmove(&p->v[at], &p->v[at + 1], (p->end - 1 - at) * sizeof *p->v);
		p->end--;
	}
	if (p->start == p->end)
		p->start = p->end = 0;
}

static int64_t offtrack_next(const struct offtrack_part *p)
{
	if (p->start < p->end)
		return p->v[p->start];
	return p->last >= 0 ? p->last + 1 : -1;
}

int64_t offtrack_committable(const struct offtrack *t, const char *topic, int32_t partition)
{
	const struct offtrack_part *p = offtrack_find(t, topic, partition);

	return p ? offtrack_next(p) : -1;
}

size_t offtrack_pending(const struct offtrack *t, const char *topic, int32_t partition)
{
	const struct offtrack_part *p = offtrack_find(t, topic, partition);

	return p ? p->end - p->start : 0;
}

size_t offtrack_unfinished(const struct offtrack *t, const char *topic, int32_t partition,
                           int64_t *out, size_t max)
{
	const struct offtrack_part *p = offtrack_find(t, topic, partition);
	size_t n;

	if (!p)
		return 0;
	n = p->end - p->start;
	if (max > 0)
		memcpy(out, &p->v[p->start], (n < max ? n : max) * sizeof *out);
	return n;
}

bool offtrack_last(const struct offtrack *t, const char *topic, int32_t partition, int64_t *offset,
                   int64_t *timestamp_ms)
{
	const struct offtrack_part *p = offtrack_find(t, topic, partition);

	if (!p || p->last < 0)
		return false;
	*offset = p->last;
	*timestamp_ms = p->last_ts;
	return true;
}

void offtrack_committed(struct offtrack *t, const char *topic, int32_t partition,
                        int64_t next_offset)
{
	struct offtrack_part *p = offtrack_find(t, topic, partition);

	if (p && next_offset > p->committed)
		p->committed = next_offset;
}

void offtrack_each_uncommitted(struct offtrack *t,
                               void (*fn)(void *opaque, const char *topic, int32_t partition,
                                          int64_t next_offset),
                               void *opaque)
{
	for (size_t i = 0; i < t->nparts; i++) {
		const struct offtrack_part *p = &t->parts[i];
		int64_t next = offtrack_next(p);

		if (next >= 0 && next > p->committed)
			fn(opaque, p->topic, p->partition, next);
	}
}

void offtrack_drop(struct offtrack *t, const char *topic, int32_t partition)
{
	struct offtrack_part *p = offtrack_find(t, topic, partition);

	if (p)
		offtrack_reset(p);
}
