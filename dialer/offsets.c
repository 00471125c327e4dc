/* offsets: per-partition in-order offset tracking (a ring of {offset, done} per partition). */
#include "offsets.h"

#include "fault.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct offsets_entry {
	int64_t offset;
	bool done;
};

/* Entries in arrival (= offset) order: ring[(head + i) % cap] for i < count. */
struct offsets_part {
	struct offsets_entry *ring;
	size_t head, count, cap;
};

struct offsets {
	struct offsets_part *parts;
	int32_t nparts;
};

struct offsets *offsets_new(void)
{
	return calloc(1, sizeof(struct offsets));
}

void offsets_destroy(struct offsets *o)
{
	if (!o)
		return;
	for (int32_t i = 0; i < o->nparts; i++)
		free(o->parts[i].ring);
	free(o->parts);
	free(o);
}

static struct offsets_part *offsets_part(const struct offsets *o, int32_t partition)
{
	if (partition < 0 || partition >= o->nparts)
		return NULL;
	return &o->parts[partition];
}

static struct offsets_entry *offsets_at(const struct offsets_part *p, size_t i)
{
	return &p->ring[(p->head + i) % p->cap];
}

static int offsets_grow(struct offsets_part *p)
{
	size_t cap = p->cap ? p->cap * 2 : 64;
	struct offsets_entry *ring = malloc(cap * sizeof *ring);

	if (!ring)
		return -1;
	for (size_t i = 0; i < p->count; i++)
		ring[i] = *offsets_at(p, i);
	free(p->ring);
	p->ring = ring;
	p->head = 0;
	p->cap = cap;
	return 0;
}

int offsets_add(struct offsets *o, int32_t partition, int64_t offset)
{
	struct offsets_part *p;

	if (partition < 0 || fault_track_refuse(NULL, partition, offset))
		return -1;
	if (partition >= o->nparts) {
		int32_t n = partition + 1;
		struct offsets_part *parts = realloc(o->parts, (size_t)n * sizeof *parts);

		if (!parts)
			return -1;
		memset(parts + o->nparts, 0, (size_t)(n - o->nparts) * sizeof *parts);
		o->parts = parts;
		o->nparts = n;
	}
	p = &o->parts[partition];
	if (p->count && offsets_at(p, p->count - 1)->offset >= offset)
		p->count = 0; /* re-fetched from an earlier position: start over */
	if (p->count == p->cap && offsets_grow(p))
		return -1;
	*offsets_at(p, p->count) = (struct offsets_entry){.offset = offset, .done = false};
	p->count++;
	return 0;
}

void offsets_done(struct offsets *o, int32_t partition, int64_t offset)
{
	struct offsets_part *p = offsets_part(o, partition);
	size_t lo = 0, hi;

	if (!p)
		return;
	hi = p->count;
	while (lo < hi) { /* offsets increase along the ring: binary search */
		size_t mid = lo + (hi - lo) / 2;
		struct offsets_entry *e = offsets_at(p, mid);

		if (e->offset == offset) {
			e->done = true;
			return;
		}
		if (e->offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
}

int64_t offsets_committable(const struct offsets *o, int32_t partition)
{
	const struct offsets_part *p = offsets_part(o, partition);
	int64_t next = -1;

	if (!p)
		return -1;
	for (size_t i = 0; i < p->count; i++) {
		const struct offsets_entry *e = offsets_at(p, i);

		if (!e->done)
			break;
		next = e->offset + 1;
	}
	return next;
}

void offsets_committed(struct offsets *o, int32_t partition, int64_t next_offset)
{
	struct offsets_part *p = offsets_part(o, partition);

	if (!p)
		return;
	while (p->count && offsets_at(p, 0)->offset < next_offset && offsets_at(p, 0)->done) {
		p->head = (p->head + 1) % p->cap;
		p->count--;
	}
}

void offsets_drop(struct offsets *o, int32_t partition)
{
	struct offsets_part *p = offsets_part(o, partition);

	if (p)
		p->count = 0;
}

size_t offsets_pending(const struct offsets *o, int32_t partition)
{
	const struct offsets_part *p = offsets_part(o, partition);

	return p ? p->count : 0;
}

int32_t offsets_npartitions(const struct offsets *o)
{
	return o->nparts;
}
