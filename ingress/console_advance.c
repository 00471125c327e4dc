/* console_advance: the rolling window's periodic advance (console_advance.h). Several ingresses
 * may run it at once: the advance takes migration 010's exclusive advisory lock, and one that
 * finds it taken with the window at most a minute late returns at once. */
#include "console_advance.h"

#include "db.h"
#include "log.h"
#include "store_console.h"
#include "timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct console_advance {
	char *url;
	char *schema;
	long long interval_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stop;
	struct db *db;
	struct log_limit lim;
};

#define CONSOLE_ADVANCE_LOG_MS 60000 /* one failure line a minute at most (an outage) */

/* A warn line through ca->lim, with how many were held back since the last one. */
static void console_advance_warn(struct console_advance *ca, const char *msg, const char *error)
{
	long long held;

	if (log_limit_pass(&ca->lim, time_mono_ms(), CONSOLE_ADVANCE_LOG_MS, &held))
		log_warn(msg, LOGS("error", error), LOGI("suppressed", held));
}

/* Waits until the next tick or stop; true to go on. */
static bool console_advance_wait(struct console_advance *ca)
{
	struct timespec until;
	bool go;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ca->interval_ms / 1000);
	until.tv_nsec += (long)(ca->interval_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ca->mu);
	while (!ca->stop && pthread_cond_timedwait(&ca->cv, &ca->mu, &until) != ETIMEDOUT)
		;
	go = !ca->stop;
	pthread_mutex_unlock(&ca->mu);
	return go;
}

static void console_advance_once(struct console_advance *ca)
{
	char why[256] = "";

	if (ca->db == NULL) {
		ca->db = db_open(ca->url, ca->schema, why, sizeof why);
		if (ca->db == NULL) {
			console_advance_warn(ca, "console window advance: no database handle", why);
			return;
		}
	}
	if (db_ensure(ca->db) != 0 || (store_console_window_advance(ca->db, NULL) != 0 &&
	                               (db_ok(ca->db) || db_ensure(ca->db) != 0 ||
	                                store_console_window_advance(ca->db, NULL) != 0)))
		console_advance_warn(ca, "console window advance failed", db_errmsg(ca->db));
}

static void *console_advance_main(void *arg)
{
	struct console_advance *ca = arg;

	while (console_advance_wait(ca))
		console_advance_once(ca);
	return NULL;
}

struct console_advance *console_advance_start(const char *url, const char *schema,
                                              long long interval_s, char *errstr,
                                              size_t errstr_size)
{
	struct console_advance *ca = calloc(1, sizeof *ca);
	pthread_condattr_t attr;

	if (ca == NULL)
		goto fail;
	ca->url = strdup(url);
	ca->schema = strdup(schema != NULL ? schema : "");
	ca->interval_ms = interval_s * 1000;
	if (ca->url == NULL || ca->schema == NULL)
		goto fail;
	pthread_mutex_init(&ca->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ca->cv, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&ca->thread, NULL, console_advance_main, ca) != 0) {
		pthread_cond_destroy(&ca->cv);
		pthread_mutex_destroy(&ca->mu);
		goto fail;
	}
	return ca;
fail:
	snprintf(errstr, errstr_size, "cannot start the console window advance");
	if (ca != NULL) {
		free(ca->url);
		free(ca->schema);
		free(ca);
	}
	return NULL;
}

void console_advance_stop(struct console_advance *ca)
{
	if (ca == NULL)
		return;
	pthread_mutex_lock(&ca->mu);
	ca->stop = true;
	pthread_cond_signal(&ca->cv);
	pthread_mutex_unlock(&ca->mu);
	pthread_join(ca->thread, NULL);
	db_close(ca->db);
	pthread_cond_destroy(&ca->cv);
	pthread_mutex_destroy(&ca->mu);
	free(ca->url);
	free(ca->schema);
	free(ca);
}
