/* offsets: sorted arrays of unhandled offsets per partition; the minimum bounds the commit. */
#include "offsets.h"

#include "fault.h"

#include <stdlib.h>
#include <string.h>

struct tr_part {
	char *topic;
	int32_t partition;
	int64_t *pending; /* sorted ascending, unique */
	size_t npending, cap;
	int64_t last_offset; /* -1: nothing consumed */
	int64_t last_ts;
	int64_t committed; /* last committed next offset, -1 none */
	/* earlier assignments (kept at a revoke): up to top every offset was handled (or never
	 * taken: not wanted) except the holes, taken but dropped unhandled (sorted, unique) */
	int64_t top;
	int64_t *holes;
	size_t nholes;
};

struct tr_offsets {
	struct tr_part *parts;
	size_t nparts, cap;
};

struct tr_offsets *tr_offsets_new(void)
{
	return calloc(1, sizeof(struct tr_offsets));
}

static void tr_part_free(struct tr_part *p)
{
	free(p->topic);
	free(p->pending);
	free(p->holes);
}

void tr_offsets_destroy(struct tr_offsets *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->nparts; i++)
		tr_part_free(&o->parts[i]);
	free(o->parts);
	free(o);
}

static struct tr_part *tr_part_find(const struct tr_offsets *o, const char *topic,
                                    int32_t partition)
{
	for (size_t i = 0; i < o->nparts; i++)
		if (o->parts[i].partition == partition && strcmp(o->parts[i].topic, topic) == 0)
			return &o->parts[i];
	return NULL;
}

static struct tr_part *tr_part_get(struct tr_offsets *o, const char *topic, int32_t partition)
{
	struct tr_part *p = tr_part_find(o, topic, partition);

	if (p)
		return p;
	if (o->nparts == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		struct tr_part *parts = realloc(o->parts, cap * sizeof *parts);

		if (!parts)
			return NULL;
		o->parts = parts;
		o->cap = cap;
	}
	p = &o->parts[o->nparts];
	memset(p, 0, sizeof *p);
	p->topic = strdup(topic);
	if (!p->topic)
		return NULL;
	p->partition = partition;
	p->last_offset = -1;
	p->last_ts = -1;
	p->committed = -1;
	p->top = -1;
	o->nparts++;
	return p;
}

/* Position of offset in the sorted v[0..n) (or where it would be inserted). */
static size_t tr_search(const int64_t *v, size_t n, int64_t offset)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid] < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int tr_offsets_add(struct tr_offsets *o, const char *topic, int32_t partition, int64_t offset,
                   int64_t timestamp_ms)
{
	struct tr_part *p;
	size_t at;

	if (fault_track_refuse(topic, partition, offset))
		return -1;
	p = tr_part_get(o, topic, partition);
	if (!p)
		return -1;
	at = tr_search(p->pending, p->npending, offset);
	if (at == p->npending || p->pending[at] != offset) {
		if (p->npending == p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 64;
			int64_t *pending = realloc(p->pending, cap * sizeof *pending);

			if (!pending)
				return -1;
			p->pending = pending;
			p->cap = cap;
		}
		memmove(&p->pending[at + 1], &p->pending[at],
		        (p->npending - at) * sizeof *p->pending);
		p->pending[at] = offset;
		p->npending++;
	}
	/* Only now: a refused offset must not count as consumed, or the commit (last + 1 when
	 * nothing is pending) would pass it and its next delivery would look like a duplicate. */
	if (offset > p->last_offset) {
		p->last_offset = offset;
		p->last_ts = timestamp_ms;
	}
	return 0;
}

void tr_offsets_done(struct tr_offsets *o, const char *topic, int32_t partition, int64_t offset)
{
	struct tr_part *p = tr_part_find(o, topic, partition);
	size_t at;

	if (!p)
		return;
	at = tr_search(p->pending, p->npending, offset);
	if (at >= p->npending || p->pending[at] != offset)
		return;
	memmove(&p->pending[at], &p->pending[at + 1], (p->npending - at - 1) * sizeof *p->pending);
	p->npending--;
}

static int64_t tr_part_committable(const struct tr_part *p)
{
	if (p->npending > 0)
		return p->pending[0];
	return p->last_offset >= 0 ? p->last_offset + 1 : -1;
}

int64_t tr_offsets_committable(const struct tr_offsets *o, const char *topic, int32_t partition)
{
	const struct tr_part *p = tr_part_find(o, topic, partition);

	return p ? tr_part_committable(p) : -1;
}

unsigned long tr_offsets_pending(const struct tr_offsets *o, const char *topic, int32_t partition)
{
	const struct tr_part *p = tr_part_find(o, topic, partition);

	return p ? (unsigned long)p->npending : 0;
}

bool tr_offsets_progress(const struct tr_offsets *o, const char *topic, int32_t partition,
                         int64_t *offset, int64_t *timestamp_ms)
{
	const struct tr_part *p = tr_part_find(o, topic, partition);

	if (!p || p->last_offset < 0)
		return false;
	*offset = p->last_offset;
	*timestamp_ms = p->last_ts;
	return true;
}

void tr_offsets_committed(struct tr_offsets *o, const char *topic, int32_t partition,
                          int64_t next_offset)
{
	struct tr_part *p = tr_part_find(o, topic, partition);

	if (p && next_offset > p->committed)
		p->committed = next_offset;
}

void tr_offsets_each_uncommitted(struct tr_offsets *o,
                                 void (*fn)(void *opaque, const char *topic, int32_t partition,
                                            int64_t next_offset),
                                 void *opaque)
{
	for (size_t i = 0; i < o->nparts; i++) {
		int64_t next = tr_part_committable(&o->parts[i]);

		if (next >= 0 && next > o->parts[i].committed)
			fn(opaque, o->parts[i].topic, o->parts[i].partition, next);
	}
}

/* Merges p's pending offsets into its holes (both sorted; disjoint: a hole taken again left
 * the holes). Returns 0 or -1 (out of memory: the pending ones then count as handled). */
static int tr_part_keep_holes(struct tr_part *p)
{
	int64_t *merged;
	size_t i = 0, j = 0, n = 0;

	if (p->npending == 0)
		return 0;
	merged = malloc((p->nholes + p->npending) * sizeof *merged);
	if (!merged)
		return -1;
	while (i < p->nholes || j < p->npending) {
		if (j == p->npending || (i < p->nholes && p->holes[i] < p->pending[j]))
			merged[n++] = p->holes[i++];
		else
			merged[n++] = p->pending[j++];
	}
	free(p->holes);
	p->holes = merged;
	p->nholes = n;
	return 0;
}

int tr_offsets_drop(struct tr_offsets *o, const char *topic, int32_t partition)
{
	struct tr_part *p = tr_part_find(o, topic, partition);
	int ret;

	if (!p)
		return 0;
	ret = tr_part_keep_holes(p);
	if (p->last_offset > p->top)
		p->top = p->last_offset;
	/* Out of memory keeping the unhandled ones as holes: from the lowest of them up everything
	 * counts as new again, so it is taken again (some handled ones too, counted twice) rather
	 * than passed over as handled. */
	if (ret < 0 && p->pending[0] - 1 < p->top)
		p->top = p->pending[0] - 1;
	free(p->pending);
	p->pending = NULL;
	p->npending = p->cap = 0;
	p->last_offset = p->last_ts = p->committed = -1;
	return ret;
}

enum tr_offset_past tr_offsets_past(struct tr_offsets *o, const char *topic, int32_t partition,
                                    int64_t offset)
{
	struct tr_part *p = tr_part_find(o, topic, partition);
	size_t at;

	if (!p || offset > p->top)
		return TR_OFFSET_NEW;
	at = tr_search(p->holes, p->nholes, offset);
	if (at == p->nholes || p->holes[at] != offset)
		return TR_OFFSET_HANDLED;
	memmove(&p->holes[at], &p->holes[at + 1], (p->nholes - at - 1) * sizeof *p->holes);
	p->nholes--;
	return TR_OFFSET_RETAKE;
}
