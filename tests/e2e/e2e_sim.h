/* e2e_sim: elevensim as the e2e tests see it: its command-line knobs and what GET /sim/stats
 * says it did for each call_sid (requests received, how it answered, the lines it sent). */
#ifndef CALLPIPE_E2E_SIM_H
#define CALLPIPE_E2E_SIM_H

#include <stdbool.h>

struct e2e_stack;

/* elevensim knobs (argv pairs). */
#define E2E_STR_(x)                         #x
#define E2E_STR(x)                          E2E_STR_(x)
#define E2E_SIM_TURNS(n)                    "--turns", E2E_STR(n)
#define E2E_SIM_TURN_DELAY_MS(v)            "--turn-delay-ms", v
#define E2E_SIM_LATENCY_MS(v)               "--latency-ms", v
#define E2E_SIM_RACE_SHARE(v)               "--race-share", v
#define E2E_SIM_INITIATION_FAILURE_SHARE(v) "--initiation-failure-share", v
#define E2E_SIM_SEED(v)                     "--seed", v
/* "5 % API failures": half 500 (not retried), half 200 {success: false}; plus 3 % answered 503,
 * which the dialer retries (the retry is answered by a fresh draw). */
#define E2E_SIM_API_FAILURES_5PCT \
	"--500-share", "0.025", "--fail-share", "0.025", "--503-share", "0.03"

enum e2e_sim_outcome {
	E2E_SIM_NONE,               /* never dialled */
	E2E_SIM_OK,                 /* accepted, the call played, post_call_transcription sent */
	E2E_SIM_API_ERROR,          /* refused (success:false or a 4xx/5xx as the last answer) */
	E2E_SIM_INITIATION_FAILURE, /* accepted, then call_initiation_failure sent */
};

struct e2e_sim_call {
	char call_sid[256];
	int requests; /* outbound-call requests received for it */
	int finals;   /* of those, answered with a final outcome (not 429/503): real dials */
	bool request_after_final; /* a request arrived after a final answer: a second dial */
	int last_answer;          /* HTTP status of the last answer (0: none / hung) */
	enum e2e_sim_outcome outcome;
	char conversation_id[128];
	char mode[32];       /* normal, race, initiation_failure */
	int webhooks_failed; /* webhooks it gave up on after its retries */
	int nlines;          /* the conversation's transcript (-1: not fetched) */
	char **speakers, **messages;
};

struct e2e_sim;

/* GET /sim/stats of the stack's elevensim (fails the test when unreachable); with transcripts,
 * also each played conversation's transcript (GET /v1/convai/conversations/{id}). Caller
 * frees. */
struct e2e_sim *e2e_sim_stats(const struct e2e_stack *s, bool transcripts);
/* Conversations elevensim placed in all (a call placed twice counts twice). */
long long e2e_sim_conversations(const struct e2e_sim *sim);
void e2e_sim_free(struct e2e_sim *sim);
/* NULL when elevensim never heard of call_sid. Borrowed from sim. */
const struct e2e_sim_call *e2e_sim_find(const struct e2e_sim *sim, const char *call_sid);
const char *e2e_sim_outcome_str(enum e2e_sim_outcome o);

/* The message elevensim puts in a 200 {success: false, message} answer. */
#define E2E_SIM_REFUSAL_MESSAGE "Failed to initiate the call: number unreachable"

/* Environment for workers that makes them react within a test's time: short consumer session
 * timeouts (E2E_SESSION_TIMEOUT_MS), a quick stuck-call sweeper, bounded retries.
 * NULL-terminated. */
#define E2E_SESSION_TIMEOUT_MS 6000
extern const char *const e2e_worker_env_fast[];
/* The same for tests that kill dialers with dials in flight: those dials are settled by the
 * sweeper (dial_outcome_unknown) within about 30 s instead of 75. */
extern const char *const e2e_worker_env_kill[];

#endif
