/* dial: the curl-multi outbound-call engine with concurrency cap, rate limit and retries. */
#include "dial.h"

#include "backoff.h"
#include "elevenlabs.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DIAL_BODY_MAX (64 * 1024) /* answer bytes kept: an outbound-call answer is small */

struct dial_job {
	struct dial_job *prev, *next; /* every job of the engine */
	struct dial_job *wait_next;   /* waiting list, sorted by not_before_ms */
	char call_sid[256];
	char *body;
	void *user;
	CURL *easy; /* NULL while waiting */
	int attempts;
	int64_t not_before_ms, attempt_start_ms;
	struct backoff backoff;
	struct el_body resp;
	char retry_after[64];
	char last_reason[512];
	char errbuf[CURL_ERROR_SIZE];
};

struct dial_engine {
	struct dial_engine_config conf;
	dial_done_fn *done;
	void *opaque;
	CURLM *multi;
	struct curl_slist *headers;
	char url[1024];
	struct policy_bucket bucket;
	struct dial_job *jobs;    /* all jobs */
	struct dial_job *waiting; /* not in flight, sorted by not_before_ms */
	size_t in_flight, active;
	struct metric *m_started, *m_succeeded, *m_latency, *m_in_flight;
};

static struct metric *dial_counter(struct dial_engine *e, const char *name, const char *help,
                                   const char *label)
{
	return metrics_counter(e->conf.metrics, name, help, "reason", label, NULL);
}

struct dial_engine *dial_engine_new(const struct dial_engine_config *conf, dial_done_fn *done,
                                    void *opaque, char *errstr, size_t errstr_size)
{
	struct dial_engine *e = calloc(1, sizeof *e);

	if (!e) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	e->conf = *conf;
	e->done = done;
	e->opaque = opaque;
	if (el_url(conf->base_url, EL_PATH_OUTBOUND_CALL, NULL, e->url, sizeof e->url)) {
		snprintf(errstr, errstr_size, "ELEVENLABS_BASE_URL is too long");
		goto fail;
	}
	e->multi = curl_multi_init();
	e->headers = el_headers(conf->api_key, true);
	if (!e->multi || !e->headers) {
		snprintf(errstr, errstr_size, "curl init failed");
		goto fail;
	}
	if (curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conf->concurrency) ||
	    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)conf->concurrency)) {
		snprintf(errstr, errstr_size, "curl multi setup failed");
		goto fail;
	}
	policy_bucket_init(&e->bucket, conf->rate_per_sec, conf->rate_per_sec, time_mono_ms());
	e->m_started = metrics_counter(conf->metrics, "dialer_dials_started_total",
	                               "Calls whose first outbound-call request was started", NULL);
	e->m_succeeded = metrics_counter(conf->metrics, "dialer_dials_succeeded_total",
	                                 "Calls the API accepted", NULL);
	e->m_latency = metrics_histogram(conf->metrics, "dialer_api_latency_seconds",
	                                 "Outbound-call request latency (each attempt)",
	                                 metrics_latency_buckets, metrics_latency_nbuckets, NULL);
	e->m_in_flight = metrics_gauge(conf->metrics, "dialer_in_flight",
	                               "Outbound-call requests in flight", NULL);
	return e;
fail:
	dial_engine_destroy(e);
	return NULL;
}

static void dial_job_free(struct dial_engine *e, struct dial_job *j)
{
	if (j->easy) {
		curl_multi_remove_handle(e->multi, j->easy);
		curl_easy_cleanup(j->easy);
	}
	if (j->prev)
		j->prev->next = j->next;
	else
		e->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	free(j->body);
	el_body_free(&j->resp);
	free(j);
}

void dial_engine_destroy(struct dial_engine *e)
{
	if (!e)
		return;
	while (e->jobs)
		dial_job_free(e, e->jobs);
	if (e->multi)
		curl_multi_cleanup(e->multi);
	curl_slist_free_all(e->headers);
	free(e);
}

static size_t dial_on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct dial_job *j = userdata;
	size_t n = size * nitems;
	static const char name[] = "retry-after:";

	if (n > sizeof name - 1 && strncasecmp(buf, name, sizeof name - 1) == 0) {
		size_t vlen = n - (sizeof name - 1);

		if (vlen >= sizeof j->retry_after)
			vlen = sizeof j->retry_after - 1;
		memcpy(j->retry_after, buf + sizeof name - 1, vlen);
		j->retry_after[vlen] = '\0';
	}
	return n;
}

/* Starts the next attempt of j. Returns 0, or -1 when curl could not be set up. */
static int dial_start(struct dial_engine *e, struct dial_job *j)
{
	CURL *easy = curl_easy_init();
	CURLcode rc = CURLE_OK;
	CURLMcode mrc = CURLM_OK;

	if (!easy)
		return -1;
	j->resp.max = DIAL_BODY_MAX;
	el_body_reset(&j->resp);
	j->retry_after[0] = '\0';
	j->errbuf[0] = '\0';
#define DIAL_SET(opt, val)                                     \
	do {                                                   \
		if (rc == CURLE_OK)                            \
			rc = curl_easy_setopt(easy, opt, val); \
	} while (0)
	rc = el_easy_setup(easy, e->headers, e->conf.request_timeout_ms, e->conf.connect_timeout_ms,
	                   &j->resp);
	DIAL_SET(CURLOPT_URL, e->url);
	DIAL_SET(CURLOPT_POSTFIELDS, j->body);
	DIAL_SET(CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
	DIAL_SET(CURLOPT_HEADERFUNCTION, dial_on_header);
	DIAL_SET(CURLOPT_HEADERDATA, j);
	DIAL_SET(CURLOPT_ERRORBUFFER, j->errbuf);
	DIAL_SET(CURLOPT_PRIVATE, j);
#undef DIAL_SET
	if (rc == CURLE_OK)
		mrc = curl_multi_add_handle(e->multi, easy);
	if (rc != CURLE_OK || mrc != CURLM_OK) {
		log_error("dial: curl setup failed", LOGS("call_sid", j->call_sid),
		          LOGS("error", el_setup_error(rc, mrc)));
		curl_easy_cleanup(easy);
		return -1;
	}
	j->easy = easy;
	j->attempts++;
	j->attempt_start_ms = time_mono_ms();
	policy_bucket_take(&e->bucket, j->attempt_start_ms);
	e->in_flight++;
	metric_set(e->m_in_flight, (double)e->in_flight);
	log_debug("dial: request started", LOGS("call_sid", j->call_sid),
	          LOGI("attempt", j->attempts));
	return 0;
}

/* The first waiting job that is due, or NULL. */
static struct dial_job *dial_due(struct dial_engine *e, int64_t now)
{
	return e->waiting && e->waiting->not_before_ms <= now ? e->waiting : NULL;
}

bool dial_engine_can_start(struct dial_engine *e)
{
	int64_t now = time_mono_ms();

	return e->in_flight < (size_t)e->conf.concurrency && !dial_due(e, now) &&
	       policy_bucket_ready(&e->bucket, now);
}

static void dial_wait_insert(struct dial_engine *e, struct dial_job *j)
{
	struct dial_job **pp = &e->waiting;

	while (*pp && (*pp)->not_before_ms <= j->not_before_ms)
		pp = &(*pp)->wait_next;
	j->wait_next = *pp;
	*pp = j;
}

int dial_engine_submit(struct dial_engine *e, const char *call_sid, const char *body, void *job)
{
	struct dial_job *j = calloc(1, sizeof *j);

	if (!j || !(j->body = strdup(body))) {
		free(j);
		return -1;
	}
	snprintf(j->call_sid, sizeof j->call_sid, "%s", call_sid);
	j->user = job;
	backoff_init(&j->backoff, e->conf.retry_base_ms, e->conf.retry_max_ms);
	j->next = e->jobs;
	if (e->jobs)
		e->jobs->prev = j;
	e->jobs = j;
	e->active++;
	metric_inc(e->m_started);
	if (dial_engine_can_start(e) && dial_start(e, j) == 0) {
		int running;

		/* Start the transfer now rather than at the next dial_engine_run: the caller claims
		 * a burst of calls before it runs the engine, and a crash between a claim and its
		 * request leaving makes the call dial_outcome_unknown. Moving each request out
		 * right after its claim shrinks what a crash can lose from the whole burst to the
		 * requests still connecting. Finished transfers are collected by dial_engine_run.
		 */
		if (curl_multi_perform(e->multi, &running) != CURLM_OK)
			log_warn("dial: curl_multi_perform failed");
		return 0;
	}
	/* no slot (caller did not check) or curl hiccup: it starts from the waiting list */
	j->not_before_ms = time_mono_ms();
	dial_wait_insert(e, j);
	return 0;
}

/* Reports j as finished and frees it. */
static void dial_finish(struct dial_engine *e, struct dial_job *j, enum dial_status status,
                        const char *conversation_id, const char *reason, const char *label,
                        long http_status)
{
	struct dial_outcome out = {
	    .status = status,
	    .conversation_id = conversation_id ? conversation_id : "",
	    .reason = reason ? reason : "",
	    .label = label,
	    .attempts = j->attempts,
	    .http_status = http_status,
	};
	void *user = j->user;

	if (status == DIAL_OK) {
		metric_inc(e->m_succeeded);
		log_info("dial: call accepted", LOGS("call_sid", j->call_sid),
		         LOGS("conversation_id", out.conversation_id),
		         LOGI("attempts", j->attempts));
	} else {
		metric_inc(dial_counter(e, "dialer_dials_failed_total",
		                        "Calls not placed or with unknown outcome, by reason",
		                        label));
		log_warn(status == DIAL_UNKNOWN ? "dial: outcome unknown, not retried"
		                                : "dial: call failed",
		         LOGS("call_sid", j->call_sid), LOGS("reason", out.reason),
		         LOGS("label", label), LOGI("attempts", j->attempts),
		         LOGI("http_status", http_status));
	}
	e->active--;
	dial_job_free(e, j);
	e->done(e->opaque, user, &out);
}

static bool dial_request_sent(CURL *easy)
{
	curl_off_t pretransfer = 0;
	long request_size = 0;

	curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
	curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
	return pretransfer > 0 || request_size > 0;
}

/* One attempt of j ended with curl result rc. */
static void dial_attempt_done(struct dial_engine *e, struct dial_job *j, CURLcode rc)
{
	struct policy_verdict v;
	long status = 0;
	long delay;

	metric_observe(e->m_latency, (double)(time_mono_ms() - j->attempt_start_ms) / 1000.0);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
		policy_classify_http(status, j->resp.data, j->resp.len,
		                     j->retry_after[0] ? j->retry_after : NULL, time_now_ms(), &v);
		if (v.action == POLICY_UNKNOWN)
			log_warn("dial: the answer does not say whether the call was placed",
			         LOGS("call_sid", j->call_sid), LOGS("answer", v.reason),
			         LOGI("http_status", status));
	} else {
		policy_classify_transport((int)rc, j->errbuf, dial_request_sent(j->easy), &v);
		if (v.action == POLICY_UNKNOWN)
			log_warn("dial: request failed after it was sent",
			         LOGS("call_sid", j->call_sid),
			         LOGS("error", j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc)));
	}
	curl_multi_remove_handle(e->multi, j->easy);
	curl_easy_cleanup(j->easy);
	j->easy = NULL;
	e->in_flight--;
	metric_set(e->m_in_flight, (double)e->in_flight);

	switch (v.action) {
	case POLICY_OK:
		dial_finish(e, j, DIAL_OK, v.conversation_id, NULL, "ok", status);
		return;
	case POLICY_FAILED:
		dial_finish(e, j, DIAL_FAILED, NULL, v.reason, v.label, status);
		return;
	case POLICY_UNKNOWN:
		dial_finish(e, j, DIAL_UNKNOWN, NULL, POLICY_REASON_UNKNOWN, "outcome_unknown",
		            status);
		return;
	case POLICY_RETRY:
		break;
	}
	snprintf(j->last_reason, sizeof j->last_reason, "%s", v.reason);
	if (j->attempts >= e->conf.max_attempts) {
		char reason[600];

		snprintf(reason, sizeof reason, "retries exhausted after %d attempts: %s",
		         j->attempts, v.reason);
		dial_finish(e, j, DIAL_FAILED, NULL, reason, "retries_exhausted", status);
		return;
	}
	delay = backoff_next(&j->backoff);
	if (v.retry_after_ms >= 0)
		delay = v.retry_after_ms < e->conf.retry_after_max_ms ? v.retry_after_ms
		                                                      : e->conf.retry_after_max_ms;
	metric_inc(dial_counter(e, "dialer_dial_retries_total",
	                        "Outbound-call attempts retried, by reason", v.label));
	log_info("dial: retrying", LOGS("call_sid", j->call_sid), LOGS("reason", v.reason),
	         LOGI("attempt", j->attempts), LOGI("delay_ms", delay));
	j->not_before_ms = time_mono_ms() + delay;
	dial_wait_insert(e, j);
}

/* Starts due retries while there are slots and tokens. */
static void dial_start_due(struct dial_engine *e)
{
	int64_t now = time_mono_ms();
	struct dial_job *j;

	while ((j = dial_due(e, now)) && e->in_flight < (size_t)e->conf.concurrency &&
	       policy_bucket_ready(&e->bucket, now)) {
		e->waiting = j->wait_next;
		j->wait_next = NULL;
		if (dial_start(e, j)) {
			dial_finish(e, j, DIAL_FAILED, NULL, "dialer could not set up the request",
			            "internal", 0);
			continue;
		}
	}
}

/* How long run may block: bounded by the next due retry and the rate limit. */
static int dial_poll_timeout(struct dial_engine *e, int timeout_ms)
{
	int64_t now = time_mono_ms();
	long curl_ms = -1;

	if (e->waiting) {
		int64_t due = e->waiting->not_before_ms - now;

		if (due <= 0 && e->in_flight < (size_t)e->conf.concurrency)
			due = policy_bucket_wait_ms(&e->bucket, now);
		if (due < timeout_ms)
			timeout_ms = due < 0 ? 0 : (int)due;
	}
	if (curl_multi_timeout(e->multi, &curl_ms) == CURLM_OK && curl_ms >= 0 &&
	    curl_ms < timeout_ms)
		timeout_ms = (int)curl_ms;
	return timeout_ms;
}

int dial_engine_run(struct dial_engine *e, int timeout_ms)
{
	int running = 0, left = 0, finished = 0;
	CURLMsg *msg;

	dial_start_due(e);
	timeout_ms = dial_poll_timeout(e, timeout_ms);
	if (timeout_ms > 0 && curl_multi_poll(e->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK)
		log_warn("dial: curl_multi_poll failed");
	if (curl_multi_perform(e->multi, &running) != CURLM_OK)
		log_warn("dial: curl_multi_perform failed");
	while ((msg = curl_multi_info_read(e->multi, &left))) {
		char *priv = NULL;
		struct dial_job *j;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		j = (struct dial_job *)priv;
		if (!j)
			continue;
		dial_attempt_done(e, j, msg->data.result);
		finished++;
	}
	dial_start_due(e);
	return finished;
}

size_t dial_engine_active(const struct dial_engine *e)
{
	return e->active;
}

void dial_engine_abort_all(struct dial_engine *e)
{
	e->waiting = NULL; /* every job is finished below; done callbacks may look at the list */
	while (e->jobs) {
		struct dial_job *j = e->jobs;
		char reason[600];

		if (j->easy && dial_request_sent(j->easy)) {
			e->in_flight--;
			dial_finish(e, j, DIAL_UNKNOWN, NULL, POLICY_REASON_UNKNOWN,
			            "outcome_unknown", 0);
			continue;
		}
		if (j->easy)
			e->in_flight--;
		snprintf(reason, sizeof reason, "shutdown before dial%s%s",
		         j->last_reason[0] ? ": last attempt: " : "", j->last_reason);
		dial_finish(e, j, DIAL_FAILED, NULL, reason, "shutdown", 0);
	}
	metric_set(e->m_in_flight, 0);
}
