/* simplay: the timer thread and the webhook threads of elevensim. */
#include "simplay.h"

#include "calltoken.h"
#include "log.h"
#include "sig.h"
#include "simconf.h"
#include "simstore.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One scheduled item: a timer callback, or the next step of a conversation. */
struct sim_item {
	int64_t due_ms;
	uint64_t seq; /* FIFO among equal due times */
	sim_timer_fn *fn;
	void *arg;
	/* conversation steps */
	char conv_id[64];
	uint64_t generation;
	char *body; /* a webhook being retried */
	enum sim_event ev;
	char call_sid[256];
	char call_token[CALLTOKEN_SIZE]; /* a tool line: sent as X-Callpipe-Call-Token, unsigned */
	int attempts;
	sim_timer_fn *first_done;
	void *first_arg;
};

/* A binary min-heap of items by (due, seq). */
struct sim_heap {
	struct sim_item **v;
	size_t n, cap;
};

struct sim_play {
	struct sim_conf *conf;
	struct sim_store *store;
	char secret[256];
	char tool_secret[256]; /* X-Callpipe-Tool-Secret of tool lines ("" none) */
	pthread_mutex_t mu;
	pthread_cond_t timer_cv, work_cv;
	struct sim_heap timers, steps;
	uint64_t seq;
	atomic_bool stopping; /* set under mu; also read without it by a webhook in flight */
	pthread_t timer_thread;
	pthread_t *workers;
	int nworkers;
};

static bool sim_before(const struct sim_item *a, const struct sim_item *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static int sim_heap_push(struct sim_heap *h, struct sim_item *it)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct sim_item **v = realloc(h->v, cap * sizeof *v);

		if (!v)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	i = h->n++;
	h->v[i] = it;
	while (i > 0 && sim_before(h->v[i], h->v[(i - 1) / 2])) {
		struct sim_item *t = h->v[i];

		h->v[i] = h->v[(i - 1) / 2];
		h->v[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
	return 0;
}

static struct sim_item *sim_heap_pop(struct sim_heap *h)
{
	struct sim_item *top;
	size_t i = 0;

	if (!h->n)
		return NULL;
	top = h->v[0];
	h->v[0] = h->v[--h->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && sim_before(h->v[l], h->v[m]))
			m = l;
		if (r < h->n && sim_before(h->v[r], h->v[m]))
			m = r;
		if (m == i)
			break;
		struct sim_item *t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
	return top;
}

static void sim_item_free(struct sim_item *it)
{
	if (it) {
		free(it->body);
		free(it);
	}
}

static void sim_deadline(int64_t due_ms, struct timespec *ts)
{
	int64_t wall = time_now_ms() + (due_ms - time_mono_ms());

	ts->tv_sec = (time_t)(wall / 1000);
	ts->tv_nsec = (long)(wall % 1000) * 1000000L;
}

/* Waits for the first due item of h (NULL when stopping). Called and returns with p->mu held. */
static struct sim_item *sim_wait_due(struct sim_play *p, struct sim_heap *h, pthread_cond_t *cv)
{
	while (!atomic_load(&p->stopping)) {
		struct timespec ts;

		if (!h->n) {
			pthread_cond_wait(cv, &p->mu);
			continue;
		}
		if (h->v[0]->due_ms <= time_mono_ms())
			return sim_heap_pop(h);
		sim_deadline(h->v[0]->due_ms, &ts);
		pthread_cond_timedwait(cv, &p->mu, &ts);
	}
	return NULL;
}

static void *sim_timer_main(void *arg)
{
	struct sim_play *p = arg;
	struct sim_item *it;

	pthread_mutex_lock(&p->mu);
	while ((it = sim_wait_due(p, &p->timers, &p->timer_cv))) {
		pthread_mutex_unlock(&p->mu);
		it->fn(it->arg);
		sim_item_free(it);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int sim_play_after(struct sim_play *p, long delay_ms, sim_timer_fn *fn, void *arg)
{
	struct sim_item *it;

	pthread_mutex_lock(&p->mu);
	if (atomic_load(&p->stopping)) {
		pthread_mutex_unlock(&p->mu);
		fn(arg);
		return 0;
	}
	it = calloc(1, sizeof *it);
	if (!it) {
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	it->due_ms = time_mono_ms() + delay_ms;
	it->seq = p->seq++;
	it->fn = fn;
	it->arg = arg;
	if (sim_heap_push(&p->timers, it)) {
		pthread_mutex_unlock(&p->mu);
		free(it);
		return -1;
	}
	pthread_cond_signal(&p->timer_cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

/* Queues a conversation step (takes it; frees it when stopping). */
static void sim_step_push(struct sim_play *p, struct sim_item *it, long delay_ms)
{
	pthread_mutex_lock(&p->mu);
	it->due_ms = time_mono_ms() + delay_ms;
	it->seq = p->seq++;
	if (atomic_load(&p->stopping) || sim_heap_push(&p->steps, it)) {
		pthread_mutex_unlock(&p->mu);
		if (it->first_done)
			it->first_done(it->first_arg);
		sim_item_free(it);
		return;
	}
	pthread_cond_signal(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
}

int sim_play_conversation(struct sim_play *p, const char *conv_id, long delay_ms,
                          sim_timer_fn *first_done, void *first_arg)
{
	struct sim_item *it = calloc(1, sizeof *it);

	if (!it)
		return -1;
	snprintf(it->conv_id, sizeof it->conv_id, "%s", conv_id);
	it->generation = sim_store_generation(p->store);
	it->first_done = first_done;
	it->first_arg = first_arg;
	sim_step_push(p, it, delay_ms);
	return 0;
}

static size_t sim_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* Ends a webhook in flight when the simulator stops (libcurl asks at least once a second). */
static int sim_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow)
{
	struct sim_play *p = opaque;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&p->stopping) ? 1 : 0;
}

/* POSTs body to url. A tool line (call_token set) goes as a configured agent's tool sends it:
 * unsigned, with its call token and the tool secret if there is one; any other webhook is
 * signed when secret is set. Returns the HTTP status, 0 on transport error. */
static long sim_post(struct sim_play *p, CURL *easy, const char *url, const char *body,
                     const char *call_token, long timeout_ms)
{
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	char sig[256], hdr[300];
	long status = 0;
	CURLcode rc;

	if (call_token[0]) {
		snprintf(hdr, sizeof hdr, "X-Callpipe-Call-Token: %s", call_token);
		headers = headers ? curl_slist_append(headers, hdr) : NULL;
		if (p->tool_secret[0]) {
			snprintf(hdr, sizeof hdr, "X-Callpipe-Tool-Secret: %s", p->tool_secret);
			headers = headers ? curl_slist_append(headers, hdr) : NULL;
		}
	} else if (p->secret[0] && sig_sign(p->secret, time_now_ms() / 1000, body, strlen(body),
	                                    sig, sizeof sig) == 0) {
		snprintf(hdr, sizeof hdr, "ElevenLabs-Signature: %s", sig);
		headers = headers ? curl_slist_append(headers, hdr) : NULL;
	}
	headers = headers ? curl_slist_append(headers, "Expect:") : NULL;
	if (!headers)
		return 0;
	curl_easy_reset(easy);
	rc = curl_easy_setopt(easy, CURLOPT_URL, url);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, sim_discard);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, sim_progress);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_XFERINFODATA, p);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(easy);
	if (rc == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	else
		log_debug("elevensim: webhook not delivered", LOGS("url", url),
		          LOGS("error", curl_easy_strerror(rc)));
	curl_slist_free_all(headers);
	return status;
}

static void sim_first_done(struct sim_item *it)
{
	if (it->first_done) {
		it->first_done(it->first_arg);
		it->first_done = NULL;
	}
}

/* One step of a conversation: build the next webhook (or reuse the one being retried), send
 * it, and schedule what follows. */
static void sim_step(struct sim_play *p, CURL *easy, struct sim_item *it)
{
	struct sim_knobs k;
	bool delivered = false;

	sim_conf_get(p->conf, &k);
	if (it->body && it->generation != sim_store_generation(p->store)) {
		sim_first_done(it); /* reset while being retried: playback stops here too */
		sim_item_free(it);
		return;
	}
	if (!it->body) {
		json_t *body = NULL;

		it->ev = sim_store_next(p->store, it->conv_id, it->generation, &body, it->call_sid,
		                        sizeof it->call_sid, it->call_token, sizeof it->call_token);
		it->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
		json_decref(body);
		it->attempts = 0;
		if (!it->body) { /* over, reset, or a post-call this call never sends */
			sim_first_done(it);
			sim_item_free(it);
			return;
		}
	}
	if (k.webhooks && k.webhook_url[0]) {
		char url[700];
		long status;

		snprintf(url, sizeof url, "%s%s", k.webhook_url,
		         it->ev == SIM_EVENT_TURN ? "/webhooks/elevenlabs/transcription"
		                                  : "/webhooks/elevenlabs/post-call");
		it->attempts++;
		sim_store_webhook_attempt(p->store, it->call_sid);
		status = sim_post(p, easy, url, it->body, it->call_token, k.webhook_timeout_ms);
		if (status != 200 && atomic_load(&p->stopping)) { /* abandoned */
			sim_first_done(it);
			sim_item_free(it);
			return;
		}
		delivered = status == 200;
		if (!delivered && it->attempts <= k.webhook_retries) {
			long delay = k.webhook_backoff_ms
			             << (it->attempts - 1 < 16 ? it->attempts - 1 : 16);

			log_info("elevensim: webhook not accepted, retrying",
			         LOGS("call_sid", it->call_sid), LOGI("status", status),
			         LOGI("attempt", it->attempts), LOGI("delay_ms", delay));
			sim_first_done(it);
			sim_step_push(p, it, delay > 60000 ? 60000 : delay);
			return;
		}
		sim_store_webhook_result(p->store, it->call_sid, it->ev, delivered, it->body);
		if (!delivered)
			log_warn("elevensim: webhook dropped after retries",
			         LOGS("call_sid", it->call_sid), LOGI("status", status),
			         LOGI("attempts", it->attempts));
	}
	sim_first_done(it);
	free(it->body);
	it->body = NULL;
	if (it->ev == SIM_EVENT_TURN) {
		sim_step_push(p, it, k.turn_delay_ms);
		return;
	}
	sim_item_free(it);
}

static void *sim_worker_main(void *arg)
{
	struct sim_play *p = arg;
	CURL *easy = curl_easy_init();
	struct sim_item *it;

	pthread_mutex_lock(&p->mu);
	while ((it = sim_wait_due(p, &p->steps, &p->work_cv))) {
		pthread_mutex_unlock(&p->mu);
		if (easy)
			sim_step(p, easy, it);
		else
			sim_item_free(it);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	if (easy)
		curl_easy_cleanup(easy);
	return NULL;
}

struct sim_play *sim_play_start(struct sim_conf *conf, struct sim_store *store, const char *secret,
                                const char *tool_secret, int nthreads, char *errstr,
                                size_t errstr_size)
{
	struct sim_play *p = calloc(1, sizeof *p);

	if (!p || !(p->workers = calloc((size_t)nthreads, sizeof *p->workers))) {
		free(p);
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	atomic_init(&p->stopping, false);
	p->conf = conf;
	p->store = store;
	snprintf(p->secret, sizeof p->secret, "%s", secret ? secret : "");
	snprintf(p->tool_secret, sizeof p->tool_secret, "%s", tool_secret ? tool_secret : "");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->timer_cv, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	if (pthread_create(&p->timer_thread, NULL, sim_timer_main, p)) {
		snprintf(errstr, errstr_size, "cannot start the timer thread");
		free(p->workers);
		free(p);
		return NULL;
	}
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->workers[i], NULL, sim_worker_main, p))
			break;
		p->nworkers++;
	}
	if (p->nworkers == 0) {
		snprintf(errstr, errstr_size, "cannot start the webhook threads");
		sim_play_stop(p);
		sim_play_free(p);
		return NULL;
	}
	return p;
}

void sim_play_stop(struct sim_play *p)
{
	struct sim_item *it;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stopping, true);
	pthread_cond_broadcast(&p->timer_cv);
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->timer_thread, NULL);
	for (int i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i], NULL);
	/* release everything still waiting: held answers must be resumed before the server stops */
	while ((it = sim_heap_pop(&p->timers))) {
		it->fn(it->arg);
		sim_item_free(it);
	}
	while ((it = sim_heap_pop(&p->steps))) {
		sim_first_done(it);
		sim_item_free(it);
	}
}

void sim_play_free(struct sim_play *p)
{
	if (!p)
		return;
	free(p->timers.v);
	free(p->steps.v);
	free(p->workers);
	pthread_cond_destroy(&p->timer_cv);
	pthread_cond_destroy(&p->work_cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
