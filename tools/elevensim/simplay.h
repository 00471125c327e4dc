/* simplay: elevensim's clockwork. A timer thread runs delayed callbacks (answers held for the
 * configured latency); webhook threads play conversations turn by turn, signing (or, for an agent
 * tool's lines, tokening) and POSTing each webhook to the ingress and retrying non-200 answers with
 * backoff, so the API never waits on them. */
#ifndef CALLPIPE_ELEVENSIM_SIMPLAY_H
#define CALLPIPE_ELEVENSIM_SIMPLAY_H

#include <stddef.h>

struct sim_conf;
struct sim_store;
struct sim_play;

typedef void sim_timer_fn(void *arg);

/* Starts the timer thread and nthreads webhook threads. secret may be "" (unsigned webhooks);
 * tool_secret (may be "") goes with the tool lines of calls that have a call_token. conf and
 * store are borrowed. NULL + errstr on failure. */
struct sim_play *sim_play_start(struct sim_conf *conf, struct sim_store *store, const char *secret,
                                const char *tool_secret, int nthreads, char *errstr,
                                size_t errstr_size);

/* Stops every thread. Callbacks still pending run at once (so held answers are released);
 * later sim_play_after calls run their callback synchronously. NULL ok. */
void sim_play_stop(struct sim_play *p);

/* Frees a stopped p (NULL ok). */
void sim_play_free(struct sim_play *p);

/* Runs fn(arg) on the timer thread once delay_ms passed. Returns 0, or -1 (fn not called). */
int sim_play_after(struct sim_play *p, long delay_ms, sim_timer_fn *fn, void *arg);

/* Plays conversation conv_id starting after delay_ms. first_done (may be NULL) is called
 * exactly once, right after the first webhook was attempted (or when there is none). */
int sim_play_conversation(struct sim_play *p, const char *conv_id, long delay_ms,
                          sim_timer_fn *first_done, void *first_arg);

#endif
