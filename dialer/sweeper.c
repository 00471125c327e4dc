/* sweeper: the stuck-call sweeper thread: lease old in_progress calls, ask the conversations API,
 * store the real outcome. */
#include "sweeper.h"

#include "config.h"
#include "db.h"
#include "elevenlabs.h"
#include "log.h"
#include "metrics.h"
#include "store_calls.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* answer bytes kept: a conversation carries its whole transcript, so allow for long calls */
#define SWEEP_BODY_MAX (1024 * 1024)

struct sweeper {
	const struct dialer_config *conf;
	struct metrics *m;
	struct db *db;
	CURL *easy;
	struct curl_slist *headers;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stop;
	bool started;
	struct store_call *rows;
	struct el_body resp;
};

void sweeper_classify(long http_status, const char *body, size_t len, struct sweep_verdict *v)
{
	json_t *root = NULL;
	const char *status;
	const json_t *meta;

	memset(v, 0, sizeof *v);
	v->action = SWEEP_ERROR;
	v->label = "error";
	if (http_status == 404) {
		/* only the API's own JSON 404 counts: a proxy's or a wrong base URL's page does not
		 */
		root = json_loadb(body ? body : "", len, 0, NULL);
		if (json_is_object(root)) {
			v->action = SWEEP_FAILED;
			v->label = "not_found";
			snprintf(v->reason, sizeof v->reason, "conversation_not_found");
		} else {
			snprintf(v->reason, sizeof v->reason, "HTTP 404 without a JSON body");
		}
		json_decref(root);
		return;
	}
	if (http_status != 200) {
		snprintf(v->reason, sizeof v->reason, "HTTP %ld", http_status);
		return;
	}
	root = json_loadb(body ? body : "", len, 0, NULL);
	status = json_string_value(json_object_get(root, "status"));
	meta = json_object_get(root, "metadata");
	if (!status) {
		snprintf(v->reason, sizeof v->reason, "answer without a status");
	} else if (strcmp(status, "done") == 0) {
		const json_t *start = json_object_get(meta, "start_time_unix_secs");
		const json_t *dur = json_object_get(meta, "call_duration_secs");
		int64_t ms;

		v->action = SWEEP_COMPLETED;
		v->label = "completed";
		/* an absurd start or duration is no end time (never an undefined conversion) */
		if (json_is_number(start) && json_number_value(start) > 0 &&
		    (!json_is_number(dur) || json_number_value(dur) >= 0) &&
		    time_secs_to_ms(json_number_value(start) +
		                        (json_is_number(dur) ? json_number_value(dur) : 0),
		                    &ms) == 0)
			time_format_iso_ms(ms, v->end_time, sizeof v->end_time);
	} else if (strcmp(status, "failed") == 0) {
		const char *why = json_string_value(json_object_get(meta, "termination_reason"));

		v->action = SWEEP_FAILED;
		v->label = "failed";
		snprintf(v->reason, sizeof v->reason, "conversation_failed%s%.200s",
		         why && *why ? ": " : "", why && *why ? why : "");
	} else if (strcmp(status, "initiated") == 0 || strcmp(status, "in-progress") == 0 ||
	           strcmp(status, "processing") == 0) {
		v->action = SWEEP_RUNNING;
		v->label = "running";
	} else {
		snprintf(v->reason, sizeof v->reason, "unknown status '%.64s'", status);
	}
	json_decref(root);
}

/* Aborts a request in progress when the dialer shuts down. */
static int sweeper_on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                               curl_off_t ultotal, curl_off_t ulnow)
{
	struct sweeper *s = userdata;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&s->stop) ? 1 : 0;
}

/* GET the conversation; fills v. */
static void sweeper_check(struct sweeper *s, const char *conversation_id, struct sweep_verdict *v)
{
	char url[1536];
	char *esc = curl_easy_escape(s->easy, conversation_id, 0);
	long status = 0;
	CURLcode rc = CURLE_OUT_OF_MEMORY;

	memset(v, 0, sizeof *v);
	v->action = SWEEP_ERROR;
	v->label = "error";
	if (esc && el_url(s->conf->el_base_url, EL_PATH_CONVERSATIONS, esc, url, sizeof url) < 0) {
		snprintf(v->reason, sizeof v->reason, "conversation URL too long");
		curl_free(esc);
		return;
	}
	el_body_reset(&s->resp);
	if (esc)
		rc = curl_easy_setopt(s->easy, CURLOPT_URL, url);
	curl_free(esc);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(s->easy);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		snprintf(v->reason, sizeof v->reason, "%s", curl_easy_strerror(rc));
		return;
	}
	if (s->resp.truncated) {
		snprintf(v->reason, sizeof v->reason, "answer larger than %d bytes",
		         SWEEP_BODY_MAX);
		return;
	}
	sweeper_classify(status, s->resp.data, s->resp.len, v);
}

static void sweeper_resolved(struct sweeper *s, const char *outcome)
{
	metric_inc(metrics_counter(s->m, "dialer_sweeper_resolved_total",
	                           "Stuck calls settled by the sweeper, by outcome", "outcome",
	                           outcome, NULL));
}

/* True when the call started longer than DIALER_SWEEP_MAX_AGE_S ago (never when that is 0). */
static bool sweeper_past_max_age(const struct sweeper *s, const struct store_call *row)
{
	int64_t start_ms = 0;

	return s->conf->sweep_max_age_s &&
	       time_parse_iso_ms(row->call_start_time, &start_ms) == 0 &&
	       time_now_ms() - start_ms > s->conf->sweep_max_age_s * 1000;
}

/* Fails a call with reason, counted under outcome. Returns -1 on a database failure. */
static int sweeper_fail(struct sweeper *s, const struct store_call *row, const char *reason,
                        const char *outcome)
{
	bool changed = false;

	if (store_call_set_failed(s->db, row->call_sid, reason, &changed))
		return -1;
	if (changed)
		sweeper_resolved(s, outcome);
	log_warn("sweeper: call without conversation_id failed", LOGS("call_sid", row->call_sid),
	         LOGS("reason", reason), LOGS("dial_attempted_at", row->dial_attempted_at));
	return 0;
}

/* Settles one leased call. Returns -1 on a database failure (stop the round). */
static int sweeper_one(struct sweeper *s, const struct store_call *row)
{
	struct sweep_verdict v;
	bool changed = false;
	int rc;

	if (!row->has_conversation_id) {
		int64_t claimed_ms = 0;

		/* Never claimed: nothing was dialled (the claim comes first), and the message that
		 * created the row is still to be consumed (a dialer that crashed between insert and
		 * claim committed nothing), so a dialer dials it when that partition is read again:
		 * after a whole group's outage that can be long after DIALER_SWEEP_AGE_S, and
		 * failing it then would race that dialer and lose a call that was never made. Only
		 * past DIALER_SWEEP_MAX_AGE_S (a dead-lettered request, a lost topic) is it given
		 * up. */
		if (!row->dial_attempted_at[0]) {
			if (!sweeper_past_max_age(s, row)) {
				log_debug("sweeper: call not claimed yet, left to the dialers",
				          LOGS("call_sid", row->call_sid));
				return 0;
			}
			return sweeper_fail(s, row, "sweep_max_age", "max_age");
		}
		/* a dial (here or in another dialer) may still be waiting for its answer */
		if (time_parse_iso_ms(row->dial_attempted_at, &claimed_ms) == 0 &&
		    time_now_ms() - claimed_ms < dialer_config_max_dial_ms(s->conf) + 5000) {
			log_debug("sweeper: dial may still be in flight",
			          LOGS("call_sid", row->call_sid));
			return 0;
		}
		/* claimed with no answer stored: nobody knows whether the phone rang */
		return sweeper_fail(s, row, "dial_outcome_unknown", "dial_outcome_unknown");
	}
	sweeper_check(s, row->conversation_id, &v);
	if ((v.action == SWEEP_RUNNING || v.action == SWEEP_ERROR) &&
	    sweeper_past_max_age(s, row)) {
		v.action = SWEEP_FAILED;
		v.label = "max_age";
		snprintf(v.reason, sizeof v.reason, "sweep_max_age");
	}
	switch (v.action) {
	case SWEEP_COMPLETED:
		rc = store_call_set_completed(s->db, row->call_sid,
		                              v.end_time[0] ? v.end_time : NULL,
		                              row->conversation_id, &changed);
		break;
	case SWEEP_FAILED:
		rc = store_call_set_failed(s->db, row->call_sid, v.reason, &changed);
		break;
	default:
		metric_inc(metrics_counter(s->m, "dialer_sweeper_checks_total",
		                           "Stuck-call checks that settled nothing, by result",
		                           "result", v.label, NULL));
		log_info("sweeper: call not settled yet", LOGS("call_sid", row->call_sid),
		         LOGS("conversation_id", row->conversation_id), LOGS("result", v.label),
		         LOGS("reason", v.reason));
		return 0;
	}
	if (rc)
		return -1;
	if (changed)
		sweeper_resolved(s, v.label);
	log_info("sweeper: stuck call settled", LOGS("call_sid", row->call_sid),
	         LOGS("conversation_id", row->conversation_id), LOGS("outcome", v.label),
	         LOGS("reason", v.reason));
	return 0;
}

/* How long a round leases its calls: three intervals (a call still running is re-checked after
 * that), at least 5 s, and always long enough for one conversations request plus a second of
 * margin, so that a short interval with a long request timeout still settles calls. */
static long sweeper_lease_s(const struct dialer_config *conf)
{
	long lease_s = (long)conf->sweep_interval_s * 3;
	long need_s = (long)((conf->request_timeout_ms + 999) / 1000) + 2;

	if (lease_s < 5)
		lease_s = 5;
	return lease_s < need_s ? need_s : lease_s;
}

/* One round: lease a batch and settle it while the lease is surely ours. */
static void sweeper_round(struct sweeper *s)
{
	long lease_s = sweeper_lease_s(s->conf);
	int64_t lease_end;
	int n = 0;

	if (db_ensure(s->db))
		return;
	if (store_call_lease_stuck(s->db, (long)s->conf->sweep_age_s, lease_s, s->rows,
	                           (int)s->conf->sweep_batch, &n)) {
		log_warn("sweeper: lease failed", LOGS("error", db_errmsg(s->db)));
		return;
	}
	lease_end = time_mono_ms() + lease_s * 1000 - 1000;
	for (int i = 0; i < n; i++) {
		if (time_mono_ms() + s->conf->request_timeout_ms > lease_end) {
			log_info("sweeper: lease running out; the rest waits for the next round",
			         LOGI("left", n - i));
			break;
		}
		if (sweeper_one(s, &s->rows[i])) {
			log_warn("sweeper: database error", LOGS("error", db_errmsg(s->db)));
			break;
		}
		if (atomic_load(&s->stop))
			break;
	}
}

static void *sweeper_main(void *arg)
{
	struct sweeper *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!atomic_load(&s->stop)) {
		/* monotonic: a wall-clock step backwards must not stall the sweeper */
		(void)time_cond_wait_ms(&s->cv, &s->mu, (long)s->conf->sweep_interval_s * 1000);
		if (atomic_load(&s->stop))
			break;
		pthread_mutex_unlock(&s->mu);
		sweeper_round(s);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

struct sweeper *sweeper_start(const struct dialer_config *conf, struct metrics *m, char *errstr,
                              size_t errstr_size)
{
	struct sweeper *s = calloc(1, sizeof *s);
	CURLcode rc = CURLE_OK;

	if (!s) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	s->conf = conf;
	s->m = m;
	if (time_cond_init(&s->cv)) {
		snprintf(errstr, errstr_size, "cannot initialise a condition variable");
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->rows = calloc((size_t)conf->sweep_batch, sizeof *s->rows);
	s->db = db_open(conf->database_url, conf->db_schema, errstr, errstr_size);
	if (!s->rows || !s->db)
		goto fail;
	db_require_version(s->db, DB_SCHEMA_MIN_VERSION);
	s->resp.max = SWEEP_BODY_MAX;
	s->headers = el_headers(conf->el_api_key, false);
	s->easy = curl_easy_init();
	if (!s->easy || !s->headers) {
		snprintf(errstr, errstr_size, "curl init failed");
		goto fail;
	}
	rc = el_easy_setup(s->easy, s->headers, (long)conf->request_timeout_ms,
	                   (long)conf->connect_timeout_ms, &s->resp);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(s->easy, CURLOPT_XFERINFOFUNCTION, sweeper_on_progress);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(s->easy, CURLOPT_XFERINFODATA, s);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(s->easy, CURLOPT_NOPROGRESS, 0L);
	if (rc != CURLE_OK) {
		snprintf(errstr, errstr_size, "curl setup: %s", curl_easy_strerror(rc));
		goto fail;
	}
	if (pthread_create(&s->thread, NULL, sweeper_main, s)) {
		snprintf(errstr, errstr_size, "cannot start the sweeper thread");
		goto fail;
	}
	s->started = true;
	return s;
fail:
	sweeper_stop(s);
	return NULL;
}

void sweeper_stop(struct sweeper *s)
{
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		atomic_store(&s->stop, true);
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	if (s->easy)
		curl_easy_cleanup(s->easy);
	curl_slist_free_all(s->headers);
	db_close(s->db);
	free(s->rows);
	el_body_free(&s->resp);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
