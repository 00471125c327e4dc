/* request: the BatchCallRequest of POST /driver_data/call-elevenlabs: field-by-field validation,
 * call_sid construction (phone numbers: phone.h). Pure functions: no I/O, no globals. */
#ifndef CALLPIPE_INGRESS_REQUEST_H
#define CALLPIPE_INGRESS_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Bounds of the fields that become part of a call_sid (and so of a Kafka key). */
#define REQUEST_DRIVER_ID_MAX  100
#define REQUEST_TIMESTAMP_MAX  64
#define REQUEST_TEXT_MAX       255  /* driverName, callType, trip ids, violation type */
#define REQUEST_RULES_MAX      4096 /* customRules, violation description */
#define REQUEST_DRIVERS_MAX    100
#define REQUEST_VIOLATIONS_MAX 50

/* True when s is 1..max bytes of [A-Za-z0-9._:+-] (safe inside a call_sid and a Kafka key). */
bool request_token_ok(const char *s, size_t max);

/* Writes "EL_{driver_id}_{timestamp}" into out. Returns 0, or -1 when either part fails
 * request_token_ok or the result does not fit. */
__attribute__((warn_unused_result)) int request_call_sid(const char *driver_id,
                                                         const char *timestamp, char *out,
                                                         size_t size);

/* A validated request: one calls.requested message per driver. */
struct request_batch;

/* Parses and validates body (raw bytes). requested_at (ISO-8601) goes into every message.
 * Returns NULL with errstr naming the field (e.g. "drivers[1].phoneNumber: ...") when the body
 * is not a valid BatchCallRequest. Caller frees with request_batch_free. */
struct request_batch *request_parse(const char *body, size_t len, const char *requested_at,
                                    char *errstr, size_t errstr_size);
void request_batch_free(struct request_batch *rb);

size_t request_batch_count(const struct request_batch *rb);
/* Borrowed until request_batch_free. */
const char *request_batch_call_sid(const struct request_batch *rb, size_t i);
const char *request_batch_driver_id(const struct request_batch *rb, size_t i);
/* The encoded calls.requested value of driver i (compact JSON, borrowed). */
const char *request_batch_value(const struct request_batch *rb, size_t i, size_t *len);

/* The 202 body: {message, timestamp, calls:[{driverId, call_sid}], call_sid, driver}. New ref. */
json_t *request_batch_reply(const struct request_batch *rb);

#endif
