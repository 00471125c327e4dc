/* offsets: common/offtrack for what is in hand; per partition, the history of earlier
 * assignments (top and holes) for tr_offsets_past. */
#include "offsets.h"

#include "fault.h"
#include "offtrack.h"

#include <stdlib.h>
#include <string.h>

/* Earlier assignments of one partition: up to top every offset was handled (or never taken:
 * not wanted) except the holes, taken but dropped unhandled (sorted, unique). */
struct tr_hist {
	char *topic;
	int32_t partition;
	int64_t top;
	int64_t *holes;
	size_t nholes;
};

struct tr_offsets {
	struct offtrack *track;
	struct tr_hist *hist;
	size_t nhist;
};

struct tr_offsets *tr_offsets_new(void)
{
	struct tr_offsets *o = calloc(1, sizeof *o);

	if (!o)
		return NULL;
	o->track = offtrack_new();
	if (!o->track) {
		free(o);
		return NULL;
	}
	return o;
}

void tr_offsets_destroy(struct tr_offsets *o)
{
	if (!o)
		return;
	offtrack_destroy(o->track);
	for (size_t i = 0; i < o->nhist; i++) {
		free(o->hist[i].topic);
		free(o->hist[i].holes);
	}
	free(o->hist);
	free(o);
}

int tr_offsets_add(struct tr_offsets *o, const char *topic, int32_t partition, int64_t offset,
                   int64_t timestamp_ms)
{
	if (fault_track_refuse(topic, partition, offset))
		return -1;
	return offtrack_add(o->track, topic, partition, offset, timestamp_ms);
}

void tr_offsets_done(struct tr_offsets *o, const char *topic, int32_t partition, int64_t offset)
{
	offtrack_done(o->track, topic, partition, offset);
}

int64_t tr_offsets_committable(const struct tr_offsets *o, const char *topic, int32_t partition)
{
	return offtrack_committable(o->track, topic, partition);
}

unsigned long tr_offsets_pending(const struct tr_offsets *o, const char *topic, int32_t partition)
{
	return (unsigned long)offtrack_pending(o->track, topic, partition);
}

bool tr_offsets_progress(const struct tr_offsets *o, const char *topic, int32_t partition,
                         int64_t *offset, int64_t *timestamp_ms)
{
	return offtrack_last(o->track, topic, partition, offset, timestamp_ms);
}

void tr_offsets_committed(struct tr_offsets *o, const char *topic, int32_t partition,
                          int64_t next_offset)
{
	offtrack_committed(o->track, topic, partition, next_offset);
}

void tr_offsets_each_uncommitted(struct tr_offsets *o,
                                 void (*fn)(void *opaque, const char *topic, int32_t partition,
                                            int64_t next_offset),
                                 void *opaque)
{
	offtrack_each_uncommitted(o->track, fn, opaque);
}

static struct tr_hist *tr_hist_find(const struct tr_offsets *o, const char *topic,
                                    int32_t partition)
{
	for (size_t i = 0; i < o->nhist; i++)
		if (o->hist[i].partition == partition && strcmp(o->hist[i].topic, topic) == 0)
			return &o->hist[i];
	return NULL;
}

static struct tr_hist *tr_hist_get(struct tr_offsets *o, const char *topic, int32_t partition)
{
	struct tr_hist *h = tr_hist_find(o, topic, partition), *grown;
	char *name;

	if (h)
		return h;
	grown = realloc(o->hist, (o->nhist + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	o->hist = grown;
	name = strdup(topic);
	if (!name)
		return NULL;
	h = &o->hist[o->nhist++];
	*h = (struct tr_hist){.topic = name, .partition = partition, .top = -1};
	return h;
}

/* Position of offset in the sorted v[0..n) (or where it would be inserted). */
static size_t tr_search(const int64_t *v, size_t n, int64_t offset)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Merges the n sorted offsets of add into h's holes (disjoint: a hole taken again left the
 * holes). Returns 0 or -1 (out of memory: nothing changed). */
static int tr_hist_merge(struct tr_hist *h, const int64_t *add, size_t n)
{
	int64_t *merged = malloc((h->nholes + n) * sizeof *merged);
	size_t i = 0, j = 0, k = 0;

	if (!merged)
		return -1;
	while (i < h->nholes || j < n) {
		if (j == n || (i < h->nholes && h->holes[i] < add[j]))
			merged[k++] = h->holes[i++];
		else
			merged[k++] = add[j++];
	}
	free(h->holes);
	h->holes = merged;
	h->nholes = k;
	return 0;
}

int tr_offsets_drop(struct tr_offsets *o, const char *topic, int32_t partition)
{
	size_t n = offtrack_pending(o->track, topic, partition);
	int64_t last, ts, *unhandled = NULL;
	struct tr_hist *h;
	int ret = -1;

	if (!offtrack_last(o->track, topic, partition, &last, &ts)) {
		ret = 0; /* nothing taken in this assignment: nothing to remember */
		goto out;
	}
	h = tr_hist_get(o, topic, partition);
	if (!h)
		goto out; /* no history: tr_offsets_past says new, all of it is taken again */
	if (last > h->top)
		h->top = last;
	ret = 0;
	if (n == 0)
		goto out;
	unhandled = malloc(n * sizeof *unhandled);
	if (unhandled) {
		offtrack_unfinished(o->track, topic, partition, unhandled, n);
		if (tr_hist_merge(h, unhandled, n) == 0)
			goto out;
	}
	/* Out of memory keeping the unhandled ones as holes: from the lowest of them up everything
	 * counts as new again, so it is taken again (some handled ones too, counted twice) rather
	 * than passed over as handled. */
	if (offtrack_committable(o->track, topic, partition) - 1 < h->top)
		h->top = offtrack_committable(o->track, topic, partition) - 1;
	ret = -1;
out:
	free(unhandled);
	offtrack_drop(o->track, topic, partition);
	return ret;
}

enum tr_offset_past tr_offsets_past(struct tr_offsets *o, const char *topic, int32_t partition,
                                    int64_t offset)
{
	struct tr_hist *h = tr_hist_find(o, topic, partition);
	size_t at;

	if (!h || offset > h->top)
		return TR_OFFSET_NEW;
	at = tr_search(h->holes, h->nholes, offset);
	if (at == h->nholes || h->holes[at] != offset)
		return TR_OFFSET_HANDLED;
	memmove(&h->holes[at], &h->holes[at + 1], (h->nholes - at - 1) * sizeof *h->holes);
	h->nholes--;
	return TR_OFFSET_RETAKE;
}
