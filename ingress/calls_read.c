/* calls_read: the read endpoint's database side: worker threads, one lazy connection each. */
#include "calls_read.h"

#include "db.h"
#include "log.h"
#include "store_calls.h"
#include "store_transcriptions.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALLS_READ_QUEUE_MAX 1024

struct calls_read_job {
	struct calls_read_job *next;
	char call_sid[256]; /* "" for an fn job */
	calls_read_fn *fn;  /* NULL: the call_sid lookup */
	void *arg;
	calls_read_done_fn *done;
	void *opaque;
	int64_t queued_ms; /* monotonic */
};

struct calls_read {
	char *url;
	char *schema;
	long wait_ms;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct calls_read_job *head, **tail;
	size_t queued;
	bool stop;
	int nthreads;
	pthread_t *threads;
};

json_t *calls_read_call_json(const struct store_call *c)
{
#define OPT_STR(s) ((s)[0] != '\0' ? json_string(s) : json_null())
	return json_pack("{s:I, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:i}", "id",
	                 (json_int_t)c->id, "call_sid", c->call_sid, "conversation_id",
	                 c->has_conversation_id ? json_string(c->conversation_id) : json_null(),
	                 "driver_id", OPT_STR(c->driver_id), "trip_id", OPT_STR(c->trip_id),
	                 "status", c->status, "failure_reason", OPT_STR(c->failure_reason),
	                 "call_start_time", OPT_STR(c->call_start_time), "call_end_time",
	                 OPT_STR(c->call_end_time), "created_at", OPT_STR(c->created_at),
	                 "updated_at", OPT_STR(c->updated_at), "dial_attempted_at",
	                 OPT_STR(c->dial_attempted_at), "dial_attempts", c->dial_attempts);
#undef OPT_STR
}

static int calls_read_line(void *opaque, const struct store_line *line)
{
	json_t *transcript = opaque;
	json_t *item =
	    json_pack("{s:i, s:s, s:s, s:s?}", "sequence_number", line->sequence_number, "speaker",
	              line->speaker, "message", line->message, "created_at", line->created_at);

	return json_array_append_new(transcript, item) == 0 ? 0 : -1;
}

/* One attempt of the two lookups. */
static unsigned calls_read_query(struct db *db, const char *call_sid, json_t **out, char *errstr,
                                 size_t errstr_size)
{
	struct store_call *call = calloc(1, sizeof *call);
	json_t *transcript = json_array();
	bool found = false;
	unsigned status = 503;

	if (call == NULL || transcript == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	if (store_call_get(db, call_sid, call, &found) != 0) {
		snprintf(errstr, errstr_size, "database unavailable");
		goto out;
	}
	if (!found) {
		snprintf(errstr, errstr_size, "no call with this call_sid");
		status = 404;
		goto out;
	}
	if (call->has_conversation_id &&
	    store_transcription_list(db, call->conversation_id, calls_read_line, transcript) != 0) {
		snprintf(errstr, errstr_size, "database unavailable");
		goto out;
	}
	*out =
	    json_pack("{s:o, s:O}", "call", calls_read_call_json(call), "transcript", transcript);
	if (*out == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	status = 200;
out:
	json_decref(transcript);
	free(call);
	return status;
}

unsigned calls_read_lookup(struct db *db, const char *call_sid, json_t **out, char *errstr,
                           size_t errstr_size)
{
	unsigned status;

	*out = NULL;
	if (db_ensure(db) != 0) {
		log_warn("GET /calls: database unreachable", LOGS("error", db_errmsg(db)));
		snprintf(errstr, errstr_size, "database unavailable");
		return 503;
	}
	status = calls_read_query(db, call_sid, out, errstr, errstr_size);
	/* A connection the server dropped (restart, idle kill) fails once: reconnect, retry. */
	if (status == 503 && !db_ok(db) && db_ensure(db) == 0)
		status = calls_read_query(db, call_sid, out, errstr, errstr_size);
	if (status == 503)
		log_warn("GET /calls: lookup failed", LOGS("call_sid", call_sid),
		         LOGS("error", db_errmsg(db)));
	return status;
}

/* Runs one job on the worker's connection (opened here on first use). */
static void calls_read_run(struct calls_read *cr, struct db **db, struct calls_read_job *job)
{
	json_t *body = NULL;
	char why[256] = "";
	unsigned status = 503;

	if (time_mono_ms() - job->queued_ms > cr->wait_ms) {
		snprintf(why, sizeof why, "database busy");
		goto out;
	}
	if (*db == NULL) {
		*db = db_open(cr->url, cr->schema, why, sizeof why);
		if (*db == NULL) {
			log_error("GET /calls: cannot open a database handle", LOGS("error", why));
			snprintf(why, sizeof why, "database unavailable");
			goto out;
		}
	}
	if (job->fn == NULL) {
		status = calls_read_lookup(*db, job->call_sid, &body, why, sizeof why);
		goto out;
	}
	if (db_ensure(*db) != 0) {
		log_warn("console read: database unreachable", LOGS("error", db_errmsg(*db)));
		snprintf(why, sizeof why, "database unavailable");
		goto out;
	}
	status = job->fn(*db, job->arg, &body, why, sizeof why);
	if (status == 503 && !db_ok(*db) && db_ensure(*db) == 0) {
		json_decref(body);
		body = NULL;
		status = job->fn(*db, job->arg, &body, why, sizeof why);
	}
	if (status == 503)
		log_warn("console read failed", LOGS("error", db_errmsg(*db)));
out:
	if (status != 200) {
		json_decref(body);
		body = NULL;
	}
	job->done(job->opaque, status, body, why);
}

static void *calls_read_worker(void *arg)
{
	struct calls_read *cr = arg;
	struct db *db = NULL;

	for (;;) {
		struct calls_read_job *job;

		pthread_mutex_lock(&cr->lock);
		while (cr->head == NULL && !cr->stop)
			pthread_cond_wait(&cr->wake, &cr->lock);
		if (cr->head == NULL) {
			pthread_mutex_unlock(&cr->lock);
			break;
		}
		job = cr->head;
		cr->head = job->next;
		if (cr->head == NULL)
			cr->tail = &cr->head;
		cr->queued--;
		pthread_mutex_unlock(&cr->lock);
		calls_read_run(cr, &db, job);
		free(job);
	}
	db_close(db);
	return NULL;
}

struct calls_read *calls_read_new(const char *url, const char *schema, int nthreads, long wait_ms,
                                  char *errstr, size_t errstr_size)
{
	struct calls_read *cr = calloc(1, sizeof *cr);

	if (cr == NULL)
		goto nomem;
	pthread_mutex_init(&cr->lock, NULL);
	pthread_cond_init(&cr->wake, NULL);
	cr->tail = &cr->head;
	cr->wait_ms = wait_ms;
	cr->url = strdup(url);
	cr->schema = strdup(schema);
	cr->threads = calloc((size_t)(nthreads > 0 ? nthreads : 1), sizeof *cr->threads);
	if (cr->url == NULL || cr->schema == NULL || cr->threads == NULL)
		goto nomem;
	for (int i = 0; i < (nthreads > 0 ? nthreads : 1); i++) {
		if (pthread_create(&cr->threads[i], NULL, calls_read_worker, cr) != 0) {
			snprintf(errstr, errstr_size, "cannot start a database worker thread");
			calls_read_destroy(cr);
			return NULL;
		}
		cr->nthreads++;
	}
	return cr;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
	calls_read_destroy(cr);
	return NULL;
}

void calls_read_destroy(struct calls_read *cr)
{
	struct calls_read_job *job, *next;

	if (cr == NULL)
		return;
	pthread_mutex_lock(&cr->lock);
	cr->stop = true;
	job = cr->head;
	cr->head = NULL;
	cr->tail = &cr->head;
	pthread_cond_broadcast(&cr->wake);
	pthread_mutex_unlock(&cr->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		job->done(job->opaque, 503, NULL, "shutting down");
		free(job);
	}
	for (int i = 0; i < cr->nthreads; i++)
		pthread_join(cr->threads[i], NULL);
	pthread_cond_destroy(&cr->wake);
	pthread_mutex_destroy(&cr->lock);
	free(cr->threads);
	free(cr->schema);
	free(cr->url);
	free(cr);
}

/* Queues job (taken: freed when it cannot be queued). */
static int calls_read_enqueue(struct calls_read *cr, struct calls_read_job *job,
                              calls_read_done_fn *done, void *opaque)
{
	int ret = -1;

	job->done = done;
	job->opaque = opaque;
	job->queued_ms = time_mono_ms();
	pthread_mutex_lock(&cr->lock);
	if (!cr->stop && cr->queued < CALLS_READ_QUEUE_MAX) {
		*cr->tail = job;
		cr->tail = &job->next;
		cr->queued++;
		pthread_cond_signal(&cr->wake);
		job = NULL;
		ret = 0;
	}
	pthread_mutex_unlock(&cr->lock);
	free(job);
	return ret;
}

int calls_read_submit(struct calls_read *cr, const char *call_sid, calls_read_done_fn *done,
                      void *opaque)
{
	struct calls_read_job *job = calloc(1, sizeof *job);

	if (job == NULL || strlen(call_sid) >= sizeof job->call_sid) {
		free(job);
		return -1;
	}
	snprintf(job->call_sid, sizeof job->call_sid, "%s", call_sid);
	return calls_read_enqueue(cr, job, done, opaque);
}

int calls_read_submit_fn(struct calls_read *cr, calls_read_fn *fn, void *arg,
                         calls_read_done_fn *done, void *opaque)
{
	struct calls_read_job *job = calloc(1, sizeof *job);

	if (job == NULL || fn == NULL) {
		free(job);
		return -1;
	}
	job->fn = fn;
	job->arg = arg;
	return calls_read_enqueue(cr, job, done, opaque);
}
