/* ready: the broker check behind /readyz, run off the HTTP threads. */
#include "ready.h"

#include "publish.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct ready {
	struct publish *pub;
	long interval_ms;
	int timeout_ms;
	atomic_bool up;
	pthread_mutex_t lock; /* guards stop (and the wait on cond) */
	pthread_cond_t cond;
	bool stop;
	pthread_t thread;
};

static void *ready_main(void *arg)
{
	struct ready *r = arg;

	for (;;) {
		struct timespec until;
		bool stop;

		atomic_store(&r->up, publish_ready(r->pub, r->timeout_ms));
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += r->interval_ms / 1000;
		until.tv_nsec += (r->interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&r->lock);
		while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &until) != ETIMEDOUT)
			;
		stop = r->stop;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			return NULL;
	}
}

struct ready *ready_start(struct publish *pub, long interval_ms, int timeout_ms, char *errstr,
                          size_t errstr_size)
{
	struct ready *r = calloc(1, sizeof *r);
	pthread_condattr_t attr;

	if (r == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	r->pub = pub;
	r->interval_ms = interval_ms > 0 ? interval_ms : 1000;
	r->timeout_ms = timeout_ms;
	atomic_init(&r->up, false);
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&r->thread, NULL, ready_main, r) != 0) {
		snprintf(errstr, errstr_size, "cannot start the readiness thread");
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return NULL;
	}
	return r;
}

bool ready_broker(const struct ready *r)
{
	return r != NULL && atomic_load(&((struct ready *)r)->up);
}

void ready_stop(struct ready *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
