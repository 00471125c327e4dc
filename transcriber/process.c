/* process: pure decisions of the transcriber: wait windows, post-call parsing, reconciliation. */
#include "process.h"

#include "backoff.h"
#include "codec.h"
#include "store_transcriptions.h"
#include "timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tr_wait_reason(enum tr_wait w)
{
	switch (w) {
	case TR_WAIT_UNKNOWN_CALL:
		return "unknown_call_sid";
	case TR_WAIT_NO_CONVERSATION:
		return "missing_conversation_id";
	case TR_WAIT_GATE:
		return "post_call_gate";
	case TR_WAIT_NONE:
		break;
	}
	return "";
}

bool tr_wait_expired(const struct tr_windows *w, enum tr_wait reason, int64_t since_ms,
                     int64_t now_ms)
{
	long long window = 0;

	switch (reason) {
	case TR_WAIT_UNKNOWN_CALL:
		window = w->unknown_call_ms;
		break;
	case TR_WAIT_NO_CONVERSATION:
		window = w->no_conversation_ms;
		break;
	case TR_WAIT_GATE:
		window = w->gate_ms;
		break;
	case TR_WAIT_NONE:
		return true;
	}
	return now_ms - since_ms >= window;
}

long tr_retry_delay_ms(long base_ms, long max_ms, unsigned attempt, uint64_t *rng)
{
	long delay =
	    backoff_ceil_ms(base_ms > 0 ? base_ms : 1, max_ms, attempt > 1 ? attempt - 1 : 0);
	uint64_t x = backoff_rand(rng);
	long jitter;

	jitter = delay / 4;
	if (jitter > 0)
		delay += (long)(x % (uint64_t)(2 * jitter + 1)) - jitter;
	return delay > 0 ? delay : 1;
}

/* ---- post-call ---- */

static const json_t *tr_obj(const json_t *parent, const char *name)
{
	const json_t *v = json_is_object(parent) ? json_object_get(parent, name) : NULL;

	return json_is_object(v) ? v : NULL;
}

static const char *tr_str(const json_t *parent, const char *name)
{
	const json_t *v = json_is_object(parent) ? json_object_get(parent, name) : NULL;

	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* A JSON number (integer or real) as seconds; false when absent or not a number. */
static bool tr_secs(const json_t *parent, const char *name, double *out)
{
	const json_t *v = json_is_object(parent) ? json_object_get(parent, name) : NULL;

	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return *out >= 0;
}

static bool tr_blank(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

static void tr_post_call_end_time(const json_t *body, const json_t *data, struct tr_post_call *pc)
{
	const json_t *meta = tr_obj(data, "metadata");
	double start, duration, event;
	int64_t ms;

	/* a time out of range (1e300, a negative duration) is no time: never a conversion with
	 * undefined behaviour (the ingress refuses such webhooks; older messages may have them) */
	pc->end_time[0] = '\0';
	if (tr_secs(meta, "start_time_unix_secs", &start)) {
		if (!tr_secs(meta, "call_duration_secs", &duration))
			duration = 0;
		if (time_secs_to_ms(start + duration, &ms) == 0)
			time_format_iso_ms(ms, pc->end_time, sizeof pc->end_time);
	} else if (tr_secs(body, "event_timestamp", &event)) {
		if (time_secs_to_ms(event, &ms) == 0)
			time_format_iso_ms(ms, pc->end_time, sizeof pc->end_time);
	}
}

/* Collects agent/user turns with a non-blank message; other roles and tool-only turns are
 * skipped (they never were per-turn lines). */
static int tr_post_call_turns(const json_t *data, struct tr_post_call *pc, char *errstr,
                              size_t errstr_size)
{
	const json_t *arr = json_is_object(data) ? json_object_get(data, "transcript") : NULL;
	size_t i;
	const json_t *turn;

	if (!json_is_array(arr))
		return 0; /* no transcript: nothing to reconcile */
	pc->turns = calloc(json_array_size(arr) + 1, sizeof *pc->turns);
	if (!pc->turns) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	json_array_foreach(arr, i, turn)
	{
		const char *role = tr_str(turn, "role");
		const char *message = tr_str(turn, "message");

		if (!role || !message || tr_blank(message))
			continue;
		if (strcmp(role, "agent") != 0 && strcmp(role, "user") != 0)
			continue;
		pc->turns[pc->nturns++] = (struct tr_turn){i, role, message};
	}
	return 0;
}

int tr_post_call_parse(const json_t *body, struct tr_post_call *pc, char *errstr,
                       size_t errstr_size)
{
	const json_t *data = tr_obj(body, "data");
	const json_t *client = tr_obj(data, "conversation_initiation_client_data");
	const char *reason;

	memset(pc, 0, sizeof *pc);
	pc->type_name = tr_str(body, "type");
	if (!pc->type_name)
		pc->type_name = "(none)";
	if (strcmp(pc->type_name, "post_call_transcription") == 0)
		pc->type = TR_PC_TRANSCRIPTION;
	else if (strcmp(pc->type_name, "call_initiation_failure") == 0)
		pc->type = TR_PC_INITIATION_FAILURE;
	else if (strcmp(pc->type_name, "post_call_audio") == 0)
		pc->type = TR_PC_AUDIO;
	else
		pc->type = TR_PC_UNKNOWN;
	pc->call_sid = tr_str(tr_obj(client, "dynamic_variables"), "call_sid");
	pc->conversation_id = tr_str(data, "conversation_id");
	if (pc->conversation_id && strlen(pc->conversation_id) > CODEC_ID_MAX) {
		snprintf(errstr, errstr_size, "field 'data.conversation_id' is too long");
		return -1;
	}
	if (pc->call_sid && strlen(pc->call_sid) > CODEC_CALL_SID_MAX)
		pc->call_sid = NULL; /* the message's own call_sid field is checked by the codec */
	if (pc->type == TR_PC_AUDIO || pc->type == TR_PC_UNKNOWN)
		return 0;
	if (!data) {
		snprintf(errstr, errstr_size, "field 'data' is missing or not an object");
		return -1;
	}
	if (pc->type == TR_PC_INITIATION_FAILURE) {
		reason = tr_str(data, "failure_reason");
		snprintf(pc->failure_reason, sizeof pc->failure_reason,
		         "call_initiation_failure%s%s", reason ? ": " : "", reason ? reason : "");
		return 0;
	}
	if (!pc->conversation_id) {
		snprintf(errstr, errstr_size, "field 'data.conversation_id' is missing");
		return -1;
	}
	tr_post_call_end_time(body, data, pc);
	return tr_post_call_turns(data, pc, errstr, errstr_size);
}

void tr_post_call_clear(struct tr_post_call *pc)
{
	if (!pc)
		return;
	free(pc->turns);
	memset(pc, 0, sizeof *pc);
}

/* ---- reconciliation ---- */

void tr_reconciled_event_id(const char *conversation_id, size_t index, char *out, size_t size)
{
	snprintf(out, size, STORE_TRANSCRIPTION_RECONCILED_PREFIX "%s:%zu", conversation_id, index);
}

/* The turn index in a reconciled event id of this conversation, or -1. */
static long tr_reconciled_index(const char *event_id, const char *conversation_id)
{
	size_t plen = strlen(STORE_TRANSCRIPTION_RECONCILED_PREFIX), clen = strlen(conversation_id);
	const char *p;
	char *end;
	long idx;

	if (!event_id || strncmp(event_id, STORE_TRANSCRIPTION_RECONCILED_PREFIX, plen) != 0)
		return -1;
	p = event_id + plen;
	if (strncmp(p, conversation_id, clen) != 0 || p[clen] != ':')
		return -1;
	p += clen + 1;
	if (!isdigit((unsigned char)*p))
		return -1;
	idx = strtol(p, &end, 10);
	return *end == '\0' ? idx : -1;
}

/* Equal texts once leading and trailing blanks are ignored. */
static bool tr_text_eq(const char *a, const char *b)
{
	size_t la, lb;

	while (isspace((unsigned char)*a))
		a++;
	while (isspace((unsigned char)*b))
		b++;
	la = strlen(a);
	lb = strlen(b);
	while (la > 0 && isspace((unsigned char)a[la - 1]))
		la--;
	while (lb > 0 && isspace((unsigned char)b[lb - 1]))
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

size_t tr_reconcile_plan(const struct tr_stored *stored, size_t nstored,
                         const struct tr_turn *turns, size_t nturns, const char *conversation_id,
                         size_t *append, size_t *gaps)
{
	bool *matched = calloc(nturns + 1, sizeof *matched);
	size_t next = 0, n = 0, first = 0;
	long last = -1;

	*gaps = 0;
	if (!matched)
		return 0;
	for (size_t s = 0; s < nstored; s++) {
		long idx = tr_reconciled_index(stored[s].event_id, conversation_id);

		for (size_t t = (idx >= 0 ? 0 : next); t < nturns; t++) {
			bool hit = idx >= 0 ? turns[t].index == (size_t)idx
			                    : (!matched[t] &&
			                       strcmp(turns[t].speaker, stored[s].speaker) == 0 &&
			                       tr_text_eq(turns[t].message, stored[s].message));
			if (!hit)
				continue;
			matched[t] = true;
			if ((long)t > last)
				last = (long)t;
			next = (size_t)last + 1;
			break;
		}
	}
	if (last >= 0)
		first = (size_t)last + 1;
	else
		first = nstored < nturns ? nstored : nturns;
	for (size_t t = 0; t < nturns; t++) {
		if (t >= first)
			append[n++] = t;
		else if (last >= 0 && !matched[t])
			(*gaps)++;
	}
	free(matched);
	return n;
}
