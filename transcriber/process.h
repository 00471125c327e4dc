/* process: the transcriber's rules (design.md §6) as pure decisions: how long a message may wait
 * and for what, what a post-call webhook says, and which final-transcript turns the per-turn
 * webhooks missed. No database, no Kafka: unit-tested on their own. */
#ifndef CALLPIPE_TRANSCRIBER_PROCESS_H
#define CALLPIPE_TRANSCRIBER_PROCESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a message cannot be handled yet. */
enum tr_wait {
	TR_WAIT_NONE = 0,
	TR_WAIT_UNKNOWN_CALL,    /* no call with this call_sid (yet) */
	TR_WAIT_NO_CONVERSATION, /* the call has no conversation_id yet: the dial is in flight */
	TR_WAIT_GATE,            /* a post-call waits for the call's per-turn lines to be read */
};

/* "unknown_call_sid", "missing_conversation_id", "post_call_gate" ("" for NONE): the reason
 * label of metrics and of the dead-letter header. */
const char *tr_wait_reason(enum tr_wait w);

/* How long each kind of wait may last (ms). */
struct tr_windows {
	long long unknown_call_ms;
	long long no_conversation_ms;
	long long gate_ms;
};

/* True when a message that has waited for reason since since_ms (monotonic) must stop waiting
 * at now_ms: dead-lettered (unknown call, no conversation) or let through (gate). */
bool tr_wait_expired(const struct tr_windows *w, enum tr_wait reason, int64_t since_ms,
                     int64_t now_ms);

/* Delay before retry number attempt (1, 2, ...) of a waiting call: base * 2^(attempt-1), capped
 * at max (backoff_ceil_ms), with +-25% jitter from *rng (backoff_rand's state, updated). */
long tr_retry_delay_ms(long base_ms, long max_ms, unsigned attempt, uint64_t *rng);

/* ---- post-call webhooks ---- */
enum tr_pc_type {
	TR_PC_TRANSCRIPTION,      /* post_call_transcription: completed + reconciliation */
	TR_PC_INITIATION_FAILURE, /* call_initiation_failure: failed with reason */
	TR_PC_AUDIO,              /* post_call_audio: counted, not stored */
	TR_PC_UNKNOWN,            /* any other type: counted, not an error */
};

/* One spoken turn of the final transcript; index is its position in data.transcript. */
struct tr_turn {
	size_t index;
	const char *speaker; /* "agent" or "user" */
	const char *message;
};

/* What the transcriber needs from a post-call body. Strings borrow from the body; turns is
 * malloc'd (tr_post_call_clear). */
struct tr_post_call {
	enum tr_pc_type type;
	const char *type_name;
	const char *call_sid; /* data.conversation_initiation_client_data.dynamic_variables */
	const char *conversation_id; /* data.conversation_id (required for transcriptions) */
	char end_time[40];           /* ISO-8601 UTC, "" when the webhook does not say */
	char failure_reason[256];    /* call_initiation_failure only */
	struct tr_turn *turns;       /* agent/user turns with a non-blank message, in order */
	size_t nturns;
};

/* Parses a post-call body tolerantly (unknown fields ignored). end_time: metadata
 * start_time_unix_secs + call_duration_secs, else event_timestamp. Returns 0, or -1 with errstr
 * naming the field when a post_call_transcription/call_initiation_failure lacks what its
 * handling needs. Unknown and audio types always parse. */
int tr_post_call_parse(const json_t *body, struct tr_post_call *pc, char *errstr,
                       size_t errstr_size);
void tr_post_call_clear(struct tr_post_call *pc);

/* ---- reconciliation ---- */
/* A stored line of the conversation, in sequence order. */
struct tr_stored {
	const char *speaker;
	const char *message;
	const char *event_id; /* may be NULL */
};

/* Writes into out the event id of the reconciled copy of turn index of conversation_id:
 * "postcall:<conversation_id>:<index>". */
void tr_reconciled_event_id(const char *conversation_id, size_t index, char *out, size_t size);

/* Decides which final-transcript turns to append (docs/transcriber.md, "Reconciliation"):
 * stored lines are matched in order to turns (same speaker, same text ignoring surrounding
 * blanks; reconciled copies by the index in their event id); the unmatched turns after the last
 * matched one are appended. With no match at all: every turn if nothing is stored, else the
 * turns after the first nstored (the per-turn texts differ from the final ones). Writes positions
 * into turns[] to append, in order, into append (room for nturns); *gaps counts unmatched turns
 * before the last match (missed but not appendable without breaking the order). Returns the
 * number to append. */
size_t tr_reconcile_plan(const struct tr_stored *stored, size_t nstored,
                         const struct tr_turn *turns, size_t nturns, const char *conversation_id,
                         size_t *append, size_t *gaps);

#endif
