/* kbus_refill: keeps a small pre-fetch queue filled while the consumer works through a backlog.
 *
 * With queued.max.messages.kbytes set small (kbus_config.fetch_queue_kb), librdkafka 2.0.2 stops
 * fetching every partition whose queue is full and decides again only when its broker thread
 * wakes up: on an operation, on network input, or after at most a second (librdkafka #2879;
 * fetch.queue.backoff.ms, from 2.1, makes that wait a setting). Draining a backlog, the queue
 * then empties in a fraction of that second and the consumer starves for the rest: measured on
 * bench/transcriber with a 1 MiB queue, 10.9k rows/s instead of 38k.
 *
 * This thread wakes the broker threads instead: every KBUS_REFILL_EVERY_MS, when fewer than
 * `low` messages are queued while the partitions' ends (as of their last fetch) lie beyond what
 * was fetched, it asks the leaders for their partitions' end offsets (one ListOffsets request per
 * leader, rd_kafka_offsets_for_times with OFFSET_END). The answer wakes each leader's broker
 * thread, which decides again and fetches the partitions whose queue has room. Nothing else is
 * changed: the answer is not used, and an idle consumer (nothing left to fetch) asks nothing. */
#include "kbus_int.h"

#include "log.h"
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define KBUS_REFILL_EVERY_MS 10
#define KBUS_REFILL_WAIT_MS  1000 /* longest wait for the leaders' answers */

struct kbus_refill {
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue; /* the consumer queue (a reference of ours) */
	size_t low;
	pthread_t thread;
	atomic_bool stop;
	atomic_ullong wakes;
	struct metric *wakes_total; /* may be NULL */
};

/* True when the broker has messages of the assigned partitions that were not fetched yet: the
 * high watermarks of the last fetch responses exceed the positions by more than is queued. The
 * assignment list is left in *parts for the wake-up (caller destroys), NULL when none. */
static bool kbus_refill_behind(struct kbus_refill *r, size_t queued,
                               rd_kafka_topic_partition_list_t **parts)
{
	int64_t ahead = 0;

	*parts = NULL;
	if (rd_kafka_assignment(r->rk, parts) || !*parts || (*parts)->cnt == 0 ||
	    rd_kafka_position(r->rk, *parts))
		return false;
	for (int i = 0; i < (*parts)->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &(*parts)->elems[i];
		int64_t lo, hi;

		if (tp->offset >= 0 &&
		    rd_kafka_get_watermark_offsets(r->rk, tp->topic, tp->partition, &lo, &hi) ==
		        RD_KAFKA_RESP_ERR_NO_ERROR &&
		    hi > tp->offset)
			ahead += hi - tp->offset;
		tp->offset = RD_KAFKA_OFFSET_END; /* what the wake-up asks for */
	}
	return ahead > (int64_t)queued;
}

static void *kbus_refill_run(void *arg)
{
	struct kbus_refill *r = arg;
	struct timespec every = {0, KBUS_REFILL_EVERY_MS * 1000000L};

	while (!atomic_load(&r->stop)) {
		size_t queued = rd_kafka_queue_length(r->queue);
		rd_kafka_topic_partition_list_t *parts = NULL;

		if (queued < r->low && kbus_refill_behind(r, queued, &parts)) {
			/* The answer itself does not matter (errors included): its arrival wakes
			 * the leaders' broker threads. */
			(void)rd_kafka_offsets_for_times(r->rk, parts, KBUS_REFILL_WAIT_MS);
			atomic_fetch_add(&r->wakes, 1);
			if (r->wakes_total)
				metric_inc(r->wakes_total);
		}
		if (parts)
			rd_kafka_topic_partition_list_destroy(parts);
		nanosleep(&every, NULL);
	}
	return NULL;
}

struct kbus_refill *kbus_refill_start(rd_kafka_t *rk, size_t low, struct metrics *metrics)
{
	struct kbus_refill *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->rk = rk;
	r->low = low;
	if (metrics)
		r->wakes_total = metrics_counter(
		    metrics, "kbus_prefetch_wakeups_total",
		    "Times the consumer asked its partitions' leaders for their ends to wake their "
		    "fetchers (a backlog with a small pre-fetch queue)",
		    NULL);
	r->queue = rd_kafka_queue_get_consumer(rk);
	if (!r->queue || pthread_create(&r->thread, NULL, kbus_refill_run, r) != 0) {
		if (r->queue)
			rd_kafka_queue_destroy(r->queue);
		free(r);
		return NULL;
	}
	return r;
}

void kbus_refill_stop(struct kbus_refill *r)
{
	if (!r)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	log_debug("kafka pre-fetch refills", LOGI("wake_ups", (long long)atomic_load(&r->wakes)));
	rd_kafka_queue_destroy(r->queue);
	free(r);
}
