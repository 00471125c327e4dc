/* events_hub: ids, the ring of recent events, and the bounded per-subscriber queues. */
#include "events_hub.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One piece of the stream, shared by the ring and the queues: an event's SSE block, a ping or a
 * resync. Freed by the last reference. */
struct frame {
	atomic_uint refs;
	size_t len;
	char text[];
};

/* A fixed-capacity circular queue of frames. */
struct fq {
	struct frame **v;
	size_t cap, head, count, bytes;
};

struct events_sub {
	struct events_hub *hub;
	struct events_sub *prev, *next; /* on hub->subs */
	struct fq q;
	size_t offset;       /* bytes of the head frame already copied out */
	bool ended;          /* nothing more is queued after what is there (its resync, if any) */
	pthread_cond_t more; /* signalled when a frame is queued or the stream ends */
};

struct events_hub {
	pthread_mutex_t lock;
	struct events_hub_limits lim;
	uint64_t epoch;
	uint64_t next;  /* n of the next event */
	uint64_t floor; /* the oldest n a Last-Event-ID may name (raised by resync_all) */
	struct fq ring;
	struct events_sub *subs;
	size_t nsubs;
	bool closed;
	struct frame *ping;
	uint64_t dropped_slow, resumed, not_resumed;
};

static struct frame *frame_new(const char *text, size_t len)
{
	struct frame *f = malloc(sizeof *f + len + 1);

	if (f == NULL)
		return NULL;
	atomic_init(&f->refs, 1);
	f->len = len;
	memcpy(f->text, text, len);
	f->text[len] = '\0';
	return f;
}

static struct frame *frame_ref(struct frame *f)
{
	atomic_fetch_add(&f->refs, 1);
	return f;
}

static void frame_unref(struct frame *f)
{
	if (f != NULL && atomic_fetch_sub(&f->refs, 1) == 1)
		free(f);
}

/* "event: resync\ndata: {"reason":"..."}\n\n" (no id: it cannot be resumed from). */
static struct frame *frame_resync(const char *reason)
{
	char text[128];
	int n = snprintf(text, sizeof text, "event: resync\ndata: {\"reason\":\"%s\"}\n\n", reason);

	return n > 0 && (size_t)n < sizeof text ? frame_new(text, (size_t)n) : NULL;
}

static int fq_init(struct fq *q, size_t cap)
{
	q->v = calloc(cap, sizeof *q->v);
	q->cap = cap;
	q->head = q->count = q->bytes = 0;
	return q->v != NULL ? 0 : -1;
}

static struct frame *fq_at(const struct fq *q, size_t i)
{
	return q->v[(q->head + i) % q->cap];
}

/* Appends (taking the reference); the caller checked that there is room. */
static void fq_push(struct fq *q, struct frame *f)
{
	q->v[(q->head + q->count) % q->cap] = f;
	q->count++;
	q->bytes += f->len;
}

static struct frame *fq_pop(struct fq *q)
{
	struct frame *f = q->v[q->head];

	q->v[q->head] = NULL;
	q->head = (q->head + 1) % q->cap;
	q->count--;
	q->bytes -= f->len;
	return f;
}

/* Drops every frame from index keep on. */
static void fq_truncate(struct fq *q, size_t keep)
{
	while (q->count > keep) {
		size_t i = (q->head + q->count - 1) % q->cap;

		q->bytes -= q->v[i]->len;
		frame_unref(q->v[i]);
		q->v[i] = NULL;
		q->count--;
	}
}

static void fq_free(struct fq *q)
{
	fq_truncate(q, 0);
	free(q->v);
	q->v = NULL;
}

struct events_hub *events_hub_new(const struct events_hub_limits *lim, uint64_t epoch)
{
	struct events_hub *hub;
	static const char ping[] = ": ping\n\n";

	if (lim->max_subscribers == 0 || lim->ring_events == 0 || lim->queue_events < 2 ||
	    lim->queue_bytes == 0)
		return NULL;
	hub = calloc(1, sizeof *hub);
	if (hub == NULL)
		return NULL;
	hub->lim = *lim;
	hub->epoch = epoch;
	hub->next = 1;
	hub->floor = 1;
	hub->ping = frame_new(ping, sizeof ping - 1);
	if (hub->ping == NULL || fq_init(&hub->ring, lim->ring_events) != 0) {
		frame_unref(hub->ping);
		free(hub);
		return NULL;
	}
	pthread_mutex_init(&hub->lock, NULL);
	return hub;
}

static void sub_free(struct events_sub *sub)
{
	pthread_cond_destroy(&sub->more);
	fq_free(&sub->q);
	free(sub);
}

void events_hub_destroy(struct events_hub *hub)
{
	if (hub == NULL)
		return;
	while (hub->subs != NULL) {
		struct events_sub *sub = hub->subs;

		hub->subs = sub->next;
		sub_free(sub);
	}
	fq_free(&hub->ring);
	frame_unref(hub->ping);
	pthread_mutex_destroy(&hub->lock);
	free(hub);
}

/* Lock held. Wakes sub's reader. */
static void sub_wake(struct events_sub *sub)
{
	pthread_cond_signal(&sub->more);
}

/* Lock held. Ends sub's stream after what it has queued (resync NULL) or with a resync: the
 * frames not yet started are dropped, a frame half written is finished first. */
static void sub_end(struct events_sub *sub, const char *resync)
{
	struct frame *f;

	if (sub->ended)
		return;
	sub->ended = true;
	if (resync != NULL) {
		fq_truncate(&sub->q, sub->offset > 0 ? 1 : 0);
		f = frame_resync(resync);
		/* no memory for it: the stream just ends, and the client reconnects */
		if (f != NULL)
			fq_push(&sub->q, f); /* room: at most one frame is left and cap >= 2 */
	}
	sub_wake(sub);
}

/* Lock held. Queues f for sub (new reference) or, when it does not fit, ends sub as slow. */
static void sub_offer(struct events_hub *hub, struct events_sub *sub, struct frame *f)
{
	if (sub->ended)
		return;
	if (sub->q.count + 1 >= sub->q.cap || sub->q.bytes + f->len > hub->lim.queue_bytes) {
		hub->dropped_slow++;
		sub_end(sub, EVENTS_RESYNC_SLOW);
		return;
	}
	fq_push(&sub->q, frame_ref(f));
	sub_wake(sub);
}

/* Lock held. Keeps f in the ring (new reference), evicting the oldest beyond the limits. */
static void ring_keep(struct events_hub *hub, struct frame *f)
{
	struct fq *r = &hub->ring;

	while (r->count > 0 && (r->count == r->cap || r->bytes + f->len > hub->lim.ring_bytes))
		frame_unref(fq_pop(r));
	if (f->len <= hub->lim.ring_bytes)
		fq_push(r, frame_ref(f));
}

/* Lock held. */
static void hub_resync_all(struct events_hub *hub, const char *reason)
{
	for (struct events_sub *sub = hub->subs; sub != NULL; sub = sub->next)
		sub_end(sub, reason);
	fq_truncate(&hub->ring, 0);
	hub->ring.head = 0;
	hub->floor = hub->next;
}

int events_hub_publish(struct events_hub *hub, const char *type, const char *data)
{
	size_t cap = strlen(type) + strlen(data) + 80;
	char *text = malloc(cap);
	struct frame *f = NULL;
	int n, rc = -1;

	pthread_mutex_lock(&hub->lock);
	if (text != NULL) {
		n = snprintf(text, cap, "id: %" PRIu64 "-%" PRIu64 "\nevent: %s\ndata: %s\n\n",
		             hub->epoch, hub->next, type, data);
		if (n > 0 && (size_t)n < cap)
			f = frame_new(text, (size_t)n);
	}
	if (f == NULL) {
		/* the event is lost: nobody may go on as if they had seen everything */
		hub->next++;
		hub_resync_all(hub, EVENTS_RESYNC_SLOW);
		goto out;
	}
	hub->next++;
	ring_keep(hub, f);
	for (struct events_sub *sub = hub->subs; sub != NULL; sub = sub->next)
		sub_offer(hub, sub, f);
	rc = 0;
out:
	pthread_mutex_unlock(&hub->lock);
	frame_unref(f);
	free(text);
	return rc;
}

void events_hub_resync_all(struct events_hub *hub, const char *reason)
{
	pthread_mutex_lock(&hub->lock);
	hub_resync_all(hub, reason);
	pthread_mutex_unlock(&hub->lock);
}

void events_hub_ping(struct events_hub *hub)
{
	pthread_mutex_lock(&hub->lock);
	for (struct events_sub *sub = hub->subs; sub != NULL; sub = sub->next) {
		/* a ping never drops anyone: skipped when the queue holds anything */
		if (sub->ended || sub->q.count > 0)
			continue;
		fq_push(&sub->q, frame_ref(hub->ping));
		sub_wake(sub);
	}
	pthread_mutex_unlock(&hub->lock);
}

void events_hub_close(struct events_hub *hub)
{
	pthread_mutex_lock(&hub->lock);
	hub->closed = true;
	for (struct events_sub *sub = hub->subs; sub != NULL; sub = sub->next)
		sub_end(sub, NULL);
	pthread_mutex_unlock(&hub->lock);
}

int events_id_parse(const char *id, uint64_t *epoch, uint64_t *n)
{
	const char *dash = strchr(id, '-');
	char *end;

	if (dash == NULL || dash == id || dash[1] < '0' || dash[1] > '9' || id[0] < '0' ||
	    id[0] > '9')
		return -1;
	errno = 0;
	*epoch = strtoull(id, &end, 10);
	if (errno != 0 || end != dash)
		return -1;
	*n = strtoull(dash + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

/* Lock held. Queues for sub the ring's events after last_event_id; false when that id cannot be
 * resumed from (another process's, too old, from before a resync, or not yet given). */
static bool hub_resume(struct events_hub *hub, struct events_sub *sub, const char *last_event_id)
{
	const struct fq *r = &hub->ring;
	uint64_t epoch, n, oldest;

	if (events_id_parse(last_event_id, &epoch, &n) != 0 || epoch != hub->epoch ||
	    n < hub->floor || n >= hub->next)
		return false;
	/* the ring holds [oldest, next - 1]: n must be at most one before its first */
	oldest = r->count > 0 ? hub->next - r->count : hub->next;
	if (n + 1 < oldest)
		return false;
	for (size_t i = (size_t)(n + 1 - oldest); i < r->count; i++)
		sub_offer(hub, sub, fq_at(r, i));
	return true;
}

struct events_sub *events_hub_subscribe(struct events_hub *hub, const char *last_event_id)
{
	struct events_sub *sub = calloc(1, sizeof *sub);
	pthread_condattr_t attr;

	if (sub == NULL)
		return NULL;
	sub->hub = hub;
	if (fq_init(&sub->q, hub->lim.queue_events + 1) != 0) {
		free(sub);
		return NULL;
	}
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&sub->more, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_lock(&hub->lock);
	if (hub->closed || hub->nsubs >= hub->lim.max_subscribers) {
		pthread_mutex_unlock(&hub->lock);
		sub_free(sub);
		return NULL;
	}
	sub->next = hub->subs;
	if (hub->subs != NULL)
		hub->subs->prev = sub;
	hub->subs = sub;
	hub->nsubs++;
	if (last_event_id != NULL) {
		if (hub_resume(hub, sub, last_event_id)) {
			hub->resumed++;
		} else {
			hub->not_resumed++;
			sub_end(sub, EVENTS_RESYNC_RESUME);
		}
	}
	pthread_mutex_unlock(&hub->lock);
	return sub;
}

ssize_t events_sub_read(struct events_sub *sub, char *buf, size_t max, long wait_ms)
{
	struct events_hub *hub = sub->hub;
	struct timespec until;
	size_t n = 0;
	ssize_t rc;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&hub->lock);
	while (sub->q.count == 0 && !sub->ended &&
	       pthread_cond_timedwait(&sub->more, &hub->lock, &until) == 0)
		;
	while (n < max && sub->q.count > 0) {
		struct frame *f = fq_at(&sub->q, 0);
		size_t take = f->len - sub->offset;

		if (take > max - n)
			take = max - n;
		memcpy(buf + n, f->text + sub->offset, take);
		n += take;
		sub->offset += take;
		if (sub->offset == f->len) {
			frame_unref(fq_pop(&sub->q));
			sub->offset = 0;
		}
	}
	rc = n > 0 ? (ssize_t)n : sub->ended ? -1 : 0;
	pthread_mutex_unlock(&hub->lock);
	return rc;
}

void events_sub_close(struct events_sub *sub)
{
	struct events_hub *hub;

	if (sub == NULL)
		return;
	hub = sub->hub;
	pthread_mutex_lock(&hub->lock);
	if (sub->prev != NULL)
		sub->prev->next = sub->next;
	else
		hub->subs = sub->next;
	if (sub->next != NULL)
		sub->next->prev = sub->prev;
	hub->nsubs--;
	pthread_mutex_unlock(&hub->lock);
	sub_free(sub);
}

void events_hub_stats(struct events_hub *hub, struct events_hub_stats *out)
{
	pthread_mutex_lock(&hub->lock);
	out->subscribers = hub->nsubs;
	out->last_id = hub->next - 1;
	out->ring_events = hub->ring.count;
	out->ring_bytes = hub->ring.bytes;
	out->dropped_slow = hub->dropped_slow;
	out->resumed = hub->resumed;
	out->not_resumed = hub->not_resumed;
	pthread_mutex_unlock(&hub->lock);
}
