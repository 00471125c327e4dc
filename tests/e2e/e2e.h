/* e2e: the end-to-end harness: the whole pipeline (devbroker, Postgres schema, elevensim,
 * ingress, dialers, transcribers) as real processes, a driver that posts BatchCallRequests, and
 * the checks that compare the final state in Postgres and GET /calls/{call_sid} with what
 * elevensim says it did. Failures abort the test (cmocka). */
#ifndef CALLPIPE_E2E_H
#define CALLPIPE_E2E_H

#include "tsupport.h"

#include <stdbool.h>
#include <stddef.h>

#define E2E_MAX_WORKERS 4
#define E2E_MAX_ENV     48

/* ---- environment lists ("KEY=VALUE", NULL-terminated) ---- */
struct e2e_env {
	char *items[E2E_MAX_ENV + 1];
	int n;
};
void e2e_env_add(struct e2e_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void e2e_env_addv(struct e2e_env *env, const char *const *items); /* NULL-terminated */
void e2e_env_free(struct e2e_env *env);

/* ---- the stack ---- */
struct e2e_opts {
	const char *name;               /* test name: schema prefix, log names */
	int partitions;                 /* of the topics of design.md §4 (default 6) */
	int ndialers, ntranscribers;    /* started by e2e_stack_start (default 1 each) */
	const char *const *sim_args;    /* extra elevensim argv entries, NULL-terminated */
	const char *const *worker_env;  /* extra env for dialers and transcribers */
	const char *const *ingress_env; /* extra env for the ingress */
	const char *pg_url;             /* a private Postgres (NULL: the ctest fixture's) */
	/* Kafka mode only: a broker of the test's own (ts_broker_start_kafka_private), for tests
	 * that kill it; otherwise ts_broker_start's (a devbroker, or topics on the shared Kafka) */
	bool private_kafka;
};

struct e2e_worker {
	struct ts_proc proc;
	unsigned port; /* HTTP_LISTEN (health, metrics) */
	bool running;
	int starts;
};

struct e2e_stack {
	struct e2e_opts opts;
	char schema[64];
	char token[48], secret[48], api_key[48];
	struct ts_broker broker;
	struct ts_proc sim, ingress;
	unsigned sim_port, ingress_port;
	char sim_url[64], ingress_url[64];
	struct e2e_worker dialers[E2E_MAX_WORKERS], transcribers[E2E_MAX_WORKERS];
	int ndialers, ntranscribers;
	bool up; /* started and not yet stopped (for e2e_stack_abort) */
};

/* Creates the schema (migrated), starts the broker (ts_broker_start), elevensim, the ingress and
 * the workers, and waits until each answers /healthz (ingress: /readyz). */
void e2e_stack_start(struct e2e_stack *s, const struct e2e_opts *opts);
/* SIGTERMs everything (workers first) and checks that each worker drained and exited 0;
 * drops the schema and stops the broker (on the shared Kafka: deletes the test's topics). */
void e2e_stack_stop(struct e2e_stack *s);

/* After a failed test: SIGKILLs whatever still runs, keeps the schema and logs for a post-mortem
 * (their names are printed). Does nothing when the stack was stopped. */
void e2e_stack_abort(struct e2e_stack *s);

/* Environment every callpipe service gets (Kafka, database, ElevenLabs, secrets), into env. */
void e2e_stack_service_env(const struct e2e_stack *s, struct e2e_env *env);

/* Starts (again) worker i; kind "dialer" or "transcriber". */
void e2e_worker_start(struct e2e_stack *s, const char *kind, int i);
/* Sends sig to worker i and waits for it; returns ts_proc_stop's result. */
int e2e_worker_stop(struct e2e_stack *s, const char *kind, int i, int sig, int timeout_ms);

/* Sum of the series of metric name at base_url/metrics whose label set contains every string of
 * filters (NULL-terminated, may be NULL: all series); -1 when there is none / unreachable. */
double e2e_metric(const char *base_url, const char *name, const char *const *filters);
/* Prints the last lines of every process log of the stack (on failures). */
void e2e_stack_dump_logs(const struct e2e_stack *s, int lines);

/* ---- cmocka fixture: the stack, plus a private Postgres when a test needs one ---- */
struct e2e_fixture {
	struct e2e_stack stack;
	char pg_dir[300]; /* "" unless e2e_private_pg_start was called */
};
/* cmocka setup/teardown: *state is a struct e2e_fixture; teardown aborts what still runs. */
int e2e_setup(void **state);
int e2e_teardown(void **state);
/* Starts a Postgres of the test's own (scripts/pg start in a temp dir); writes its URL. */
void e2e_private_pg_start(struct e2e_fixture *f, char *url, size_t size);
/* scripts/pg pause|resume|stop on that cluster (pause keeps the data: an outage). */
void e2e_private_pg(struct e2e_fixture *f, const char *cmd);

/* ---- the driver ---- */
struct e2e_run {
	char stamp[40]; /* the requests' timestamp: call_sid = EL_{driverId}_{stamp} */
	char tag[16];   /* driverId = {tag}{index:04d} */
	char **sids;    /* accepted call_sids in posting order */
	int nsids;
	int ncalls;      /* drivers requested */
	int retries_503; /* requests answered 503 and retried */
};

/* Starts a run of ncalls drivers (nothing posted yet). */
void e2e_run_init(struct e2e_run *run, const char *tag, int ncalls);
/* Posts drivers [first, first + n) in one request, retrying it while answered 503 (the same
 * body: idempotent). Fails the test on any other answer than 202 or a wrong call_sid. */
void e2e_post_batch(const struct e2e_stack *s, struct e2e_run *run, int first, int n);
/* e2e_run_init + posts ncalls drivers in requests of per_request drivers, gap_ms apart; retries a
 * request answered 503 (the same body: idempotent) until it is accepted. Fails the test on any
 * other answer than 202. The run's call_sids must match the 202 answers. */
void e2e_post_calls(const struct e2e_stack *s, struct e2e_run *run, const char *tag, int ncalls,
                    int per_request, int gap_ms);
void e2e_run_free(struct e2e_run *run);

/* Posts one signed webhook to the ingress (path "transcription" or "post-call"); returns the HTTP
 * status, and the event_id of a 200 answer in event_id (may be NULL). */
long e2e_post_webhook(const struct e2e_stack *s, const char *path, const char *body, char *event_id,
                      size_t event_id_size);

/* ---- the final state ---- */
struct e2e_expect {
	int turns; /* lines per successful call */
	/* a dialer was killed: a call whose dial it claimed but never sent, or whose refusal it
	 * never stored, may end failed/dial_outcome_unknown (it is never dialled again) */
	bool allow_lost_answers;
	int timeout_ms; /* how long the pipeline may take to settle */
};

struct e2e_summary {
	int completed, failed_api, failed_init, failed_unknown;
	long long lines;
	int dlq_transcription, dlq_post_call, dlq_requested;
	int conversations;         /* calls elevensim placed a conversation for */
	int raced;                 /* calls whose first webhook came before the API answer */
	int webhooks_given_up;     /* webhooks elevensim stopped retrying */
	long long outcome_unknown; /* calls failed as dial_outcome_unknown (answer lost) */
};

/* Waits until every call of run reached the state elevensim's GET /sim/stats implies, then
 * asserts it call by call in Postgres and via GET /calls/{call_sid}: exactly one dial per
 * call_sid; completed calls have conversation_id, call_end_time and lines 1..turns in the sim's
 * order (speaker and message), no gap, no duplicate; failed calls have the API's reason and no
 * line, and a late webhook posted for each is dead-lettered as call_failed; no dead letter for a
 * completed call, none on calls.requested.dlq. Fails early when requests are dead-lettered. */
void e2e_check_final(const struct e2e_stack *s, const struct e2e_run *run,
                     const struct e2e_expect *exp, struct e2e_summary *sum);

/* Row count of a table of the stack's schema. */
long long e2e_count_rows(const struct e2e_stack *s, const char *table);
/* Every call (final fields) and line (id, sequence, speaker, message, event_id) as one text, to
 * compare before and after a replay. malloc'd. */
char *e2e_db_snapshot(const struct e2e_stack *s);
/* The "inserted" figure of a `transcriber replay` summary; -1 when it has none. */
long long e2e_replay_inserted(const char *summary);

#endif
