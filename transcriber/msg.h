/* msg: one consumed webhook message, copied out of librdkafka and decoded, with the bookkeeping
 * it carries while it waits (parked) or is processed. */
#ifndef CALLPIPE_TRANSCRIBER_MSG_H
#define CALLPIPE_TRANSCRIBER_MSG_H

#include "codec.h"
#include "process.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Headers a redrive adds: how often the message was redriven, and where the ingress first put
 * it (partition/offset in its source topic: the line's place in its call). */
#define TR_HDR_REDRIVE_COUNT    "redrive_count"
#define TR_HDR_ORIGIN_PARTITION "origin_partition"
#define TR_HDR_ORIGIN_OFFSET    "origin_offset"

enum tr_msg_kind {
	TR_MSG_BAD,       /* undecodable: dead-letter bad_message (error says why) */
	TR_MSG_LINE,      /* webhooks.transcription */
	TR_MSG_POST_CALL, /* webhooks.post_call */
};

struct tr_header {
	char *name;
	char *value; /* NUL-terminated copy */
};

struct tr_msg {
	/* where it came from */
	char *topic; /* full topic name */
	int32_t partition;
	int64_t offset;
	int64_t timestamp_ms; /* Kafka message timestamp, -1 unknown */
	char *key;            /* NUL-terminated copy, may be NULL */
	char *value;
	size_t value_len;
	struct tr_header *headers;
	size_t nheaders;

	/* decoded */
	bool decoded; /* tr_msg_decode ran */
	enum tr_msg_kind kind;
	char error[256]; /* TR_MSG_BAD: why */
	struct codec_transcription line;
	struct codec_post_call post;
	struct tr_post_call pc;
	const char *call_sid; /* the key of its call's order: borrowed from the decoded message, or
	                         from resolved_call_sid */
	char *resolved_call_sid; /* a post-call's call found by its conversation_id (owned) */
	int32_t order_partition; /* the line's position in the ingress's order (origin headers) */
	int64_t order_offset;

	/* processing state */
	unsigned attempts;     /* processing attempts so far */
	enum tr_wait wait;     /* what it is waiting for, NONE when not waiting */
	int64_t wait_since_ms; /* monotonic ms when that wait began */
	int64_t added_ms;      /* monotonic ms when consumed */
	int64_t retry_at_ms;   /* a post-call's conversation is looked up again from then on */
	bool gate_passed;      /* a post-call that may go (its call's lines were read) */
};

/* A copy of a consumed message, not decoded yet. NULL when out of memory. */
struct tr_msg *tr_msg_from_kafka(const rd_kafka_message_t *rkm);

/* The same from parts (tests, replay). headers: "name", "value", ... pairs, nheaders pairs. */
struct tr_msg *tr_msg_new(const char *topic, int32_t partition, int64_t offset,
                          int64_t timestamp_ms, const char *key, const void *value,
                          size_t value_len, const char *const *headers, size_t nheaders);

/* Decodes the value by topic (line_topic / post_topic are full names) and sets kind, call_sid and
 * the order position. Anything undecodable becomes TR_MSG_BAD with error set. */
void tr_msg_decode(struct tr_msg *m, const char *line_topic, const char *post_topic);

/* Gives a post-call that carried no call_sid the one of its call (copied). Returns 0 or -1. */
__attribute__((warn_unused_result)) int tr_msg_resolve_call(struct tr_msg *m, const char *call_sid);

/* The value of header name, or NULL. Borrowed from m. */
const char *tr_msg_header(const struct tr_msg *m, const char *name);

void tr_msg_free(struct tr_msg *m); /* NULL ok */

/* A growable array of message pointers (not owning). */
struct tr_vec {
	struct tr_msg **v;
	size_t n, cap;
};
__attribute__((warn_unused_result)) int tr_vec_push(struct tr_vec *vec, struct tr_msg *m);
void tr_vec_free(struct tr_vec *vec); /* frees the array only */

#endif
