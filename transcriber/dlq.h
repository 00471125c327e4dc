/* dlq: the transcriber's dead letters through common/dlq (one header set for every worker,
 * docs/design.md §4): the original key, value and headers to "<source topic>.dlq". */
#ifndef CALLPIPE_TRANSCRIBER_DLQ_H
#define CALLPIPE_TRANSCRIBER_DLQ_H

#include "msg.h"

#include <stddef.h>

struct kbus_producer;

/* Produces m to m->topic + ".dlq" and waits for the broker's acknowledgement (timeout_ms).
 * error is the error that decided (the "error" and "first_error" headers: the transcriber keeps
 * only the last one). Returns 0, or -1 with errstr (nothing is known to be written: retry). */
__attribute__((warn_unused_result)) int tr_dlq_send(struct kbus_producer *p, const struct tr_msg *m,
                                                    const char *reason, const char *error,
                                                    unsigned attempts, int timeout_ms, char *errstr,
                                                    size_t errstr_size);

#endif
