/* postcall: a post-call webhook applied inside the batch transaction: the call's final status,
 * end time and conversation_id, and the reconciliation of the stored transcript with the final
 * one (docs/transcriber.md, "Post-call and reconciliation"). */
#ifndef CALLPIPE_TRANSCRIBER_POSTCALL_H
#define CALLPIPE_TRANSCRIBER_POSTCALL_H

#include "batch.h"
#include "msg.h"

struct db;

/* A post-call (transcription or initiation failure) that carried no call_sid (ElevenLabs sends
 * one only when the call had our dynamic variables; the ingress keys it by conversation_id) gets
 * the call_sid of the call whose stored conversation_id it names, outside any transaction,
 * before it is routed; it skips the post-call gate (its partition is not its call's). Unmatched,
 * it is left as it is (dead-lettered as unknown_call_sid, and redrivable). Returns 0, or -1 on a
 * database error or out of memory: retry the round. */
__attribute__((warn_unused_result)) int tr_postcall_resolve(struct db *db, struct tr_msg *m);

/* Fills in the call's conversation_id from a post_call_transcription before anything else in the
 * batch, so per-turn lines waiting for it (the dialer died after the API accepted the call) go in
 * ahead of the post-call. Does nothing for other types, unknown or failed calls, or a call that
 * has its id. Returns 0, or -1 on a database error (db_errclass). */
__attribute__((warn_unused_result)) int tr_postcall_heal(struct db *db, const struct tr_msg *m);

/* True when m is a post-call tr_postcall_heal may act on (it reads the call first). */
bool tr_postcall_may_heal(const struct tr_msg *m);

/* Applies m (TR_MSG_POST_CALL, call_sid set). The caller holds the call's write lock. A failed
 * call is dead-lettered (call_failed), except one failed as dial_outcome_unknown: a transcription
 * post-call completes it. Returns 0 with res DONE, WAIT (TR_WAIT_UNKNOWN_CALL;
 * res->wait_since_ms not set) or DLQ; -1 on a database error (db_errclass). */
__attribute__((warn_unused_result)) int tr_postcall_apply(struct db *db, const struct tr_msg *m,
                                                          struct tr_result *res);

#endif
