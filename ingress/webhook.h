/* webhook: the two ElevenLabs webhooks turned into Kafka messages: event_id choice, validation of
 * the per-turn transcription body, and post-call type routing. Pure functions: no I/O. */
#ifndef CALLPIPE_INGRESS_WEBHOOK_H
#define CALLPIPE_INGRESS_WEBHOOK_H

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>

#define WEBHOOK_EVENT_ID_SIZE 65 /* 64 hex digits + NUL; a UUID (36 + NUL) fits too */

/* Signed mode: event_id = lowercase hex SHA-256 of (signature header + "\n" + raw body), so an
 * exact re-delivery of the same webhook gets the same id. sha256: fetched once by the caller
 * (EVP_MD_fetch; NULL looks it up on every call, under OpenSSL's lock). Returns 0 or -1. */
__attribute__((warn_unused_result)) int webhook_event_id_signed(const EVP_MD *sha256,
                                                                const char *sig_header,
                                                                const void *body, size_t len,
                                                                char *out, size_t size);

/* Unsigned mode: a random UUID v4 (from the kernel's CSPRNG). Returns 0 or -1. */
__attribute__((warn_unused_result)) int webhook_event_id_random(char *out, size_t size);

enum webhook_action {
	WEBHOOK_PUBLISH = 0, /* publish value under key */
	WEBHOOK_DROP_AUDIO,  /* post_call_audio: answer 200, count, store nothing */
	WEBHOOK_IGNORE,      /* unknown post-call type: answer 200, count, store nothing */
};

/* What to publish for one accepted webhook. Owns its strings; webhook_msg_clear frees them. */
struct webhook_msg {
	enum webhook_action action;
	char *key; /* call_sid, or conversation_id for a post-call event without one */
	size_t key_len;
	char *value; /* encoded DESIGN §4 message */
	size_t value_len;
	char type[48]; /* post-call "type" as sent (truncated), "" for transcriptions */
};

/* Validates {call_sid, speaker: "agent"|"user", message} (unknown fields ignored) and encodes the
 * webhooks.transcription value. Returns 0, or -1 with errstr naming the field. */
__attribute__((warn_unused_result)) int webhook_transcription(const char *body, size_t len,
                                                              const char *event_id,
                                                              const char *received_at,
                                                              struct webhook_msg *out, char *errstr,
                                                              size_t errstr_size);

/* Routes a post-call webhook by its "type": post_call_transcription and call_initiation_failure
 * are encoded for webhooks.post_call (keyed by the call_sid of the dynamic variables, else by
 * data.conversation_id; neither is an error); post_call_audio and unknown types are not
 * published (out->action says which). Returns 0, or -1 with errstr naming the field. */
__attribute__((warn_unused_result)) int webhook_post_call(const char *body, size_t len,
                                                          const char *event_id,
                                                          const char *received_at,
                                                          struct webhook_msg *out, char *errstr,
                                                          size_t errstr_size);

void webhook_msg_clear(struct webhook_msg *m);

/* True when s is 1..max bytes with no control characters (a usable id and Kafka key). */
bool webhook_id_ok(const char *s, size_t max);

#endif
