/* park: a map from call key to a FIFO of that call's waiting messages, with a due time each. */
#include "park.h"

#include "strmap.h"

#include <stdlib.h>
#include <string.h>

struct tr_queue {
	struct tr_vec msgs;
	int64_t due_ms;
};

struct tr_park {
	struct strmap *keys; /* key -> struct tr_queue */
	size_t count;
};

struct tr_park *tr_park_new(void)
{
	struct tr_park *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->keys = strmap_new();
	if (!p->keys) {
		free(p);
		return NULL;
	}
	return p;
}

static void tr_queue_free(struct tr_queue *q, bool free_msgs)
{
	if (!q)
		return;
	if (free_msgs)
		for (size_t i = 0; i < q->msgs.n; i++)
			tr_msg_free(q->msgs.v[i]);
	tr_vec_free(&q->msgs);
	free(q);
}

static void tr_park_free_one(void *opaque, const char *key, void *value)
{
	(void)opaque;
	(void)key;
	tr_queue_free(value, true);
}

void tr_park_destroy(struct tr_park *p)
{
	if (!p)
		return;
	strmap_each(p->keys, tr_park_free_one, NULL);
	strmap_destroy(p->keys);
	free(p);
}

bool tr_park_holds(const struct tr_park *p, const char *key)
{
	return strmap_get(p->keys, key) != NULL;
}

int tr_park_push(struct tr_park *p, const char *key, struct tr_msg *m, int64_t due_ms)
{
	struct tr_queue *q = strmap_get(p->keys, key);
	bool created = false;

	if (!q) {
		q = calloc(1, sizeof *q);
		if (!q)
			return -1;
		q->due_ms = due_ms;
		if (strmap_put(p->keys, key, q) < 0) {
			free(q);
			return -1;
		}
		created = true;
	}
	if (tr_vec_push(&q->msgs, m) < 0) {
		if (created)
			tr_queue_free(strmap_del(p->keys, key), false);
		return -1;
	}
	p->count++;
	return 0;
}

void tr_park_wake(struct tr_park *p, const char *key, int64_t due_ms)
{
	struct tr_queue *q = strmap_get(p->keys, key);

	if (q && due_ms < q->due_ms)
		q->due_ms = due_ms;
}

struct tr_due_walk {
	int64_t now_ms;
	char **names; /* copies: map keys die with their entries */
	size_t nnames, cap;
	bool oom;
};

static void tr_park_collect(void *opaque, const char *key, void *value)
{
	struct tr_due_walk *w = opaque;
	const struct tr_queue *q = value;

	if (w->oom || q->due_ms > w->now_ms)
		return;
	if (w->nnames == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		char **names = realloc(w->names, cap * sizeof *names);

		if (!names) {
			w->oom = true;
			return;
		}
		w->names = names;
		w->cap = cap;
	}
	if (!(w->names[w->nnames] = strdup(key))) {
		w->oom = true;
		return;
	}
	w->nnames++;
}

long tr_park_take_due(struct tr_park *p, int64_t now_ms, struct tr_vec *out)
{
	struct tr_due_walk w = {.now_ms = now_ms};
	size_t need = 0;
	long moved = -1;

	strmap_each(p->keys, tr_park_collect, &w);
	if (w.oom)
		goto out;
	for (size_t i = 0; i < w.nnames; i++)
		need += ((struct tr_queue *)strmap_get(p->keys, w.names[i]))->msgs.n;
	/* Reserve first, so that moving cannot fail half-way. */
	if (out->n + need > out->cap) {
		struct tr_msg **v = realloc(out->v, (out->n + need) * sizeof *v);

		if (!v)
			goto out;
		out->v = v;
		out->cap = out->n + need;
	}
	for (size_t i = 0; i < w.nnames; i++) {
		struct tr_queue *q = strmap_del(p->keys, w.names[i]);

		for (size_t j = 0; j < q->msgs.n; j++)
			out->v[out->n++] = q->msgs.v[j];
		p->count -= q->msgs.n;
		tr_queue_free(q, false);
	}
	moved = (long)need;
out:
	for (size_t i = 0; i < w.nnames; i++)
		free(w.names[i]);
	free(w.names);
	return moved;
}

size_t tr_park_count(const struct tr_park *p)
{
	return p->count;
}

static void tr_park_min_due(void *opaque, const char *key, void *value)
{
	int64_t *min = opaque;
	const struct tr_queue *q = value;

	(void)key;
	if (q->due_ms < *min)
		*min = q->due_ms;
}

int64_t tr_park_next_due(const struct tr_park *p)
{
	int64_t min = INT64_MAX;

	strmap_each(p->keys, tr_park_min_due, &min);
	return min;
}

struct tr_drop_walk {
	struct tr_park *park;
	const char *topic;
	int32_t partition;
	size_t dropped;
	char **empty; /* keys whose queue became empty */
	size_t nempty, cap;
};

static void tr_park_drop_one(void *opaque, const char *key, void *value)
{
	struct tr_drop_walk *w = opaque;
	struct tr_queue *q = value;
	size_t keep = 0;

	for (size_t i = 0; i < q->msgs.n; i++) {
		struct tr_msg *m = q->msgs.v[i];

		if (m->partition == w->partition && strcmp(m->topic, w->topic) == 0) {
			tr_msg_free(m);
			w->dropped++;
		} else {
			q->msgs.v[keep++] = m;
		}
	}
	q->msgs.n = keep;
	if (keep == 0 && w->nempty < w->cap)
		w->empty[w->nempty++] = strdup(key);
}

size_t tr_park_drop_partition(struct tr_park *p, const char *topic, int32_t partition)
{
	struct tr_drop_walk w = {.park = p, .topic = topic, .partition = partition};

	w.cap = strmap_count(p->keys);
	w.empty = calloc(w.cap + 1, sizeof *w.empty);
	if (!w.empty)
		w.cap = 0;
	strmap_each(p->keys, tr_park_drop_one, &w);
	for (size_t i = 0; i < w.nempty; i++) {
		if (w.empty[i])
			tr_queue_free(strmap_del(p->keys, w.empty[i]), false);
		free(w.empty[i]);
	}
	free(w.empty);
	p->count -= w.dropped;
	return w.dropped;
}

struct tr_each_walk {
	void (*fn)(void *opaque, struct tr_msg *m);
	void *opaque;
};

static void tr_park_each_queue(void *opaque, const char *key, void *value)
{
	struct tr_each_walk *w = opaque;
	struct tr_queue *q = value;

	(void)key;
	for (size_t i = 0; i < q->msgs.n; i++)
		w->fn(w->opaque, q->msgs.v[i]);
}

void tr_park_each(const struct tr_park *p, void (*fn)(void *opaque, struct tr_msg *m), void *opaque)
{
	struct tr_each_walk w = {fn, opaque};

	strmap_each(p->keys, tr_park_each_queue, &w);
}
