/* wait: requests waiting for the broker or the database. The connection is suspended (no thread
 * held), the callback resumes it, and a deadline timer answers 503 for any wait that outlives
 * INGRESS_DELIVERY_TIMEOUT_MS, whatever librdkafka or libpq are doing. */
#include "calls_read.h"
#include "config.h"
#include "log.h"
#include "server_int.h"
#include "timeutil.h"

#include <stdlib.h>
#include <unistd.h>

#define WAIT_TICK_US    20000 /* the timer's resolution */
#define WAIT_EDGE_TICKS 5     /* connection deadlines: checked every 100 ms */

static void wait_list_add(struct req *rq)
{
	struct server *s = rq->srv;

	pthread_mutex_lock(&s->wait_lock);
	rq->wait_prev = NULL;
	rq->wait_next = s->wait_head;
	if (s->wait_head != NULL)
		s->wait_head->wait_prev = rq;
	s->wait_head = rq;
	rq->on_wait_list = true;
	pthread_mutex_unlock(&s->wait_lock);
}

/* Unlinks rq; the caller holds wait_lock. */
static void wait_list_unlink_locked(struct server *s, struct req *rq)
{
	if (!rq->on_wait_list)
		return;
	if (rq->wait_prev != NULL)
		rq->wait_prev->wait_next = rq->wait_next;
	else
		s->wait_head = rq->wait_next;
	if (rq->wait_next != NULL)
		rq->wait_next->wait_prev = rq->wait_prev;
	rq->wait_prev = rq->wait_next = NULL;
	rq->on_wait_list = false;
}

static void wait_list_remove(struct req *rq)
{
	pthread_mutex_lock(&rq->srv->wait_lock);
	wait_list_unlink_locked(rq->srv, rq);
	pthread_mutex_unlock(&rq->srv->wait_lock);
}

/* Records the outcome once (later ones are dropped; body stolen, may be NULL) and resumes the
 * connection if it is suspended. Any thread. */
static void wait_finish(struct req *rq, unsigned status, json_t *body)
{
	bool resume;

	pthread_mutex_lock(&rq->lock);
	if (rq->done) {
		pthread_mutex_unlock(&rq->lock);
		json_decref(body);
		return;
	}
	rq->done = true;
	rq->done_status = status;
	rq->done_body = body;
	resume = rq->suspended;
	rq->suspended = false;
	pthread_mutex_unlock(&rq->lock);
	if (resume) {
		atomic_fetch_sub(&rq->srv->suspended, 1);
		MHD_resume_connection(rq->conn);
	}
}

enum MHD_Result server_answer_done(struct req *rq)
{
	json_t *body;
	unsigned status;

	pthread_mutex_lock(&rq->lock);
	body = rq->done_body;
	rq->done_body = NULL;
	status = rq->done_status;
	pthread_mutex_unlock(&rq->lock);
	if (body != NULL || status < 300) { /* success without a body (OOM building it): {} */
		enum MHD_Result ret = server_reply(rq, status, body, NULL);

		json_decref(body);
		return ret;
	}
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		return rq->route == ROUTE_CALLS_READ
		           ? server_reply_error(rq, status, "database unavailable, retry later",
		                                "database_unavailable")
		           : server_reply_error(rq, status, "broker unavailable, retry later",
		                                "broker_unavailable");
	if (status == MHD_HTTP_CONTENT_TOO_LARGE)
		return server_reply_error(rq, status, "message too large for the broker",
		                          "message_too_large");
	return server_reply_error(rq, status, "no call with this call_sid", NULL);
}

/* Suspends the connection until wait_finish, unless that already happened. */
static enum MHD_Result wait_suspend(struct req *rq)
{
	pthread_mutex_lock(&rq->lock);
	if (rq->done) {
		pthread_mutex_unlock(&rq->lock);
		return server_answer_done(rq);
	}
	rq->suspended = true;
	atomic_fetch_add(&rq->srv->suspended, 1);
	MHD_suspend_connection(rq->conn);
	pthread_mutex_unlock(&rq->lock);
	return MHD_YES;
}

/* Registers a wait: a reference for the callback and a place on the deadline list. */
static void wait_begin(struct req *rq)
{
	rq->waiting = true;
	rq->deadline_ms = time_mono_ms() + rq->srv->conf->delivery_timeout_ms;
	req_ref(rq);
	wait_list_add(rq);
}

/* Undoes wait_begin when the publish or lookup could not even start. */
static void wait_abort(struct req *rq)
{
	wait_list_remove(rq);
	rq->waiting = false;
	req_unref(rq);
}

static void wait_published(void *opaque, enum publish_result result)
{
	struct req *rq = opaque;
	json_t *ok_body;

	wait_list_remove(rq);
	switch (result) {
	case PUBLISH_OK:
		pthread_mutex_lock(&rq->lock);
		ok_body = rq->ok_body;
		rq->ok_body = NULL;
		pthread_mutex_unlock(&rq->lock);
		wait_finish(rq, rq->ok_status, ok_body);
		break;
	case PUBLISH_TOO_LARGE:
		wait_finish(rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL);
		break;
	case PUBLISH_UNAVAILABLE:
	default:
		wait_finish(rq, MHD_HTTP_SERVICE_UNAVAILABLE, NULL);
		break;
	}
	req_unref(rq);
}

enum MHD_Result server_publish(struct req *rq, enum publish_topic topic,
                               const struct publish_msg *msgs, size_t n, unsigned ok_status,
                               json_t *ok_body)
{
	rq->ok_status = ok_status;
	rq->ok_body = ok_body;
	wait_begin(rq);
	if (publish_batch(rq->srv->pub, topic, msgs, n, wait_published, rq) != 0) {
		wait_abort(rq);
		return server_reply_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE,
		                          "broker unavailable, retry later", "broker_unavailable");
	}
	return wait_suspend(rq);
}

static void wait_read_done(void *opaque, unsigned status, json_t *body, const char *error)
{
	struct req *rq = opaque;

	(void)error;
	wait_list_remove(rq);
	wait_finish(rq, status, body);
	req_unref(rq);
}

enum MHD_Result server_read_call(struct req *rq, const char *call_sid)
{
	if (rq->srv->reads == NULL)
		return server_reply_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE,
		                          "no database configured (DATABASE_URL)",
		                          "database_unavailable");
	wait_begin(rq);
	if (calls_read_submit(rq->srv->reads, call_sid, wait_read_done, rq) != 0) {
		wait_abort(rq);
		return server_reply_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "database busy",
		                          "database_busy");
	}
	return wait_suspend(rq);
}

/* Every tick: takes the expired waits off the list and answers them 503; every few, closes the
 * connections past their deadlines (admit_tick). */
static void *wait_timer(void *arg)
{
	struct server *s = arg;
	unsigned tick = 0;

	while (!atomic_load(&s->timer_stop)) {
		struct req *expired = NULL, *rq, *next;
		int64_t now;

		usleep(WAIT_TICK_US);
		now = time_mono_ms();
		if (++tick % WAIT_EDGE_TICKS == 0)
			admit_tick(s, now);
		pthread_mutex_lock(&s->wait_lock);
		for (rq = s->wait_head; rq != NULL; rq = next) {
			next = rq->wait_next;
			if (rq->deadline_ms > now)
				continue;
			wait_list_unlink_locked(s, rq);
			req_ref(
			    rq); /* alive until we are done with it, whatever the callback does */
			rq->wait_next = expired;
			expired = rq;
		}
		pthread_mutex_unlock(&s->wait_lock);
		for (rq = expired; rq != NULL; rq = next) {
			next = rq->wait_next;
			rq->wait_next = NULL;
			log_warn_limited(&s->log_timed_out, "wait timed out: answering 503",
			                 LOGS("route", route_names[rq->route]),
			                 LOGS("request_id", rq->request_id),
			                 LOGI("timeout_ms", s->conf->delivery_timeout_ms));
			wait_finish(rq, MHD_HTTP_SERVICE_UNAVAILABLE, NULL);
			req_unref(rq);
		}
	}
	return NULL;
}

int server_timer_start(struct server *s)
{
	atomic_init(&s->timer_stop, false);
	if (pthread_create(&s->timer, NULL, wait_timer, s) != 0)
		return -1;
	s->timer_started = true;
	return 0;
}

void server_timer_stop(struct server *s)
{
	if (!s->timer_started)
		return;
	atomic_store(&s->timer_stop, true);
	pthread_join(s->timer, NULL);
	s->timer_started = false;
}
