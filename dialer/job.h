/* job: one consumed calls.requested message on its way through the dialer: decoded, its
 * outbound-call body built, then its database work (insert, claim, outcome) and DLQ hand-off. */
#ifndef CALLPIPE_DIALER_JOB_H
#define CALLPIPE_DIALER_JOB_H

#include "dial.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

struct db;
struct dialer_config;
struct kbus_header;
struct kbus_producer;

struct job {
	struct job *next; /* queue link */
	int32_t partition;
	int64_t offset;
	char *key, *value; /* copies of the message (for the DLQ) */
	size_t key_len, value_len;
	struct kbus_header *headers; /* copies of the message's headers (for the DLQ) */
	size_t nheaders;
	bool dlq;            /* goes to the dead-letter topic instead of being dialled */
	char dlq_reason[64]; /* "decode_error", "db_permanent" */
	char error[512];     /* why (DLQ header, logs) */
	char call_sid[256], driver_id[256], trip_id[256];
	bool has_trip;
	char *body; /* outbound-call request JSON */
	/* the dial's outcome, set by job_set_outcome */
	enum dial_status status;
	char conversation_id[256];
	char reason[600];
};

/* A FIFO of jobs linked through job->next (zero-initialise). */
struct job_queue {
	struct job *head, *tail;
	size_t count;
};

void job_queue_push(struct job_queue *q, struct job *j);
struct job *job_queue_pop(struct job_queue *q); /* NULL when empty */

/* Builds a job from a consumed message: decodes it (a bad one becomes a DLQ job with the
 * decoder's error) and builds the request body from conf. NULL only on allocation failure.
 * The caller owns the job (job_free). */
struct job *job_from_message(const rd_kafka_message_t *rkm, const struct dialer_config *conf);
void job_free(struct job *j);

enum job_db_result {
	JOB_DB_OK,        /* done */
	JOB_DB_TRANSIENT, /* database unreachable/overloaded: retry later, nothing decided */
	JOB_DB_PERMANENT, /* the statement can never succeed for this job */
};

/* The exactly-once step: inserts the call row (or finds it) and claims the dial. *claimed true:
 * dial now; false: a dial was already attempted for this call_sid (never dial again). */
enum job_db_result job_claim(struct db *db, struct job *j, bool *claimed);

/* Copies a dial outcome into the job. */
void job_set_outcome(struct job *j, const struct dial_outcome *out);

/* Stores the outcome: conversation_id, or status failed with the reason. An unknown outcome
 * (DIAL_UNKNOWN: the call may have been placed) stores nothing: the row stays in_progress and
 * claimed, for the post-call webhook or the sweeper. */
enum job_db_result job_record(struct db *db, const struct job *j);

/* Dead-letters a DLQ job (j->dlq) to source_topic's ".dlq" through common/deadletter: its
 * original key, value and headers plus the one header set of every worker (attempts 1: a dialer
 * dead letter is decided on the first try). Waits up to timeout_ms for the broker. Returns 0, or
 * -1 with errstr (nothing is known to be written: retry later). */
__attribute__((warn_unused_result)) int job_dead_letter(struct kbus_producer *p,
                                                        const char *source_topic,
                                                        const struct job *j, int timeout_ms,
                                                        char *errstr, size_t errstr_size);

#endif
