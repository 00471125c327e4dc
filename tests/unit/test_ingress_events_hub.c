/* test_ingress_events_hub: the live events' hub: ids, the frames written, the bounded queue
 * (a slow subscriber is dropped with resync, a fast one is not), the resume ring, resync_all,
 * pings, the subscriber limit, close, and a reader woken by a publish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "events_hub.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EPOCH 1700000000000ULL

static const struct events_hub_limits lim_default = {
    .max_subscribers = 4,
    .ring_events = 8,
    .ring_bytes = 1 << 20,
    .queue_events = 4,
    .queue_bytes = 1 << 20,
};

/* Everything sub has queued now (no waiting), as a string; *ended when the stream is over. */
static void drain(struct events_sub *sub, char *out, size_t size, bool *ended)
{
	size_t n = 0;
	ssize_t r;

	*ended = false;
	while ((r = events_sub_read(sub, out + n, size - 1 - n, 0)) > 0)
		n += (size_t)r;
	if (r < 0)
		*ended = true;
	out[n] = '\0';
}

static void publish(struct events_hub *hub, const char *type, const char *data)
{
	assert_int_equal(events_hub_publish(hub, type, data), 0);
}

static void test_events_id_parse(void **state)
{
	static const struct {
		const char *id;
		int rc;
		uint64_t epoch, n;
	} cases[] = {
	    {"1-1", 0, 1, 1},
	    {"1700000000000-42", 0, 1700000000000ULL, 42},
	    {"0-0", 0, 0, 0},
	    {"", -1, 0, 0},
	    {"-", -1, 0, 0},
	    {"1-", -1, 0, 0},
	    {"-1", -1, 0, 0},
	    {"a-1", -1, 0, 0},
	    {"1-a", -1, 0, 0},
	    {"1-1x", -1, 0, 0},
	    {"1--1", -1, 0, 0},
	    {"+1-1", -1, 0, 0},
	    {"1- 1", -1, 0, 0},
	    {" 1-1", -1, 0, 0},
	    {"1-1-1", -1, 0, 0},
	    {"99999999999999999999999-1", -1, 0, 0},
	    {"1-99999999999999999999999", -1, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t epoch = 0, n = 0;
		int rc = events_id_parse(cases[i].id, &epoch, &n);

		if (rc != cases[i].rc)
			fail_msg("'%s': got %d, want %d", cases[i].id, rc, cases[i].rc);
		if (rc == 0 && (epoch != cases[i].epoch || n != cases[i].n))
			fail_msg("'%s': got %" PRIu64 "-%" PRIu64, cases[i].id, epoch, n);
	}
}

static void test_events_hub_frames(void **state)
{
	struct events_hub *hub = events_hub_new(&lim_default, EPOCH);
	struct events_sub *sub;
	char buf[4096];
	bool ended;

	(void)state;
	assert_non_null(hub);
	sub = events_hub_subscribe(hub, NULL);
	assert_non_null(sub);
	drain(sub, buf, sizeof buf, &ended);
	assert_string_equal(buf, "");
	assert_false(ended);
	publish(hub, "call.created", "{\"call_sid\":\"EL_1\"}");
	publish(hub, "call.dialled", "{\"call_sid\":\"EL_1\",\"conversation_id\":\"c\"}");
	drain(sub, buf, sizeof buf, &ended);
	assert_string_equal(buf, "id: 1700000000000-1\nevent: call.created\n"
	                         "data: {\"call_sid\":\"EL_1\"}\n\n"
	                         "id: 1700000000000-2\nevent: call.dialled\n"
	                         "data: {\"call_sid\":\"EL_1\",\"conversation_id\":\"c\"}\n\n");
	assert_false(ended);
	/* a small buffer gets the stream in pieces, nothing lost */
	publish(hub, "call.completed", "{\"call_sid\":\"EL_1\"}");
	{
		char piece[8], all[256] = "";
		ssize_t r;

		while ((r = events_sub_read(sub, piece, sizeof piece - 1, 0)) > 0) {
			piece[r] = '\0';
			strcat(all, piece);
		}
		assert_string_equal(all, "id: 1700000000000-3\nevent: call.completed\n"
		                         "data: {\"call_sid\":\"EL_1\"}\n\n");
	}
	events_sub_close(sub);
	events_hub_destroy(hub);
}

static void test_events_hub_slow_dropped(void **state)
{
	struct events_hub *hub = events_hub_new(&lim_default, EPOCH);
	struct events_sub *slow = events_hub_subscribe(hub, NULL);
	struct events_sub *fast = events_hub_subscribe(hub, NULL);
	struct events_hub_stats st;
	char buf[8192], want[64];
	bool ended;

	(void)state;
	assert_non_null(slow);
	assert_non_null(fast);
	for (int i = 1; i <= 10; i++) {
		char data[32];

		snprintf(data, sizeof data, "{\"i\":%d}", i);
		publish(hub, "line.stored", data);
		drain(fast, buf, sizeof buf, &ended); /* fast reads each one at once */
		snprintf(want, sizeof want, "id: %llu-%d\nevent: line.stored\ndata: {\"i\":%d}\n\n",
		         (unsigned long long)EPOCH, i, i);
		assert_string_equal(buf, want);
		assert_false(ended);
	}
	/* slow read nothing: at the 5th event its queue (4) overflowed; what it had is dropped
	 * and its stream is the resync alone */
	drain(slow, buf, sizeof buf, &ended);
	assert_string_equal(buf, "event: resync\ndata: {\"reason\":\"slow_consumer\"}\n\n");
	assert_true(ended);
	events_hub_stats(hub, &st);
	assert_int_equal(st.dropped_slow, 1);
	assert_int_equal(st.subscribers, 2); /* until its connection closes */
	assert_int_equal(st.last_id, 10);
	events_sub_close(slow);
	events_sub_close(fast);
	events_hub_destroy(hub);
}

/* A frame half written when the queue overflows is finished before the resync: the client
 * never sees a torn event. Also the byte bound. */
static void test_events_hub_slow_half_frame(void **state)
{
	struct events_hub_limits lim = lim_default;
	struct events_hub *hub;
	struct events_sub *sub;
	char buf[4096], piece[10];
	bool ended;

	(void)state;
	lim.queue_events = 100;
	lim.queue_bytes = 200; /* about three of the events below */
	hub = events_hub_new(&lim, 7);
	sub = events_hub_subscribe(hub, NULL);
	publish(hub, "t", "{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
	assert_int_equal(events_sub_read(sub, piece, sizeof piece, 0), (ssize_t)sizeof piece);
	for (int i = 0; i < 5; i++)
		publish(hub, "t", "{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
	drain(sub, buf, sizeof buf, &ended);
	assert_true(ended);
	assert_string_equal(buf,
	                    "ent: t\ndata: {\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n\n"
	                    "event: resync\ndata: {\"reason\":\"slow_consumer\"}\n\n");
	assert_memory_equal(piece, "id: 7-1\nev", sizeof piece);
	events_sub_close(sub);
	events_hub_destroy(hub);
}

static void test_events_hub_resume(void **state)
{
	struct events_hub_limits lim = lim_default;
	struct events_hub *hub;
	struct events_sub *sub;
	char buf[4096];
	bool ended;
	static const char cannot[] = "event: resync\ndata: {\"reason\":\"cannot_resume\"}\n\n";
	static const char *const refused[] = {
	    "1700000000000-2", /* evicted from the ring (it holds 4..6 by then) */
	    "1700000000001-4", /* another process's */
	    "1700000000000-7", /* not given yet */
	    "garbage",         "1700000000000-0",
	};

	(void)state;
	lim.ring_events = 3;
	lim.queue_events = 10;
	hub = events_hub_new(&lim, EPOCH);
	for (int i = 1; i <= 5; i++)
		publish(hub, "e", "{}");
	/* 2 is just before the ring's first (3): resumes with 3, 4, 5 */
	sub = events_hub_subscribe(hub, "1700000000000-2");
	drain(sub, buf, sizeof buf, &ended);
	assert_false(ended);
	assert_string_equal(buf, "id: 1700000000000-3\nevent: e\ndata: {}\n\n"
	                         "id: 1700000000000-4\nevent: e\ndata: {}\n\n"
	                         "id: 1700000000000-5\nevent: e\ndata: {}\n\n");
	events_sub_close(sub);
	/* the newest: nothing to replay, live from here */
	sub = events_hub_subscribe(hub, "1700000000000-5");
	drain(sub, buf, sizeof buf, &ended);
	assert_string_equal(buf, "");
	assert_false(ended);
	publish(hub, "e", "{}");
	drain(sub, buf, sizeof buf, &ended);
	assert_string_equal(buf, "id: 1700000000000-6\nevent: e\ndata: {}\n\n");
	events_sub_close(sub);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		sub = events_hub_subscribe(hub, refused[i]);
		assert_non_null(sub);
		drain(sub, buf, sizeof buf, &ended);
		if (strcmp(buf, cannot) != 0 || !ended)
			fail_msg("Last-Event-ID %s: got '%s'", refused[i], buf);
		events_sub_close(sub);
	}
	events_hub_destroy(hub);
}

/* A resume that would overflow the queue drops the subscriber at once. */
static void test_events_hub_resume_overflow(void **state)
{
	struct events_hub_limits lim = lim_default;
	struct events_hub *hub;
	struct events_sub *sub;
	char buf[4096];
	bool ended;

	(void)state;
	lim.ring_events = 20;
	lim.queue_events = 3;
	hub = events_hub_new(&lim, EPOCH);
	for (int i = 1; i <= 10; i++)
		publish(hub, "e", "{}");
	sub = events_hub_subscribe(hub, "1700000000000-1");
	drain(sub, buf, sizeof buf, &ended);
	assert_true(ended);
	assert_string_equal(buf, "event: resync\ndata: {\"reason\":\"slow_consumer\"}\n\n");
	events_sub_close(sub);
	events_hub_destroy(hub);
}

static void test_events_hub_ring_bytes(void **state)
{
	struct events_hub_limits lim = lim_default;
	struct events_hub_stats st;
	struct events_hub *hub;

	(void)state;
	lim.ring_events = 1000;
	lim.ring_bytes = 200;
	hub = events_hub_new(&lim, 1);
	for (int i = 0; i < 50; i++)
		publish(hub, "e", "{\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}");
	events_hub_stats(hub, &st);
	assert_true(st.ring_bytes <= 200);
	assert_true(st.ring_events >= 3 && st.ring_events <= 5);
	/* an event larger than the ring empties it: no resume across it */
	{
		char big[400];
		struct events_sub *sub;
		char buf[1024];
		bool ended;

		memset(big, 'x', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		publish(hub, "big", big);
		events_hub_stats(hub, &st);
		assert_int_equal(st.ring_events, 0);
		sub = events_hub_subscribe(hub, "1-50");
		drain(sub, buf, sizeof buf, &ended);
		assert_true(ended);
		events_sub_close(sub);
		sub = events_hub_subscribe(hub, "1-51");
		drain(sub, buf, sizeof buf, &ended);
		assert_false(ended);
		events_sub_close(sub);
	}
	events_hub_destroy(hub);
}

static void test_events_hub_resync_all(void **state)
{
	struct events_hub *hub = events_hub_new(&lim_default, EPOCH);
	struct events_sub *a, *b, *c;
	char buf[4096];
	bool ended;

	(void)state;
	a = events_hub_subscribe(hub, NULL);
	b = events_hub_subscribe(hub, NULL);
	publish(hub, "e", "{}");
	drain(a, buf, sizeof buf, &ended); /* a is up to date, b has one queued */
	events_hub_resync_all(hub, EVENTS_RESYNC_LISTENER);
	drain(a, buf, sizeof buf, &ended);
	assert_string_equal(buf, "event: resync\ndata: {\"reason\":\"listener_lost\"}\n\n");
	assert_true(ended);
	drain(b, buf, sizeof buf, &ended);
	assert_string_equal(buf, "event: resync\ndata: {\"reason\":\"listener_lost\"}\n\n");
	assert_true(ended);
	/* events after an ended stream are not queued for it */
	publish(hub, "e", "{}");
	drain(a, buf, sizeof buf, &ended);
	assert_string_equal(buf, "");
	assert_true(ended);
	events_sub_close(a);
	events_sub_close(b);
	/* the id seen before the loss cannot resume (events may be missing); one after can */
	c = events_hub_subscribe(hub, "1700000000000-1");
	drain(c, buf, sizeof buf, &ended);
	assert_true(ended);
	events_sub_close(c);
	c = events_hub_subscribe(hub, "1700000000000-2");
	drain(c, buf, sizeof buf, &ended);
	assert_false(ended);
	assert_string_equal(buf, "");
	events_sub_close(c);
	events_hub_destroy(hub);
}

static void test_events_hub_ping_limit_close(void **state)
{
	struct events_hub *hub = events_hub_new(&lim_default, EPOCH);
	struct events_sub *subs[4];
	char buf[4096];
	bool ended;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_non_null(subs[i] = events_hub_subscribe(hub, NULL));
	assert_null(events_hub_subscribe(hub, NULL)); /* max_subscribers */
	events_sub_close(subs[3]);
	subs[3] = events_hub_subscribe(hub, NULL);
	assert_non_null(subs[3]);
	publish(hub, "e", "{}"); /* subs[0] has an event waiting: no ping added */
	for (int i = 1; i < 4; i++)
		drain(subs[i], buf, sizeof buf, &ended);
	events_hub_ping(hub);
	drain(subs[1], buf, sizeof buf, &ended);
	assert_string_equal(buf, ": ping\n\n");
	drain(subs[0], buf, sizeof buf, &ended);
	assert_string_equal(buf, "id: 1700000000000-1\nevent: e\ndata: {}\n\n");
	events_hub_close(hub);
	assert_null(events_hub_subscribe(hub, NULL));
	drain(subs[2], buf, sizeof buf, &ended);
	assert_string_equal(buf, ": ping\n\n"); /* what was queued is still written ... */
	assert_true(ended);                     /* ... then the stream ends, no resync */
	for (int i = 0; i < 4; i++)
		events_sub_close(subs[i]);
	events_hub_destroy(hub);
}

static void *publish_later(void *arg)
{
	usleep(100 * 1000);
	if (events_hub_publish(arg, "e", "{}") != 0)
		return arg;
	return NULL;
}

/* A reader waiting for events is woken by the publish, long before its wait is over. */
static void test_events_hub_wakes_reader(void **state)
{
	struct events_hub *hub = events_hub_new(&lim_default, EPOCH);
	struct events_sub *sub = events_hub_subscribe(hub, NULL);
	struct timespec t0, t1;
	pthread_t th;
	char buf[256];
	ssize_t r;
	void *res;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(events_sub_read(sub, buf, sizeof buf, 150), 0); /* times out */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 140);
	assert_int_equal(pthread_create(&th, NULL, publish_later, hub), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = events_sub_read(sub, buf, sizeof buf, 10000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(r > 0);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 5000);
	pthread_join(th, &res);
	assert_null(res);
	events_sub_close(sub);
	events_hub_destroy(hub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_events_id_parse),
	    cmocka_unit_test(test_events_hub_frames),
	    cmocka_unit_test(test_events_hub_slow_dropped),
	    cmocka_unit_test(test_events_hub_slow_half_frame),
	    cmocka_unit_test(test_events_hub_resume),
	    cmocka_unit_test(test_events_hub_resume_overflow),
	    cmocka_unit_test(test_events_hub_ring_bytes),
	    cmocka_unit_test(test_events_hub_resync_all),
	    cmocka_unit_test(test_events_hub_ping_limit_close),
	    cmocka_unit_test(test_events_hub_wakes_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
