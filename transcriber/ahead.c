/* ahead: what the consumer reads while a round's statements run on the server, kept in arrival
 * order (messages and the rebalances met between them) until the round is over. */
#include "ahead.h"

#include <stdlib.h>
#include <string.h>

struct tr_ahead_item {
	struct tr_msg *m;                       /* a message, or */
	rd_kafka_topic_partition_list_t *parts; /* a rebalance (a copy) */
	bool assigned;
};

struct tr_ahead {
	struct tr_ahead_item *items;
	size_t n, cap;
	size_t nmsgs;
};

struct tr_ahead *tr_ahead_new(void)
{
	return calloc(1, sizeof(struct tr_ahead));
}

static void tr_ahead_item_free(struct tr_ahead_item *it)
{
	tr_msg_free(it->m);
	if (it->parts)
		rd_kafka_topic_partition_list_destroy(it->parts);
}

void tr_ahead_destroy(struct tr_ahead *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		tr_ahead_item_free(&a->items[i]);
	free(a->items);
	free(a);
}

static int tr_ahead_push(struct tr_ahead *a, struct tr_ahead_item it)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct tr_ahead_item *items = realloc(a->items, cap * sizeof *items);

		if (!items)
			return -1;
		a->items = items;
		a->cap = cap;
	}
	a->items[a->n++] = it;
	return 0;
}

int tr_ahead_push_msg(struct tr_ahead *a, struct tr_msg *m)
{
	if (tr_ahead_push(a, (struct tr_ahead_item){.m = m}) < 0) {
		tr_msg_free(m);
		return -1;
	}
	a->nmsgs++;
	return 0;
}

int tr_ahead_push_rebalance(struct tr_ahead *a, bool assigned,
                            const rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *copy = rd_kafka_topic_partition_list_copy(parts);

	if (!copy)
		return -1;
	if (tr_ahead_push(a, (struct tr_ahead_item){.parts = copy, .assigned = assigned}) < 0) {
		rd_kafka_topic_partition_list_destroy(copy);
		return -1;
	}
	return 0;
}

size_t tr_ahead_messages(const struct tr_ahead *a)
{
	return a->nmsgs;
}

void tr_ahead_flush(struct tr_ahead *a, const struct tr_ahead_sink *sink)
{
	/* Taken out first: the sink may be a rebalance handler that pushes again. */
	struct tr_ahead_item *items = a->items;
	size_t n = a->n;

	a->items = NULL;
	a->n = a->cap = a->nmsgs = 0;
	for (size_t i = 0; i < n; i++) {
		struct tr_ahead_item *it = &items[i];

		if (it->m && sink->msg) {
			sink->msg(sink->opaque, it->m);
			it->m = NULL;
		} else if (it->parts && sink->rebalance) {
			sink->rebalance(sink->opaque, it->assigned, it->parts);
		}
		tr_ahead_item_free(it);
	}
	free(items);
}
