/* transcriber_it: what the transcriber's integration tests share: a schema and a devbroker per
 * test, call rows through store_calls, webhook messages produced as the ingress would (keyed by
 * call_sid, encoded with codec), the real transcriber binary, and checks on tables and topics. */
#ifndef CALLPIPE_TRANSCRIBER_IT_H
#define CALLPIPE_TRANSCRIBER_IT_H

#include "tsupport.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct db;
struct kbus_producer;

struct trit {
	char schema[64];
	struct ts_broker broker;
	struct kbus_producer *producer;
	struct db *db; /* connected to schema */
};

struct trit_proc {
	struct ts_proc proc;
	unsigned port; /* health and metrics */
};

/* A fresh migrated schema named after name, a devbroker with partitions per topic, a producer
 * and a database connection. trit_teardown undoes it all. */
void trit_setup(struct trit *t, const char *name, int partitions);
void trit_teardown(struct trit *t);

/* Inserts a call row (in_progress) and optionally sets its conversation_id (NULL: none) and
 * makes it failed with reason (NULL: stays in_progress). */
void trit_call(struct trit *t, const char *call_sid, const char *conversation_id,
               const char *failed_reason);

/* Produces (asynchronously; trit_flush waits) a per-turn line keyed by call_sid. */
void trit_line(struct trit *t, const char *call_sid, const char *event_id, const char *speaker,
               const char *message);
/* Produces lines first..last of call_sid and waits for them: event_id "<call_sid>-ev-<i>",
 * message "<prefix> <i>", speaker agent for odd i, user for even i. */
void trit_lines(struct trit *t, const char *call_sid, const char *prefix, int first, int last);
/* Produces a post-call message; body is stolen. call_sid may be NULL (key: conversation_id). */
void trit_post_call(struct trit *t, const char *call_sid, const char *event_id, json_t *body);
/* A post_call_transcription body with turns "agent"/"user" alternating, texts[0..n). */
json_t *trit_transcript_body(const char *call_sid, const char *conversation_id,
                             const char *const *texts, size_t n);
/* Produces raw bytes to the base topic (e.g. "webhooks.transcription"). */
void trit_raw(struct trit *t, const char *base_topic, const char *key, const char *value);
void trit_flush(struct trit *t);

/* Starts the transcriber against t with group and extra "KEY=VALUE" env entries (NULL-ended, may
 * be NULL); waits until /healthz answers. */
void trit_start(struct trit *t, struct trit_proc *p, const char *group, const char *const *env);
/* The same with another build of the transcriber: name is the binary ("transcriber-faults"). */
void trit_start_bin(struct trit *t, struct trit_proc *p, const char *name, const char *group,
                    const char *const *env);
/* SIGTERM and wait: asserts a clean exit 0. */
void trit_stop(struct trit_proc *p);

/* Runs `transcriber <args...>` (replay, redrive) to completion; returns its stdout (malloc'd) and
 * asserts exit status 0. */
char *trit_run(struct trit *t, const char *const *args, const char *const *env);
/* The same with the binary name, returning its exit status; *out gets its stdout (malloc'd). */
int trit_run_bin(struct trit *t, const char *name, const char *const *args, const char *const *env,
                 char **out);

/* Polls the query (first column, integer) until it equals expect or timeout_ms passes; returns
 * the last value. */
long long trit_wait_ll(struct trit *t, const char *sql, long long expect, int timeout_ms);
/* Waits until the call call_sid matches where (a condition on calls, e.g. "status = 'failed'"):
 * true, or false after timeout_ms. */
bool trit_wait_call(struct trit *t, const char *call_sid, const char *where, int timeout_ms);
long long trit_ll(struct trit *t, const char *sql);

/* The value of one series of the transcriber's /metrics (exact text before the value, e.g.
 * "transcriber_dead_lettered_total{reason=\"bad_message\"}"); 0 when absent. */
double trit_metric(const struct trit_proc *p, const char *series);

/* Polls GET /readyz until it answers 200 or timeout_ms passes; returns the last status. */
long trit_wait_ready(const struct trit_proc *p, int timeout_ms);

/* Messages now in the dead-letter topic of base_topic. */
size_t trit_dlq(struct trit *t, const char *base_topic, struct ts_kmsg **out);

/* Asserts conversation_id has exactly lines "<prefix> 1".."<prefix> n" with sequence numbers
 * 1..n in that order. */
void trit_assert_lines(struct trit *t, const char *conversation_id, const char *prefix, int n);

#endif
