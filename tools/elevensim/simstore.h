/* simstore: elevensim's in-memory state: per-call_sid statistics and the conversations it
 * placed, with their scripted turns and the webhook bodies built from them. Thread-safe (one
 * mutex); everything returned is a copy or a new reference. */
#ifndef CALLPIPE_ELEVENSIM_SIMSTORE_H
#define CALLPIPE_ELEVENSIM_SIMSTORE_H

#include "simconf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sim_store;

struct sim_store *sim_store_new(void);
void sim_store_free(struct sim_store *s);

/* Forgets every call and conversation; bumps the generation so queued playback stops. */
void sim_store_reset(struct sim_store *s);
uint64_t sim_store_generation(struct sim_store *s);

/* An outbound-call request arrived for call_sid: returns its 0-based index for that call_sid. */
int sim_store_request(struct sim_store *s, const char *call_sid);

/* Records the status the request was answered with (0 for a hang that was never answered);
 * accepted: a call was placed ({success: true}, or a placed_502/placed_504 gateway error). */
void sim_store_answered(struct sim_store *s, const char *call_sid, int status, bool accepted);

/* Places a conversation: writes its id ("conv_...") and Twilio callSid ("CA...") into the
 * buffers (>= 64 bytes each). dynvars is copied. Returns 0 or -1 (out of memory). */
int sim_store_conv_new(struct sim_store *s, const char *call_sid, const char *agent_id,
                       const char *to_number, const json_t *dynvars, enum sim_mode mode, int turns,
                       uint64_t seed, char *conv_id, char *twilio_sid);

enum sim_event {
	SIM_EVENT_TURN,      /* the next per-turn transcription webhook */
	SIM_EVENT_POST_CALL, /* post_call_transcription (or nothing in no_post_call mode) */
	SIM_EVENT_INIT_FAIL, /* call_initiation_failure */
	SIM_EVENT_NONE,      /* the conversation is over (or was reset) */
};

/* The next thing conversation conv_id does, and its webhook body (new reference, NULL for
 * SIM_EVENT_NONE or a post-call that is not sent). Advances the conversation: a turn is added
 * to its transcript, statuses move initiated -> in-progress -> processing -> done/failed.
 * call_token gets the call_token dynamic variable for a turn of a call that has one ("" else):
 * such a turn is the agent's tool posting, and its body carries idempotency_key
 * "<conversation_id>:<turn>". */
enum sim_event sim_store_next(struct sim_store *s, const char *conv_id, uint64_t generation,
                              json_t **body, char *call_sid, size_t call_sid_size, char *call_token,
                              size_t call_token_size);

/* Webhook bookkeeping for the call: one attempt made, and whether it was finally delivered
 * (body: the webhook sent; a delivered turn is added to the call's "lines"). */
void sim_store_webhook_attempt(struct sim_store *s, const char *call_sid);
void sim_store_webhook_result(struct sim_store *s, const char *call_sid, enum sim_event ev,
                              bool delivered, const char *body);

/* GET /v1/convai/conversations/{id}: the conversation as JSON (new ref), NULL if unknown. */
json_t *sim_store_conv_json(struct sim_store *s, const char *conv_id);

/* GET /sim/stats: {"totals": {...}, "calls": {call_sid: {outbound_requests (= requests),
 * accepted, outcome (ok|initiation_failure|refused|hang), answers [statuses], conversation_id,
 * mode, lines [{speaker, message}] delivered, webhook_attempts, webhooks_sent, webhooks_failed,
 * post_call_sent, post_call_type, conversation_gets}}}; only that call when call_sid is not
 * NULL. New reference. */
json_t *sim_store_stats(struct sim_store *s, const char *call_sid);

#endif
