/* simstore: elevensim's calls, conversations and statistics, behind one mutex. */
#include "simstore.h"

#include "strmap.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim_call {
	char call_sid[256];
	int outbound_requests, accepted;
	json_t *answers; /* statuses, in order */
	json_t *lines;   /* delivered per-turn webhooks: [{speaker, message}] */
	char conversation_id[64];
	const char *mode;
	int webhook_attempts, webhooks_sent, webhooks_failed;
	bool post_call_sent;
	const char *post_call_type;
	int conversation_gets;
};

struct sim_conv {
	char id[64], call_sid[256], twilio_sid[64], agent_id[128], to_number[64];
	const char *status;
	enum sim_mode mode;
	json_t *dynvars, *transcript;
	int64_t start_ms, end_ms;
	int turns, next_turn;
	bool over;
	uint64_t generation;
};

struct sim_store {
	pthread_mutex_t mu;
	struct strmap *calls; /* call_sid -> struct sim_call */
	struct strmap *convs; /* conversation_id -> struct sim_conv */
	uint64_t generation, counter;
};

static void sim_call_free(void *p)
{
	struct sim_call *c = p;

	json_decref(c->answers);
	json_decref(c->lines);
	free(c);
}

static void sim_conv_free(void *p)
{
	struct sim_conv *v = p;

	json_decref(v->dynvars);
	json_decref(v->transcript);
	free(v);
}

struct sim_store *sim_store_new(void)
{
	struct sim_store *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->calls = strmap_new();
	s->convs = strmap_new();
	if (!s->calls || !s->convs) {
		strmap_destroy(s->calls);
		strmap_destroy(s->convs);
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void sim_store_free(struct sim_store *s)
{
	if (!s)
		return;
	strmap_clear(s->calls, sim_call_free);
	strmap_clear(s->convs, sim_conv_free);
	strmap_destroy(s->calls);
	strmap_destroy(s->convs);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void sim_store_reset(struct sim_store *s)
{
	pthread_mutex_lock(&s->mu);
	strmap_clear(s->calls, sim_call_free);
	strmap_clear(s->convs, sim_conv_free);
	s->generation++;
	pthread_mutex_unlock(&s->mu);
}

uint64_t sim_store_generation(struct sim_store *s)
{
	uint64_t g;

	pthread_mutex_lock(&s->mu);
	g = s->generation;
	pthread_mutex_unlock(&s->mu);
	return g;
}

/* The stats of call_sid, created on first use (under s->mu). NULL when out of memory. */
static struct sim_call *sim_call_get(struct sim_store *s, const char *call_sid)
{
	struct sim_call *c = strmap_get(s->calls, call_sid);

	if (c)
		return c;
	c = calloc(1, sizeof *c);
	if (!c || !(c->answers = json_array()) || !(c->lines = json_array())) {
		if (c)
			sim_call_free(c);
		return NULL;
	}
	snprintf(c->call_sid, sizeof c->call_sid, "%s", call_sid);
	c->mode = "";
	c->post_call_type = "";
	if (strmap_put(s->calls, call_sid, c)) {
		sim_call_free(c);
		return NULL;
	}
	return c;
}

int sim_store_request(struct sim_store *s, const char *call_sid)
{
	struct sim_call *c;
	int n = 0;

	pthread_mutex_lock(&s->mu);
	c = sim_call_get(s, call_sid);
	if (c)
		n = c->outbound_requests++;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void sim_store_answered(struct sim_store *s, const char *call_sid, int status, bool accepted)
{
	struct sim_call *c;

	pthread_mutex_lock(&s->mu);
	c = sim_call_get(s, call_sid);
	if (c) {
		json_array_append_new(c->answers, json_integer(status));
		c->accepted += accepted;
	}
	pthread_mutex_unlock(&s->mu);
}

int sim_store_conv_new(struct sim_store *s, const char *call_sid, const char *agent_id,
                       const char *to_number, const json_t *dynvars, enum sim_mode mode, int turns,
                       uint64_t seed, char *conv_id, char *twilio_sid)
{
	struct sim_conv *v = calloc(1, sizeof *v);
	struct sim_call *c;
	uint64_t h1, h2;
	int rc = -1;

	if (!v)
		return -1;
	pthread_mutex_lock(&s->mu);
	s->counter++;
	h1 = (uint64_t)(sim_hash01(seed, call_sid, s->counter) * 18446744073709551615.0);
	h2 = (uint64_t)(sim_hash01(seed ^ 0x5A5A, call_sid, s->counter) * 18446744073709551615.0);
	snprintf(v->id, sizeof v->id, "conv_%016llx%06llx", (unsigned long long)h1,
	         (unsigned long long)(s->counter & 0xFFFFFF));
	snprintf(v->twilio_sid, sizeof v->twilio_sid, "CA%016llx%016llx", (unsigned long long)h2,
	         (unsigned long long)h1);
	snprintf(v->call_sid, sizeof v->call_sid, "%s", call_sid);
	snprintf(v->agent_id, sizeof v->agent_id, "%s", agent_id);
	snprintf(v->to_number, sizeof v->to_number, "%s", to_number);
	v->status = "initiated";
	v->mode = mode;
	v->dynvars = dynvars ? json_deep_copy(dynvars) : json_object();
	v->transcript = json_array();
	v->start_ms = time_now_ms();
	v->turns = turns;
	v->generation = s->generation;
	c = sim_call_get(s, call_sid);
	if (!v->dynvars || !v->transcript || !c || strmap_put(s->convs, v->id, v)) {
		pthread_mutex_unlock(&s->mu);
		sim_conv_free(v);
		return -1;
	}
	snprintf(c->conversation_id, sizeof c->conversation_id, "%s", v->id);
	c->mode = sim_mode_name(mode);
	snprintf(conv_id, 64, "%s", v->id);
	snprintf(twilio_sid, 64, "%s", v->twilio_sid);
	rc = 0;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static const char *sim_var(const struct sim_conv *v, const char *name)
{
	const char *s = json_string_value(json_object_get(v->dynvars, name));

	return s && *s ? s : NULL;
}

/* The scripted words of turn k: agent on even turns, user on odd ones. */
static void sim_turn_text(const struct sim_conv *v, int k, char *out, size_t size)
{
	static const char *const user[] = {
	    "Yes, I have a minute.",
	    "Understood, I will take care of it.",
	    "No, that's all from me.",
	    "Okay, thanks.",
	};
	const char *first = sim_var(v, "first_message");
	const char *summary = sim_var(v, "violations_summary");

	if (k % 2) {
		snprintf(out, size, "%s", user[(k / 2) % 4]);
	} else if (k == 0) {
		snprintf(out, size, "%s", first ? first : "Hello, this is dispatch calling.");
	} else if (k == 2) {
		snprintf(out, size, "I'm calling about this: %.1500s",
		         summary ? summary : "how the trip is going.");
	} else if (k + 2 >= v->turns) {
		snprintf(out, size, "Thanks for your time. Drive safe.");
	} else {
		snprintf(out, size, "Noted (turn %d). Anything else I should know?", k + 1);
	}
}

static json_t *sim_client_data(const struct sim_conv *v)
{
	return json_pack("{s:o}", "dynamic_variables", json_deep_copy(v->dynvars));
}

static json_t *sim_metadata(const struct sim_conv *v)
{
	int64_t end = v->end_ms ? v->end_ms : time_now_ms();

	return json_pack("{s:I, s:I, s:{s:s, s:s}}", "start_time_unix_secs",
	                 (json_int_t)(v->start_ms / 1000), "call_duration_secs",
	                 (json_int_t)((end - v->start_ms + 500) / 1000), "phone_call", "type",
	                 "twilio", "call_sid", v->twilio_sid);
}

static json_t *sim_post_call_body(const struct sim_conv *v)
{
	char summary[128];

	snprintf(summary, sizeof summary, "Scripted elevensim call with %d turns.", v->turns);
	return json_pack("{s:s, s:I, s:{s:s, s:s, s:s, s:o, s:o, s:{s:s, s:s, s:{}, s:{}}, s:o}}",
	                 "type", "post_call_transcription", "event_timestamp",
	                 (json_int_t)(time_now_ms() / 1000), "data", "agent_id", v->agent_id,
	                 "conversation_id", v->id, "status", "done", "transcript",
	                 json_deep_copy(v->transcript), "metadata", sim_metadata(v), "analysis",
	                 "call_successful", "success", "transcript_summary", summary,
	                 "evaluation_criteria_results", "data_collection_results",
	                 "conversation_initiation_client_data", sim_client_data(v));
}

static json_t *sim_init_failure_body(const struct sim_conv *v)
{
	return json_pack("{s:s, s:I, s:{s:s, s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}}, s:o}}", "type",
	                 "call_initiation_failure", "event_timestamp",
	                 (json_int_t)(time_now_ms() / 1000), "data", "agent_id", v->agent_id,
	                 "conversation_id", v->id, "failure_reason", "busy", "metadata", "type",
	                 "twilio", "body", "CallSid", v->twilio_sid, "CallStatus", "busy", "To",
	                 v->to_number, "conversation_initiation_client_data", sim_client_data(v));
}

enum sim_event sim_store_next(struct sim_store *s, const char *conv_id, uint64_t generation,
                              json_t **body, char *call_sid, size_t call_sid_size, char *call_token,
                              size_t call_token_size)
{
	struct sim_conv *v;
	enum sim_event ev = SIM_EVENT_NONE;
	char text[2048];

	*body = NULL;
	if (call_token_size > 0)
		call_token[0] = '\0';
	pthread_mutex_lock(&s->mu);
	v = strmap_get(s->convs, conv_id);
	if (!v || v->over || v->generation != generation || generation != s->generation)
		goto out;
	snprintf(call_sid, call_sid_size, "%s", v->call_sid);
	if (v->mode == SIM_MODE_INITIATION_FAILURE) {
		v->status = "failed";
		v->over = true;
		v->end_ms = time_now_ms();
		*body = sim_init_failure_body(v);
		ev = SIM_EVENT_INIT_FAIL;
		goto out;
	}
	if (v->next_turn < v->turns) {
		const char *role = v->next_turn % 2 ? "user" : "agent";

		sim_turn_text(v, v->next_turn, text, sizeof text);
		json_array_append_new(
		    v->transcript,
		    json_pack("{s:s, s:s, s:I}", "role", role, "message", text, "time_in_call_secs",
		              (json_int_t)((time_now_ms() - v->start_ms) / 1000)));
		*body = json_pack("{s:s, s:s, s:s}", "call_sid", v->call_sid, "speaker", role,
		                  "message", text);
		if (*body && sim_var(v, "call_token")) {
			char key[96];

			snprintf(key, sizeof key, "%s:%d", v->id, v->next_turn);
			snprintf(call_token, call_token_size, "%s", sim_var(v, "call_token"));
			json_object_set_new(*body, "idempotency_key", json_string(key));
		}
		v->next_turn++;
		v->status = v->next_turn == v->turns ? "processing" : "in-progress";
		ev = SIM_EVENT_TURN;
		goto out;
	}
	v->status = "done";
	v->over = true;
	v->end_ms = time_now_ms();
	if (v->mode != SIM_MODE_NO_POST_CALL)
		*body = sim_post_call_body(v);
	ev = SIM_EVENT_POST_CALL;
out:
	pthread_mutex_unlock(&s->mu);
	return ev;
}

void sim_store_webhook_attempt(struct sim_store *s, const char *call_sid)
{
	struct sim_call *c;

	pthread_mutex_lock(&s->mu);
	c = strmap_get(s->calls, call_sid);
	if (c)
		c->webhook_attempts++;
	pthread_mutex_unlock(&s->mu);
}

void sim_store_webhook_result(struct sim_store *s, const char *call_sid, enum sim_event ev,
                              bool delivered, const char *body)
{
	json_t *sent = delivered && ev == SIM_EVENT_TURN ? json_loads(body, 0, NULL) : NULL;
	struct sim_call *c;

	pthread_mutex_lock(&s->mu);
	c = strmap_get(s->calls, call_sid);
	if (c && sent)
		json_array_append_new(
		    c->lines, json_pack("{s:O, s:O}", "speaker", json_object_get(sent, "speaker"),
		                        "message", json_object_get(sent, "message")));
	if (c) {
		if (delivered)
			c->webhooks_sent++;
		else
			c->webhooks_failed++;
		if (delivered && ev != SIM_EVENT_TURN) {
			c->post_call_sent = true;
			c->post_call_type = ev == SIM_EVENT_INIT_FAIL ? "call_initiation_failure"
			                                              : "post_call_transcription";
		}
	}
	pthread_mutex_unlock(&s->mu);
	json_decref(sent);
}

json_t *sim_store_conv_json(struct sim_store *s, const char *conv_id)
{
	struct sim_conv *v;
	struct sim_call *c;
	json_t *root = NULL;

	pthread_mutex_lock(&s->mu);
	v = strmap_get(s->convs, conv_id);
	if (!v)
		goto out;
	c = strmap_get(s->calls, v->call_sid);
	if (c)
		c->conversation_gets++;
	root = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:b}", "agent_id", v->agent_id,
	                 "conversation_id", v->id, "status", v->status, "transcript",
	                 json_deep_copy(v->transcript), "metadata", sim_metadata(v),
	                 "conversation_initiation_client_data", sim_client_data(v), "has_audio", 0);
	if (root && v->mode == SIM_MODE_INITIATION_FAILURE && v->over)
		json_object_set_new(json_object_get(root, "metadata"), "termination_reason",
		                    json_string("call_initiation_failure: busy"));
out:
	pthread_mutex_unlock(&s->mu);
	return root;
}

/* ok: accepted (placed; its answer may have been a gateway error) and played;
 * initiation_failure; refused: every answer was a refusal; hang: the last request was never
 * answered. */
static const char *sim_call_outcome(const struct sim_call *c)
{
	size_t n = json_array_size(c->answers);

	if (c->accepted)
		return strcmp(c->mode, "initiation_failure") == 0 ? "initiation_failure" : "ok";
	if (n && json_integer_value(json_array_get(c->answers, n - 1)) == 0)
		return "hang";
	return "refused";
}

static json_t *sim_call_json(const struct sim_call *c)
{
	return json_pack("{s:i, s:i, s:i, s:s, s:o, s:s?, s:s, s:o, s:i, s:i, s:i, s:b, s:s, s:i}",
	                 "outbound_requests", c->outbound_requests, "requests",
	                 c->outbound_requests, "accepted", c->accepted, "outcome",
	                 sim_call_outcome(c), "answers", json_deep_copy(c->answers),
	                 "conversation_id", c->conversation_id[0] ? c->conversation_id : NULL,
	                 "mode", c->mode, "lines", json_deep_copy(c->lines), "webhook_attempts",
	                 c->webhook_attempts, "webhooks_sent", c->webhooks_sent, "webhooks_failed",
	                 c->webhooks_failed, "post_call_sent", c->post_call_sent, "post_call_type",
	                 c->post_call_type, "conversation_gets", c->conversation_gets);
}

/* What sim_store_stats adds up over the calls. */
struct sim_totals {
	const char *call_sid; /* only this call's details (NULL: every call's) */
	json_t *calls, *answered;
	long long requests, sent, failed, attempts, post, gets, ncalls, dup, max_req;
};

static void sim_store_count(void *opaque, const char *key, void *value)
{
	struct sim_totals *t = opaque;
	const struct sim_call *c = value;
	size_t j;
	json_t *st;

	(void)key;
	t->ncalls++;
	t->requests += c->outbound_requests;
	t->dup += c->outbound_requests > 1;
	t->max_req = c->outbound_requests > t->max_req ? c->outbound_requests : t->max_req;
	t->attempts += c->webhook_attempts;
	t->sent += c->webhooks_sent;
	t->failed += c->webhooks_failed;
	t->post += c->post_call_sent;
	t->gets += c->conversation_gets;
	json_array_foreach(c->answers, j, st)
	{
		char name[16];
		json_t *n;

		snprintf(name, sizeof name, "%lld", (long long)json_integer_value(st));
		n = json_object_get(t->answered, name);
		json_object_set_new(t->answered, name,
		                    json_integer(n ? json_integer_value(n) + 1 : 1));
	}
	if (!t->call_sid || strcmp(t->call_sid, c->call_sid) == 0)
		json_object_set_new(t->calls, c->call_sid, sim_call_json(c));
}

json_t *sim_store_stats(struct sim_store *s, const char *call_sid)
{
	struct sim_totals t = {
	    .call_sid = call_sid, .calls = json_object(), .answered = json_object()};
	json_t *root;

	pthread_mutex_lock(&s->mu);
	strmap_each(s->calls, sim_store_count, &t);
	root = json_pack("{s:{s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I}, s:o}",
	                 "totals", "calls", (json_int_t)t.ncalls, "outbound_requests",
	                 (json_int_t)t.requests, "calls_with_duplicate_requests", (json_int_t)t.dup,
	                 "max_requests_per_call", (json_int_t)t.max_req, "answered", t.answered,
	                 "conversations", (json_int_t)strmap_count(s->convs), "webhook_attempts",
	                 (json_int_t)t.attempts, "webhooks_sent", (json_int_t)t.sent,
	                 "webhooks_failed", (json_int_t)t.failed, "post_calls_sent",
	                 (json_int_t)t.post, "conversation_gets", (json_int_t)t.gets, "calls",
	                 t.calls);
	pthread_mutex_unlock(&s->mu);
	return root;
}
