/* e2e_sim: reads elevensim's GET /sim/stats into per-call records for the e2e checks. */
#include "e2e_sim.h"
#include "e2e.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The items of e2e_worker_env_fast (shared with e2e_worker_env_kill).
 *
 * Calls whose dial outcome died with a killed dialer are settled within the test: the sweeper
 * looks at calls older than 20 s every 4 s. Its lease is max(5 s, 3 x interval) and it only
 * works on a row while a whole request timeout fits in the lease (minus 1 s), so the request
 * timeout must stay under 11 s here; with the 30 s default it would settle nothing at this
 * interval. 10 s still rides out elevensim's occasional multi-second stalls under a burst of
 * dials (an answer that late leaves the dial's outcome unknown, for the post-call or the sweeper).
 *
 * The sweeper leaves a claimed call without answer alone for as long as a dial may still be
 * running somewhere: attempts x request timeout + the waits between them, capped by the retry
 * settings. With the defaults (10 s, Retry-After up to 60 s) that is 5 x 10 + 4 x 60 = 290 s,
 * longer than the test waits, so a dialer killed with a *refused* dial in flight (no webhook
 * will ever settle that call) failed the test; here 5 x 10 + 4 x 5 = 70 s. */
#define E2E_WORKER_ENV_FAST                                                                   \
	"KAFKA_SESSION_TIMEOUT_MS=" E2E_STR(E2E_SESSION_TIMEOUT_MS), "DIALER_SWEEP_AGE_S=20", \
	    "DIALER_SWEEP_INTERVAL_S=4", "DIALER_REQUEST_TIMEOUT_MS=10000",                   \
	    "DIALER_CONNECT_TIMEOUT_MS=2000", "DIALER_RETRY_MAX_MS=2000",                     \
	    "DIALER_RETRY_AFTER_MAX_S=5"

const char *const e2e_worker_env_fast[] = {E2E_WORKER_ENV_FAST, NULL};

/* Two attempts per dial: 2 x 10 + 1 x 5 = 25 s instead of 70 before the sweeper may settle a
 * dial that died with its dialer (a call answered 503 twice fails with HTTP 503). */
const char *const e2e_worker_env_kill[] = {E2E_WORKER_ENV_FAST, "DIALER_MAX_ATTEMPTS=2", NULL};

struct e2e_sim {
	struct e2e_sim_call *calls;
	size_t n;
	long long conversations;
};

const char *e2e_sim_outcome_str(enum e2e_sim_outcome o)
{
	switch (o) {
	case E2E_SIM_NONE:
		return "never dialled";
	case E2E_SIM_OK:
		return "played the call";
	case E2E_SIM_API_ERROR:
		return "refused the dial";
	case E2E_SIM_INITIATION_FAILURE:
		return "sent call_initiation_failure";
	}
	return "?";
}

static int e2e_sim_cmp(const void *a, const void *b)
{
	return strcmp(((const struct e2e_sim_call *)a)->call_sid,
	              ((const struct e2e_sim_call *)b)->call_sid);
}

/* True for answers the dialer retries (the request did not place a call). A 502 or 504 is
 * final for it: the call may exist, the outcome is unknown, it is never dialled again. */
static bool e2e_sim_retriable(json_int_t status)
{
	return status == 429 || status == 503;
}

/* Fills c from one per-call object of /sim/stats. */
static void e2e_sim_parse_call(const char *sid, json_t *o, struct e2e_sim_call *c)
{
	json_t *answers = json_object_get(o, "answers"), *a;
	const char *mode = json_string_value(json_object_get(o, "mode"));
	const char *conv = json_string_value(json_object_get(o, "conversation_id"));
	size_t i;

	snprintf(c->call_sid, sizeof c->call_sid, "%s", sid);
	c->requests = (int)json_integer_value(json_object_get(o, "outbound_requests"));
	c->webhooks_failed = (int)json_integer_value(json_object_get(o, "webhooks_failed"));
	snprintf(c->conversation_id, sizeof c->conversation_id, "%s", conv ? conv : "");
	snprintf(c->mode, sizeof c->mode, "%s", mode ? mode : "");
	json_array_foreach(answers, i, a)
	{
		if (c->finals)
			c->request_after_final = true;
		if (!e2e_sim_retriable(json_integer_value(a)))
			c->finals++;
		c->last_answer = (int)json_integer_value(a);
	}
	if (c->requests == 0)
		c->outcome = E2E_SIM_NONE;
	else if (c->conversation_id[0] && strcmp(c->mode, "initiation_failure") == 0)
		c->outcome = E2E_SIM_INITIATION_FAILURE;
	else if (c->conversation_id[0])
		c->outcome = E2E_SIM_OK;
	else
		c->outcome = E2E_SIM_API_ERROR;
	c->nlines = -1;
}

/* Fetches the conversation's transcript into c. */
static void e2e_sim_transcript(const struct e2e_stack *s, struct e2e_sim_call *c)
{
	struct ts_http_resp resp = {0};
	char url[256], key[80];
	const char *headers[2] = {key, NULL};
	json_t *root, *tr, *l;
	size_t i;

	snprintf(url, sizeof url, "%s/v1/convai/conversations/%s", s->sim_url, c->conversation_id);
	snprintf(key, sizeof key, "xi-api-key: %s", s->api_key);
	ts_http("GET", url, headers, NULL, 0, &resp);
	root = resp.status == 200 && resp.body ? json_loads(resp.body, 0, NULL) : NULL;
	tr = json_object_get(root, "transcript");
	if (!json_is_array(tr))
		fail_msg("e2e: GET %s answered %ld without a transcript", url, resp.status);
	c->nlines = (int)json_array_size(tr);
	c->speakers = calloc((size_t)c->nlines + 1, sizeof *c->speakers);
	c->messages = calloc((size_t)c->nlines + 1, sizeof *c->messages);
	json_array_foreach(tr, i, l)
	{
		const char *sp = json_string_value(json_object_get(l, "role"));
		const char *msg = json_string_value(json_object_get(l, "message"));

		c->speakers[i] = strdup(sp ? sp : "");
		c->messages[i] = strdup(msg ? msg : "");
	}
	json_decref(root);
	ts_http_resp_free(&resp);
}

struct e2e_sim *e2e_sim_stats(const struct e2e_stack *s, bool transcripts)
{
	struct ts_http_resp resp = {0};
	struct e2e_sim *sim = calloc(1, sizeof *sim);
	json_error_t err;
	json_t *root, *calls, *o;
	const char *sid;
	char url[128];

	snprintf(url, sizeof url, "%s/sim/stats", s->sim_url);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	if (resp.status != 200 || !resp.body)
		fail_msg("e2e: GET %s answered %ld", url, resp.status);
	root = json_loads(resp.body, 0, &err);
	calls = json_object_get(root, "calls");
	if (!json_is_object(calls))
		fail_msg("e2e: GET %s: no calls object: %.300s", url, resp.body);
	sim->conversations =
	    json_integer_value(json_object_get(json_object_get(root, "totals"), "conversations"));
	sim->calls = calloc(json_object_size(calls) + 1, sizeof *sim->calls);
	json_object_foreach(calls, sid, o)
	{
		struct e2e_sim_call *c = &sim->calls[sim->n++];

		e2e_sim_parse_call(sid, o, c);
		if (transcripts && c->conversation_id[0])
			e2e_sim_transcript(s, c);
	}
	qsort(sim->calls, sim->n, sizeof *sim->calls, e2e_sim_cmp);
	json_decref(root);
	ts_http_resp_free(&resp);
	return sim;
}

long long e2e_sim_conversations(const struct e2e_sim *sim)
{
	return sim->conversations;
}

void e2e_sim_free(struct e2e_sim *sim)
{
	if (!sim)
		return;
	for (size_t i = 0; i < sim->n; i++) {
		for (int k = 0; k < sim->calls[i].nlines; k++) {
			free(sim->calls[i].speakers[k]);
			free(sim->calls[i].messages[k]);
		}
		free(sim->calls[i].speakers);
		free(sim->calls[i].messages);
	}
	free(sim->calls);
	free(sim);
}

const struct e2e_sim_call *e2e_sim_find(const struct e2e_sim *sim, const char *call_sid)
{
	struct e2e_sim_call key;

	snprintf(key.call_sid, sizeof key.call_sid, "%s", call_sid);
	return bsearch(&key, sim->calls, sim->n, sizeof *sim->calls, e2e_sim_cmp);
}
