/* dlq: dead-lettering: the original key and value to "<source topic>.dlq", with the original
 * headers plus error, reason, attempts, source_topic, source_partition, source_offset and
 * dead_lettered_at. */
#ifndef CALLPIPE_TRANSCRIBER_DLQ_H
#define CALLPIPE_TRANSCRIBER_DLQ_H

#include "msg.h"

#include <stdbool.h>
#include <stddef.h>

struct kbus_producer;

/* Header names the dead-letter adds (and a redrive removes). */
#define TR_HDR_ERROR            "error"
#define TR_HDR_REASON           "reason"
#define TR_HDR_ATTEMPTS         "attempts"
#define TR_HDR_SOURCE_TOPIC     "source_topic"
#define TR_HDR_SOURCE_PARTITION "source_partition"
#define TR_HDR_SOURCE_OFFSET    "source_offset"
#define TR_HDR_DEAD_LETTERED_AT "dead_lettered_at"

/* True for the header names above. */
bool tr_dlq_header(const char *name);

/* Produces m to m->topic + ".dlq" and waits for the broker's acknowledgement (timeout_ms).
 * Returns 0, or -1 with errstr (nothing is known to be written: retry). */
__attribute__((warn_unused_result)) int tr_dlq_send(struct kbus_producer *p, const struct tr_msg *m,
                                                    const char *reason, const char *error,
                                                    unsigned attempts, int timeout_ms, char *errstr,
                                                    size_t errstr_size);

#endif
