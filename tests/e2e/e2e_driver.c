/* e2e_driver: posts BatchCallRequests and signed webhooks to the ingress, as a client and as
 * ElevenLabs would. */
#include "e2e.h"
#include "sig.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* One request body for drivers [first, first + n) of the run. */
static char *e2e_request_body(const struct e2e_run *run, const char *tag, int first, int n)
{
	json_t *drivers = json_array(), *root;
	char *body;

	for (int i = first; i < first + n; i++) {
		char id[32], name[64], phone[32], desc[96];

		snprintf(id, sizeof id, "%s%04d", tag, i);
		snprintf(name, sizeof name, "Driver %s %d", tag, i);
		/* (212) N55-XXXX: valid under the numbering plan's rules for 80,000 drivers */
		snprintf(phone, sizeof phone, "+1212%d55%04d", 2 + (i / 10000) % 8, i % 10000);
		snprintf(desc, sizeof desc, "%d mph in a 55 zone", 60 + i % 30);
		json_array_append_new(
		    drivers,
		    json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:[{s:s, s:s}]}}", "driverId", id,
		              "driverName", name, "phoneNumber", phone, "customRules",
		              "Keep it short.", "violations", "tripId", "TRIP-E2E",
		              "violationDetails", "type", "speeding", "description", desc));
	}
	root = json_pack("{s:s, s:s, s:s, s:o}", "callType", "violation_followup", "timestamp",
	                 run->stamp, "trip_id", "TRIP-E2E", "drivers", drivers);
	if (!root)
		fail_msg("e2e: json_pack failed");
	body = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return body;
}

/* Checks a 202 answer against the drivers asked for and appends its call_sids to run. */
static void e2e_take_answer(struct e2e_run *run, const char *tag, int first, int n,
                            const char *answer)
{
	json_error_t err;
	json_t *root = json_loads(answer, 0, &err), *calls, *c;
	size_t i;

	if (!root || !(calls = json_object_get(root, "calls")) || !json_is_array(calls))
		fail_msg("e2e: 202 answer without calls[]: %s", answer);
	if ((int)json_array_size(calls) != n)
		fail_msg("e2e: 202 answer lists %zu calls for %d drivers", json_array_size(calls),
		         n);
	json_array_foreach(calls, i, c)
	{
		const char *sid = json_string_value(json_object_get(c, "call_sid"));
		const char *did = json_string_value(json_object_get(c, "driverId"));
		char want_id[32], want_sid[128];

		snprintf(want_id, sizeof want_id, "%s%04d", tag, first + (int)i);
		snprintf(want_sid, sizeof want_sid, "EL_%s_%s", want_id, run->stamp);
		if (!sid || !did || strcmp(did, want_id) != 0 || strcmp(sid, want_sid) != 0)
			fail_msg("e2e: answer #%zu is %s/%s, expected %s/%s", i, did ? did : "-",
			         sid ? sid : "-", want_id, want_sid);
		run->sids[run->nsids++] = strdup(sid);
	}
	json_decref(root);
}

void e2e_run_init(struct e2e_run *run, const char *tag, int ncalls)
{
	time_t now = time(NULL);
	struct tm tm;

	memset(run, 0, sizeof *run);
	gmtime_r(&now, &tm);
	strftime(run->stamp, sizeof run->stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(run->tag, sizeof run->tag, "%s", tag);
	run->ncalls = ncalls;
	run->sids = calloc((size_t)ncalls, sizeof *run->sids);
	if (!run->sids)
		fail_msg("e2e: out of memory");
}

void e2e_post_batch(const struct e2e_stack *s, struct e2e_run *run, int first, int n)
{
	char url[128], auth[128];
	const char *headers[3] = {auth, "Content-Type: application/json", NULL};
	char *body;
	int tries = 0;

	if (first < 0 || n < 1 || first + n > run->ncalls)
		fail_msg("e2e: batch %d+%d outside the run's %d calls", first, n, run->ncalls);
	snprintf(url, sizeof url, "%s/driver_data/call-elevenlabs", s->ingress_url);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
	body = e2e_request_body(run, run->tag, first, n);
	for (;;) {
		struct ts_http_resp resp = {0};

		ts_http("POST", url, headers, body, strlen(body), &resp);
		if (resp.status == 202) {
			e2e_take_answer(run, run->tag, first, n, resp.body);
			ts_http_resp_free(&resp);
			break;
		}
		if (resp.status != 503 || ++tries > 120) {
			e2e_stack_dump_logs(s, 15);
			fail_msg("e2e: POST %s answered %ld (try %d): %s", url, resp.status, tries,
			         resp.body ? resp.body : "");
		}
		/* 503: nothing or only part was stored; the same request again is safe. */
		run->retries_503++;
		ts_http_resp_free(&resp);
		ts_sleep_ms(500);
	}
	free(body);
}

void e2e_post_calls(const struct e2e_stack *s, struct e2e_run *run, const char *tag, int ncalls,
                    int per_request, int gap_ms)
{
	e2e_run_init(run, tag, ncalls);
	for (int first = 0; first < ncalls; first += per_request) {
		e2e_post_batch(s, run, first,
		               ncalls - first < per_request ? ncalls - first : per_request);
		if (gap_ms && first + per_request < ncalls)
			ts_sleep_ms(gap_ms);
	}
}

void e2e_run_free(struct e2e_run *run)
{
	for (int i = 0; i < run->nsids; i++)
		free(run->sids[i]);
	free(run->sids);
	memset(run, 0, sizeof *run);
}

long e2e_post_webhook(const struct e2e_stack *s, const char *path, const char *body, char *event_id,
                      size_t event_id_size)
{
	struct ts_http_resp resp = {0};
	char url[160], sig[256], sighdr[300];
	const char *headers[3] = {sighdr, "Content-Type: application/json", NULL};
	long status;

	if (sig_sign(s->secret, (int64_t)time(NULL), body, strlen(body), sig, sizeof sig))
		fail_msg("e2e: sig_sign failed");
	snprintf(sighdr, sizeof sighdr, "ElevenLabs-Signature: %s", sig);
	snprintf(url, sizeof url, "%s/webhooks/elevenlabs/%s", s->ingress_url, path);
	ts_http("POST", url, headers, body, strlen(body), &resp);
	status = resp.status;
	if (event_id && event_id_size) {
		json_t *root = status == 200 && resp.body ? json_loads(resp.body, 0, NULL) : NULL;
		const char *id = json_string_value(json_object_get(root, "event_id"));

		snprintf(event_id, event_id_size, "%s", id ? id : "");
		json_decref(root);
	}
	ts_http_resp_free(&resp);
	return status;
}
