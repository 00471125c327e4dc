/* deadletter: the one dead-letter producer of every worker: the original key, value and headers to
 * "<source topic>.dlq", plus one documented header set (docs/design.md §4). */
#ifndef CALLPIPE_DEADLETTER_H
#define CALLPIPE_DEADLETTER_H

#include "kbus.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The headers a dead letter adds (and a redrive removes). */
#define DEADLETTER_HDR_REASON           "reason"      /* short code: unknown_call_sid, ... */
#define DEADLETTER_HDR_ERROR            "error"       /* the last error: the one that decided */
#define DEADLETTER_HDR_FIRST_ERROR      "first_error" /* the first error seen */
#define DEADLETTER_HDR_ATTEMPTS         "attempts"    /* tries before giving up */
#define DEADLETTER_HDR_SOURCE_TOPIC     "source_topic"
#define DEADLETTER_HDR_SOURCE_PARTITION "source_partition"
#define DEADLETTER_HDR_SOURCE_OFFSET    "source_offset"
#define DEADLETTER_HDR_DEAD_LETTERED_AT "dead_lettered_at" /* RFC 3339 UTC, ms */

/* One message to dead-letter. Everything is borrowed for the duration of deadletter_send. */
struct deadletter {
	const char *source_topic; /* the letter goes to source_topic + ".dlq" */
	int32_t partition;
	int64_t offset;
	const void *key; /* may be NULL */
	size_t key_len;
	const void *value;
	size_t value_len;
	const struct kbus_header *headers; /* the original headers, kept (ours are replaced) */
	size_t nheaders;
	const char *reason;
	const char *first_error; /* NULL: the same as last_error */
	const char *last_error;  /* NULL: "" */
	unsigned attempts;       /* 0 counts as 1 */
};

/* True for the header names above: the ones a dead letter sets (an earlier dead letter's are
 * replaced, and a redrive removes them). */
bool deadletter_header(const char *name);

/* Produces the letter and waits for the broker's acknowledgement (timeout_ms). Returns 0, or -1
 * with errstr (nothing is known to be written: retry). */
__attribute__((warn_unused_result)) int deadletter_send(struct kbus_producer *p,
                                                        const struct deadletter *l, int timeout_ms,
                                                        char *errstr, size_t errstr_size);

/* Copies a consumed message's headers (values NUL-terminated; a header without a value becomes
 * ""). Returns 0 with *out (NULL when there are none) and *n, or -1 when out of memory. The
 * caller frees with deadletter_headers_free. */
__attribute__((warn_unused_result)) int deadletter_headers_copy(const rd_kafka_message_t *rkm,
                                                                struct kbus_header **out,
                                                                size_t *n);
void deadletter_headers_free(struct kbus_header *h, size_t n);

#endif
