/* job: decoding a calls.requested message into a dial job, and the job's database steps. */
#include "job.h"

#include "calltoken.h"
#include "codec.h"
#include "config.h"
#include "db.h"
#include "deadletter.h"
#include "log.h"
#include "prompt.h"
#include "store_calls.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *job_dup(const void *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s) {
		if (len)
			memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

void job_queue_push(struct job_queue *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->count++;
}

struct job *job_queue_pop(struct job_queue *q)
{
	struct job *j = q->head;

	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		q->count--;
		j->next = NULL;
	}
	return j;
}

void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->key);
	free(j->value);
	deadletter_headers_free(j->headers, j->nheaders);
	free(j->body);
	free(j);
}

/* Fills the call fields and the body from a decoded message. Returns 0, or -1 with j->error. */
static int job_build(struct job *j, const struct codec_call_requested *m,
                     const struct dialer_config *conf)
{
	const char *trip = m->trip_id;
	struct prompt_input in;
	char token[CALLTOKEN_SIZE] = "";
	json_t *body;

	if (!trip && json_is_object(m->violations))
		trip = json_string_value(json_object_get(m->violations, "tripId"));
	snprintf(j->call_sid, sizeof j->call_sid, "%s", m->call_sid);
	snprintf(j->driver_id, sizeof j->driver_id, "%s", m->driver_id);
	j->has_trip = trip && *trip;
	snprintf(j->trip_id, sizeof j->trip_id, "%s", j->has_trip ? trip : "");
	/* The agent's tool sends it back with every line; it is good for this call_sid only, and
	 * from now (retries and the conversation included) for the configured time. */
	if (conf->call_token_secret && conf->call_token_secret[0] &&
	    calltoken_sign(conf->call_token_secret, m->call_sid,
	                   time_now_ms() / 1000 + conf->call_token_ttl_s, token, sizeof token)) {
		snprintf(j->error, sizeof j->error, "could not make the call token");
		return -1;
	}
	in = (struct prompt_input){
	    .call_sid = m->call_sid,
	    .driver_id = m->driver_id,
	    .driver_name = m->driver_name,
	    .phone_number = m->phone_number,
	    .trip_id = trip,
	    .call_type = m->call_type,
	    .custom_rules = m->custom_rules,
	    .violations = m->violations,
	    .dispatcher_name = conf->dispatcher_name,
	    .transfer_to = conf->transfer_number,
	    .call_token = token,
	};
	body = prompt_outbound_body(&in, conf->el_agent_id, conf->el_phone_number_id);
	j->body = body ? codec_dump(body, NULL) : NULL;
	json_decref(body);
	if (!j->body) {
		snprintf(j->error, sizeof j->error, "could not build the outbound-call body");
		return -1;
	}
	return 0;
}

struct job *job_from_message(const rd_kafka_message_t *rkm, const struct dialer_config *conf)
{
	struct job *j = calloc(1, sizeof *j);
	struct codec_call_requested m;
	char err[400];

	if (!j)
		return NULL;
	j->partition = rkm->partition;
	j->offset = rkm->offset;
	j->key = job_dup(rkm->key ? rkm->key : "", rkm->key ? rkm->key_len : 0);
	j->key_len = rkm->key ? rkm->key_len : 0;
	j->value = job_dup(rkm->payload ? rkm->payload : "", rkm->payload ? rkm->len : 0);
	j->value_len = rkm->payload ? rkm->len : 0;
	if (!j->key || !j->value || deadletter_headers_copy(rkm, &j->headers, &j->nheaders)) {
		job_free(j);
		return NULL;
	}
	memset(&m, 0, sizeof m);
	if (codec_call_requested_decode(j->value, j->value_len, &m, err, sizeof err)) {
		j->dlq = true;
		snprintf(j->dlq_reason, sizeof j->dlq_reason, "decode_error");
		snprintf(j->error, sizeof j->error, "%s", err);
		snprintf(j->call_sid, sizeof j->call_sid, "%.*s",
		         (int)(j->key_len < 255 ? j->key_len : 255), j->key);
		return j;
	}
	if (job_build(j, &m, conf)) {
		j->dlq = true;
		snprintf(j->dlq_reason, sizeof j->dlq_reason, "build_error");
	}
	codec_call_requested_clear(&m);
	return j;
}

static enum job_db_result job_db_error(struct db *db, const struct job *j, const char *what)
{
	enum db_errclass cls = db_errclass(db);

	if (cls == DB_ERR_PERMANENT) {
		log_error("dialer: database refused a statement", LOGS("call_sid", j->call_sid),
		          LOGS("step", what), LOGS("sqlstate", db_sqlstate(db)),
		          LOGS("error", db_errmsg(db)));
		return JOB_DB_PERMANENT;
	}
	log_warn("dialer: database unavailable", LOGS("call_sid", j->call_sid), LOGS("step", what),
	         LOGS("error", db_errmsg(db)));
	return JOB_DB_TRANSIENT;
}

enum job_db_result job_claim(struct db *db, struct job *j, bool *claimed)
{
	bool created = false;

	*claimed = false;
	if (store_call_insert(db, j->call_sid, j->driver_id, j->has_trip ? j->trip_id : NULL,
	                      &created))
		return job_db_error(db, j, "insert");
	if (store_call_claim_dial(db, j->call_sid, claimed))
		return job_db_error(db, j, "claim");
	log_debug("dialer: call row ready", LOGS("call_sid", j->call_sid),
	          LOGS("row", created ? "created" : "existing"),
	          LOGS("claimed", *claimed ? "yes" : "no"));
	return JOB_DB_OK;
}

void job_set_outcome(struct job *j, const struct dial_outcome *out)
{
	j->status = out->status;
	snprintf(j->conversation_id, sizeof j->conversation_id, "%s", out->conversation_id);
	snprintf(j->reason, sizeof j->reason, "%s", out->reason);
}

enum job_db_result job_record(struct db *db, const struct job *j)
{
	bool changed = false;

	if (j->status == DIAL_OK) {
		if (!j->conversation_id[0]) {
			log_warn("dialer: API accepted the call without a conversation_id; the "
			         "post-call "
			         "webhook or the sweeper will settle it",
			         LOGS("call_sid", j->call_sid));
			return JOB_DB_OK;
		}
		if (store_call_set_conversation(db, j->call_sid, j->conversation_id, &changed))
			return job_db_error(db, j, "set_conversation");
		if (!changed)
			log_info(
			    "dialer: conversation_id was already set (post-call webhook first?)",
			    LOGS("call_sid", j->call_sid),
			    LOGS("conversation_id", j->conversation_id));
		return JOB_DB_OK;
	}
	if (j->status == DIAL_UNKNOWN) {
		/* The call may exist: leave the row as a crash between claim and answer would
		 * (in_progress, claimed, no conversation_id). Its post-call webhook fills in the
		 * conversation_id and completes it; without one the sweeper fails it as
		 * dial_outcome_unknown. Never dialled again: the claim is taken. */
		log_warn("dialer: dial outcome unknown: left in_progress for the post-call webhook "
		         "or the sweeper",
		         LOGS("call_sid", j->call_sid));
		return JOB_DB_OK;
	}
	if (store_call_set_failed(db, j->call_sid, j->reason, &changed))
		return job_db_error(db, j, "set_failed");
	if (!changed)
		log_info("dialer: call already final, failure not recorded",
		         LOGS("call_sid", j->call_sid), LOGS("reason", j->reason));
	return JOB_DB_OK;
}

int job_dead_letter(struct kbus_producer *p, const char *source_topic, const struct job *j,
                    int timeout_ms, char *errstr, size_t errstr_size)
{
	const struct deadletter l = {
	    .source_topic = source_topic,
	    .partition = j->partition,
	    .offset = j->offset,
	    .key = j->key,
	    .key_len = j->key_len,
	    .value = j->value,
	    .value_len = j->value_len,
	    .headers = j->headers,
	    .nheaders = j->nheaders,
	    .reason = j->dlq_reason,
	    .last_error = j->error,
	    .attempts = 1,
	};

	return deadletter_send(p, &l, timeout_ms, errstr, errstr_size);
}
