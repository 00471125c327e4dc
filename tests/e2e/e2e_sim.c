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

const char *const e2e_worker_env_fast[] = {
    "KAFKA_SESSION_TIMEOUT_MS=6000",
    /* calls never dialled (a dialer killed between claim and request) fail quickly */
    "DIALER_SWEEP_AGE_S=20",
    "DIALER_SWEEP_INTERVAL_S=2",
    NULL,
};

struct e2e_sim {
	struct e2e_sim_call *calls;
	size_t n;
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

/* Fills c from one per-call object of /sim/stats. */
static void e2e_sim_parse_call(const char *sid, json_t *o, struct e2e_sim_call *c)
{
	json_t *lines = json_object_get(o, "lines"), *l;
	const char *outcome = json_string_value(json_object_get(o, "outcome"));
	const char *conv = json_string_value(json_object_get(o, "conversation_id"));
	size_t i;

	snprintf(c->call_sid, sizeof c->call_sid, "%s", sid);
	c->requests = (int)json_integer_value(json_object_get(o, "requests"));
	c->accepted = (int)json_integer_value(json_object_get(o, "accepted"));
	snprintf(c->conversation_id, sizeof c->conversation_id, "%s", conv ? conv : "");
	if (!outcome || c->requests == 0)
		c->outcome = E2E_SIM_NONE;
	else if (strcmp(outcome, "ok") == 0)
		c->outcome = E2E_SIM_OK;
	else if (strcmp(outcome, "initiation_failure") == 0)
		c->outcome = E2E_SIM_INITIATION_FAILURE;
	else
		c->outcome = E2E_SIM_API_ERROR;
	c->nlines = (int)json_array_size(lines);
	c->speakers = calloc((size_t)c->nlines + 1, sizeof *c->speakers);
	c->messages = calloc((size_t)c->nlines + 1, sizeof *c->messages);
	json_array_foreach(lines, i, l)
	{
		const char *sp = json_string_value(json_object_get(l, "speaker"));
		const char *msg = json_string_value(json_object_get(l, "message"));

		c->speakers[i] = strdup(sp ? sp : "");
		c->messages[i] = strdup(msg ? msg : "");
	}
}

struct e2e_sim *e2e_sim_stats(const struct e2e_stack *s)
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
	sim->calls = calloc(json_object_size(calls) + 1, sizeof *sim->calls);
	json_object_foreach(calls, sid, o) e2e_sim_parse_call(sid, o, &sim->calls[sim->n++]);
	qsort(sim->calls, sim->n, sizeof *sim->calls, e2e_sim_cmp);
	json_decref(root);
	ts_http_resp_free(&resp);
	return sim;
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
