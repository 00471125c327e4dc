/* history: per partition, the top offset earlier assignments took and their holes (sorted). */
#include "history.h"

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

struct tr_history {
	struct tr_hist *parts;
	size_t nparts;
};

struct tr_history *tr_history_new(void)
{
	return calloc(1, sizeof(struct tr_history));
}

void tr_history_destroy(struct tr_history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nparts; i++) {
		free(h->parts[i].topic);
		free(h->parts[i].holes);
	}
	free(h->parts);
	free(h);
}

static struct tr_hist *tr_hist_find(const struct tr_history *h, const char *topic,
                                    int32_t partition)
{
	for (size_t i = 0; i < h->nparts; i++)
		if (h->parts[i].partition == partition && strcmp(h->parts[i].topic, topic) == 0)
			return &h->parts[i];
	return NULL;
}

static struct tr_hist *tr_hist_get(struct tr_history *h, const char *topic, int32_t partition)
{
	struct tr_hist *p = tr_hist_find(h, topic, partition), *grown;
	char *name;

	if (p)
		return p;
	grown = realloc(h->parts, (h->nparts + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	h->parts = grown;
	name = strdup(topic);
	if (!name)
		return NULL;
	p = &h->parts[h->nparts++];
	*p = (struct tr_hist){.topic = name, .partition = partition, .top = -1};
	return p;
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

/* Merges the n sorted offsets of add into p's holes (disjoint: a hole taken again left the
 * holes). Returns 0 or -1 (out of memory: nothing changed). */
static int tr_hist_merge(struct tr_hist *p, const int64_t *add, size_t n)
{
	int64_t *merged = malloc((p->nholes + n) * sizeof *merged);
	size_t i = 0, j = 0, k = 0;

	if (!merged)
		return -1;
	while (i < p->nholes || j < n) {
		if (j == n || (i < p->nholes && p->holes[i] < add[j]))
			merged[k++] = p->holes[i++];
		else
			merged[k++] = add[j++];
	}
	free(p->holes);
	p->holes = merged;
	p->nholes = k;
	return 0;
}

int tr_history_keep(struct tr_history *h, const struct offtrack *t, const char *topic,
                    int32_t partition)
{
	size_t n = offtrack_pending(t, topic, partition);
	int64_t last, ts, *unhandled = NULL;
	struct tr_hist *p;

	if (!offtrack_last(t, topic, partition, &last, &ts))
		return 0; /* nothing taken in this assignment: nothing to remember */
	p = tr_hist_get(h, topic, partition);
	if (!p)
		return -1; /* no history: tr_history_past says new, all of it is taken again */
	if (last > p->top)
		p->top = last;
	if (n == 0)
		return 0;
	unhandled = malloc(n * sizeof *unhandled);
	if (unhandled) {
		offtrack_unfinished(t, topic, partition, unhandled, n);
		if (tr_hist_merge(p, unhandled, n) == 0) {
			free(unhandled);
			return 0;
		}
		free(unhandled);
	}
	/* Out of memory keeping the unhandled ones as holes: from the lowest of them up everything
	 * counts as new again, so it is taken again (some handled ones too, counted twice) rather
	 * than passed over as handled. */
	if (offtrack_committable(t, topic, partition) - 1 < p->top)
		p->top = offtrack_committable(t, topic, partition) - 1;
	return -1;
}

enum tr_past tr_history_past(struct tr_history *h, const char *topic, int32_t partition,
                             int64_t offset)
{
	struct tr_hist *p = tr_hist_find(h, topic, partition);
	size_t at;

	if (!p || offset > p->top)
		return TR_PAST_NEW;
	at = tr_search(p->holes, p->nholes, offset);
	if (at == p->nholes || p->holes[at] != offset)
		return TR_PAST_HANDLED;
	memmove(&p->holes[at], &p->holes[at + 1], (p->nholes - at - 1) * sizeof *p->holes);
	p->nholes--;
	return TR_PAST_RETAKE;
}
