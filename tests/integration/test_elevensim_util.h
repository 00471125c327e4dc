/* test_elevensim_util: what the elevensim tests share (test_elevensim.c,
 * test_elevensim_webhooks.c): elevensim started once per test program with its webhooks going to
 * a receiver inside the test, a per-test reset, placing calls and reading JSON answers. */
#ifndef CALLPIPE_TEST_ELEVENSIM_UTIL_H
#define CALLPIPE_TEST_ELEVENSIM_UTIL_H

#include "dialer_it.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define EST_MAX_HOOKS   64
#define EST_TOOL_SECRET "est-tool-secret-0123456"

struct MHD_Daemon;

/* One webhook the receiver recorded; body is malloc'd and owned by the receiver. */
struct est_hook {
	char path[64];
	char signature[160];
	char call_token[128];  /* X-Callpipe-Call-Token ("" when absent) */
	char tool_secret[128]; /* X-Callpipe-Tool-Secret ("" when absent) */
	char *body;
	long long at_ms;
};

/* The webhook receiver: records every request; answers 503 to the first fail_first ones. */
struct est_receiver {
	struct MHD_Daemon *daemon;
	unsigned port;
	pthread_mutex_t mu;
	struct est_hook hooks[EST_MAX_HOOKS];
	int n, fail_first, seen;
};

/* The group state (*state of every test): the receiver and the elevensim it receives from. */
struct est_env {
	struct est_receiver rx;
	struct dit_sim sim;
	struct dit_sim spare; /* a test's own elevensim (stopped by est_teardown if it failed) */
};

/* CLOCK_MONOTONIC in milliseconds (what est_hook.at_ms holds). */
long long est_now_ms(void);

/* Forgets the recorded webhooks; the next fail_first deliveries are answered 503. */
void est_rx_reset(struct est_receiver *rx, int fail_first);
/* Webhooks recorded so far. */
int est_rx_count(struct est_receiver *rx);
/* Waits until n webhooks were recorded; false when timeout_ms passed first. */
bool est_rx_wait(struct est_receiver *rx, int n, int timeout_ms);

/* cmocka group setup and teardown: start (stop) the receiver and elevensim (webhooks to the
 * receiver, signed with DIT_SECRET, tool lines with EST_TOOL_SECRET, 50 ms retry backoff);
 * *state is a struct est_env. */
int est_setup(void **state);
int est_teardown(void **state);
/* cmocka per-test setup: POST /sim/reset, forget the webhooks, then 2 turns 50 ms apart, no
 * latency, seed 1, no 429s, no races, no placed gateway errors, and webhooks to the receiver with
 * the default timeout and retries. */
int est_reset(void **state);

/* POST outbound-call for call_sid with key; body_override replaces the whole body. resp is
 * the caller's to free (ts_http_resp_free). */
void est_dial(const struct est_env *e, const char *key, const char *call_sid,
              const char *body_override, struct ts_http_resp *resp);
/* Places an accepted call (asserts 200) and copies its conversation_id into conv. */
void est_dial_accepted(const struct est_env *e, const char *call_sid, char *conv, size_t size);
/* resp's body parsed (new reference); fails the test when it is not JSON. */
json_t *est_body_json(const struct ts_http_resp *resp);
/* The string at path ("a.b.c": nested objects) in o, or NULL; borrowed from o. */
const char *est_str(const json_t *o, const char *path);

#endif
