/* dialer_it: what the dialer and elevensim integration tests share: starting elevensim and
 * dialers against the test's broker (a private devbroker, or real Kafka) and a test schema,
 * publishing calls.requested messages, reading elevensim's /sim/stats, a dialer's /metrics and
 * call rows. Where a function takes a topic prefix, it is the one the broker was started with
 * (checked); topics and the group are the broker's own (b->prefix, ts_broker_group). */
#ifndef CALLPIPE_DIALER_IT_H
#define CALLPIPE_DIALER_IT_H

#include "store_calls.h"
#include "tsupport.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define DIT_API_KEY  "it-xi-key-0123456789"
#define DIT_AGENT    "agent_it"
#define DIT_PHONE_ID "phnum_it"
#define DIT_SECRET   "whsec_dialer_it_0123"

struct dit_sim {
	struct ts_proc proc;
	char url[128]; /* "http://127.0.0.1:port" */
};

/* Starts elevensim on a free port with the API key above and 2 turns 50 ms apart, then args
 * (NULL-terminated extra flags, may be NULL; later flags win) and env (may be NULL). */
void dit_sim_start(struct dit_sim *s, const char *const *args, const char *const *env);
void dit_sim_stop(struct dit_sim *s);
/* PUT /sim/config with json; fails the test unless 200. */
void dit_sim_config(const struct dit_sim *s, const char *json);
/* GET /sim/stats?call_sid=: the call's object (new reference) or NULL when unknown. */
json_t *dit_sim_call(const struct dit_sim *s, const char *call_sid);
/* GET /sim/stats totals (new reference). */
json_t *dit_sim_totals(const struct dit_sim *s);
/* Outbound-call requests elevensim received for call_sid (0 when none). */
int dit_sim_requests(const struct dit_sim *s, const char *call_sid);

/* What most dialer tests run on: a migrated test schema, the test's broker and elevensim. */
struct dit_stack {
	char schema[64];
	struct ts_broker broker;
	struct dit_sim sim;
};

/* A schema named after name, a broker (ts_broker_start: topic prefix, partitions per topic) and
 * elevensim started with sim_args (dit_sim_start; may be NULL). */
void dit_stack_start(struct dit_stack *st, const char *name, const char *prefix, int partitions,
                     const char *const *sim_args);
/* Stops elevensim and the broker and drops the schema (stop the dialers first). */
void dit_stack_stop(struct dit_stack *st);

struct dit_dialer {
	struct ts_proc proc;
	unsigned port;
	bool running;
};

/* Starts the dialer for the broker (its topics, and its name for the group "dialer"), schema and
 * elevensim URL with test-friendly settings (short session timeout and retries, sweeper off),
 * then extra "KEY=VALUE" (NULL-terminated, may be NULL; later entries win). Waits for
 * /healthz. */
void dit_dialer_start(struct dit_dialer *d, const struct ts_broker *b, const char *prefix,
                      const char *schema, const char *sim_url, const char *const *extra);
/* The same with another build of the dialer: name is the binary ("dialer-faults"). */
void dit_dialer_start_bin(struct dit_dialer *d, const char *name, const struct ts_broker *b,
                          const char *prefix, const char *schema, const char *sim_url,
                          const char *const *extra);
/* Sends sig and waits; returns the exit status (ts_proc_stop). No-op (-1) when not running. */
int dit_dialer_stop(struct dit_dialer *d, int sig, int timeout_ms);
/* Value of one series of the dialer's /metrics, e.g. "dialer_dials_started_total" or
 * "dialer_messages_total{result=\"dialled\"}"; 0 when absent. */
double dit_metric(const struct dit_dialer *d, const char *series);
/* The "count" of the dialer's last "kafka partitions assigned" log line (-1 when none). */
int dit_assigned(const struct dit_dialer *d);

/* Publishes a calls.requested message for call_sid (driver_id, a fixed name/phone/trip). */
void dit_publish(const struct ts_broker *b, const char *prefix, const char *call_sid,
                 const char *driver_id);

/* Publishes n requests with call_sids "<prefix_sid>%04d" (i = 0..n-1) through one producer,
 * waiting for every acknowledgement. */
void dit_publish_many(const struct ts_broker *b, const char *prefix, const char *sid_prefix, int n);

/* The call row of call_sid in schema; false when there is none. */
bool dit_call(const char *schema, const char *call_sid, struct store_call *out);
/* Waits until the row exists and its status is status (and, for in_progress, it has a
 * conversation_id); true when it happened within timeout_ms. */
bool dit_wait_call(const char *schema, const char *call_sid, const char *status, int timeout_ms);
/* Waits until elevensim received n requests for call_sid. */
bool dit_wait_requests(const struct dit_sim *s, const char *call_sid, int n, int timeout_ms);

#endif
