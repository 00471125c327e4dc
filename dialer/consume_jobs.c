/* consume_jobs: a consumed call's way through the dialer: a dead letter, or insert + claim in
 * the database, the dial, and its stored outcome; each finished message is marked done for the
 * commit. */
#include "consume_int.h"

#include "config.h"
#include "db.h"
#include "dial.h"
#include "log.h"
#include "metrics.h"
#include "offtrack.h"

#include <stdio.h>

#define CONSUME_DLQ_TIMEOUT 10000

void consume_dial_done(void *opaque, void *user, const struct dial_outcome *out)
{
	struct consume *c = opaque;
	struct job *j = user;

	job_set_outcome(j, out);
	job_queue_push(&c->outcomes, j);
}

static void consume_handled(struct consume *c, struct job *j)
{
	offtrack_done(c->offsets, c->topic, j->partition, j->offset);
	job_free(j);
}

/* Publishes a DLQ job (job_dead_letter). Returns 0 (handled) or -1 (retry later). */
static int consume_dead_letter(struct consume *c, struct job *j)
{
	char err[256];

	if (job_dead_letter(c->producer, c->topic, j, CONSUME_DLQ_TIMEOUT, err, sizeof err)) {
		log_warn("dialer: dead-letter publish failed", LOGS("call_sid", j->call_sid),
		         LOGS("error", err));
		return -1;
	}
	metric_inc(c->m_dlq);
	log_error("dialer: message sent to the dead-letter topic", LOGS("call_sid", j->call_sid),
	          LOGS("reason", j->dlq_reason), LOGS("error", j->error),
	          LOGI("partition", j->partition), LOGI("offset", j->offset));
	return 0;
}

int consume_start(struct consume *c)
{
	int n = 0;
	struct job *j;

	while ((j = c->backlog.head) && !c->stalled) {
		bool claimed = false;

		if (j->dlq) {
			if (consume_dead_letter(c, j)) {
				consume_stall(c);
				break;
			}
			consume_handled(c, job_queue_pop(&c->backlog));
			n++;
			continue;
		}
		if (!dial_engine_can_start(c->engine))
			break;
		switch (job_claim(c->db, j, &claimed)) {
		case JOB_DB_OK:
			break;
		case JOB_DB_TRANSIENT:
			consume_stall(c);
			return n;
		case JOB_DB_PERMANENT:
			j->dlq = true;
			snprintf(j->dlq_reason, sizeof j->dlq_reason, "db_permanent");
			snprintf(j->error, sizeof j->error, "%s", db_errmsg(c->db));
			continue;
		}
		job_queue_pop(&c->backlog);
		n++;
		if (!claimed) {
			metric_inc(c->m_duplicate);
			log_info("dialer: dial already attempted for this call, not dialling again",
			         LOGS("call_sid", j->call_sid), LOGI("partition", j->partition),
			         LOGI("offset", j->offset));
			consume_handled(c, j);
			continue;
		}
		metric_inc(c->m_dialled);
		if (dial_engine_submit(c->engine, j->call_sid, j->body, j)) {
			struct dial_outcome out = {
			    .status = DIAL_FAILED,
			    .conversation_id = "",
			    .reason = "dialer could not set up the request",
			};

			consume_dial_done(c, j, &out);
		}
	}
	return n;
}

int consume_record(struct consume *c)
{
	int n = 0;
	struct job *j;

	while ((j = c->outcomes.head) && !c->stalled) {
		if (job_record(c->db, j) == JOB_DB_TRANSIENT) {
			consume_stall(c);
			break;
		}
		consume_handled(c, job_queue_pop(&c->outcomes));
		n++;
	}
	return n;
}
