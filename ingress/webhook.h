/* webhook: the two ElevenLabs webhooks turned into Kafka messages: event_id choice, validation of
 * the per-turn transcription body, and post-call type routing. Pure functions: no I/O. */
#ifndef CALLPIPE_INGRESS_WEBHOOK_H
#define CALLPIPE_INGRESS_WEBHOOK_H

#include <jansson.h>
#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_EVENT_ID_SIZE 65 /* 64 hex digits + NUL; a UUID (36 + NUL) fits too */

/* Signed webhooks: event_id = lowercase hex SHA-256 of "<t>.<raw body>", the exact bytes the
 * signature covers, with t the verified timestamp in plain decimal (sig_key_verify_t). Every
 * spelling of one signed request (leading zeros, hex case, blanks, unknown items, several v0)
 * gets the same id; another body or timestamp another. sha256: fetched once by the caller
 * (EVP_MD_fetch; NULL looks it up on every call, under OpenSSL's lock). Returns 0 or -1. */
__attribute__((warn_unused_result)) int webhook_event_id_signed(const EVP_MD *sha256, int64_t t,
                                                                const void *body, size_t len,
                                                                char *out, size_t size);

/* Tool lines that carry an idempotency key: event_id = lowercase hex SHA-256 of
 * "tool\n<call_sid>\n<key>", so the key names one line of one call (the same key in another call
 * is another line). Returns 0 or -1. */
__attribute__((warn_unused_result)) int webhook_event_id_tool(const EVP_MD *sha256,
                                                              const char *call_sid, const char *key,
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
	char *value; /* encoded design.md §4 message */
	size_t value_len;
	char type[48]; /* post-call "type" as sent (truncated), "" for transcriptions */
};

#define WEBHOOK_IDEMPOTENCY_FIELD "idempotency_key"
#define WEBHOOK_IDEMPOTENCY_MAX   128 /* bytes */

/* A validated per-turn line, not yet stamped: the tool path checks its call_sid against the
 * call token, and takes its idempotency key for the event id, before the message is made. */
struct webhook_line {
	json_t *root;         /* the parsed body (owned) */
	const char *call_sid; /* borrowed from root */
	const char *key;      /* idempotency_key, borrowed from root or key_buf; NULL: absent */
	char key_buf[24];     /* an integer idempotency_key as decimal text */
};

/* Validates {call_sid, speaker: "agent"|"user", message, idempotency_key?} (unknown fields
 * ignored; idempotency_key a string of 1..WEBHOOK_IDEMPOTENCY_MAX bytes without control
 * characters, or an integer). Returns 0 (webhook_line_clear frees it), or -1 with errstr naming
 * the field (nothing to free). */
__attribute__((warn_unused_result)) int webhook_line_parse(const char *body, size_t len,
                                                           struct webhook_line *line, char *errstr,
                                                           size_t errstr_size);

/* Encodes the webhooks.transcription value of a parsed line (the idempotency key is not part of
 * it: the event_id stands for it). line stays valid. Returns 0, or -1 with errstr. */
__attribute__((warn_unused_result)) int webhook_line_encode(const struct webhook_line *line,
                                                            const char *event_id,
                                                            const char *received_at,
                                                            struct webhook_msg *out, char *errstr,
                                                            size_t errstr_size);
void webhook_line_clear(struct webhook_line *line);

/* webhook_line_parse + webhook_line_encode. Returns 0, or -1 with errstr naming the field. */
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

/* True when s is 1..max bytes of valid UTF-8 with no control characters (a usable id, Kafka key
 * and Postgres text value). */
bool webhook_id_ok(const char *s, size_t max);

#endif
