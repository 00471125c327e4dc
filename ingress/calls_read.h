/* calls_read: GET /calls/{call_sid}: the call row and its transcript in order, from Postgres.
 * Lookups run on their own worker threads, each with its own connection opened lazily, so a slow
 * or dead database never holds an HTTP thread (the ingress starts and serves webhooks without
 * Postgres). */
#ifndef CALLPIPE_INGRESS_CALLS_READ_H
#define CALLPIPE_INGRESS_CALLS_READ_H

#include <jansson.h>
#include <stddef.h>

struct calls_read;
struct db;
struct store_call;

/* Called once per submitted lookup, from a worker thread: status 200 with body = {call: {...},
 * transcript: [...]}, 404 (no such call) or 503 (database unreachable, or the job waited longer
 * than wait_ms); body is NULL unless 200 and is handed over to the callee. error says why for
 * non-200 (borrowed for the call). */
typedef void calls_read_done_fn(void *opaque, unsigned status, json_t *body, const char *error);

/* Starts nthreads workers on url (libpq URL) and schema. Nothing connects until the first lookup.
 * NULL + errstr on failure. Caller owns; calls_read_destroy answers queued jobs with 503, stops
 * the workers and closes their connections (NULL ok). */
struct calls_read *calls_read_new(const char *url, const char *schema, int nthreads, long wait_ms,
                                  char *errstr, size_t errstr_size);
void calls_read_destroy(struct calls_read *cr);

/* Queues a lookup of call_sid. Returns 0 (done will be called exactly once) or -1 when the queue
 * is full or stopping (done not called). */
__attribute__((warn_unused_result)) int calls_read_submit(struct calls_read *cr,
                                                          const char *call_sid,
                                                          calls_read_done_fn *done, void *opaque);

/* A read of any kind, run on a worker's connection (connected: db_ensure succeeded): returns
 * the HTTP status (200 with *out set, a new ref; 400/404 with errstr; 503 when the database
 * failed). Run again once when it answered 503 and the connection was found dropped. */
typedef unsigned calls_read_fn(struct db *db, void *arg, json_t **out, char *errstr,
                               size_t errstr_size);

/* Queues fn(db, arg) on the workers: the console's list and statistics reads share the pool and
 * its database connections. arg is borrowed until done was called. Returns 0 (done will be called
 * exactly once, with error naming the failure for non-200) or -1 (queue full or stopping; done
 * not called). */
__attribute__((warn_unused_result)) int calls_read_submit_fn(struct calls_read *cr,
                                                             calls_read_fn *fn, void *arg,
                                                             calls_read_done_fn *done,
                                                             void *opaque);

/* The lookup itself on a connected db: returns the HTTP status as above, *out set for 200 (new
 * ref). Reconnects once when the server dropped the connection. */
unsigned calls_read_lookup(struct db *db, const char *call_sid, json_t **out, char *errstr,
                           size_t errstr_size);

/* The JSON form of a call row: "" columns become null. New ref. */
json_t *calls_read_call_json(const struct store_call *c);

#endif
