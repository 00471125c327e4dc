/* ingress_it: what the ingress integration tests share: starting the real binary against the
 * test's broker (a private devbroker, or real Kafka), authenticated and signed requests,
 * concurrent requests (curl multi), and counting what reached a topic. */
#ifndef CALLPIPE_INGRESS_IT_H
#define CALLPIPE_INGRESS_IT_H

#include "tsupport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IT_TOKEN  "it-token-0123456789abcdef"
#define IT_SECRET "whsec_it_0123456789"
#define IT_AUTH   "Authorization: Bearer " IT_TOKEN
#define IT_JSON   "Content-Type: application/json"

struct it_ingress {
	struct ts_proc proc;
	unsigned port;
	char base[64]; /* "http://127.0.0.1:port" */
};

/* Starts the ingress on a free port against b, with the token and secret above, then extra
 * "KEY=VALUE" (NULL-terminated, may be NULL; later entries win). Waits for /healthz, and for
 * /readyz when wait_ready. prefix is the one b was started with (checked); the ingress gets
 * b->prefix, which on Kafka has the test's own namespace in front of it. */
void it_ingress_start(struct it_ingress *in, const struct ts_broker *b, const char *prefix,
                      const char *const *extra, bool wait_ready);
/* SIGTERM; returns the exit status (-1: did not exit within timeout_ms). */
int it_ingress_stop(struct it_ingress *in, int timeout_ms);

/* What most ingress tests run on: the test's broker and one ingress on it. */
struct it_stack {
	struct ts_broker broker;
	struct it_ingress in;
};

/* Starts a broker (ts_broker_start: topic prefix, partitions per topic) and an ingress on it with
 * extra (as it_ingress_start), waiting until it is ready. The caller frees it with
 * it_stack_free. */
struct it_stack *it_stack_new(const char *prefix, int partitions, const char *const *extra);
/* Stops the ingress (20 s) and the broker, frees st, then asserts the ingress exited 0. */
void it_stack_free(struct it_stack *st);

/* Full URL of path into a static buffer per call (rotating, 8 deep). */
const char *it_url(const struct it_ingress *in, const char *path);

/* POST path with the bearer token and JSON content type. */
void it_post_auth(const struct it_ingress *in, const char *path, const char *body,
                  struct ts_http_resp *resp);
/* POST a webhook body signed with secret at unix time t (secret NULL: no signature header). */
void it_post_signed(const struct it_ingress *in, const char *path, const char *body,
                    const char *secret, int64_t t, struct ts_http_resp *resp);
/* The signature header value for body at t ("t=..,v0=.."). */
void it_sign(const char *secret, int64_t t, const char *body, char *out, size_t size);
/* The event id of a webhook signed at t: lowercase hex SHA-256 of "<t>.<body>" (the signed
 * payload), computed here independently of the ingress. */
void it_event_id(int64_t t, const char *body, char out[65]);

/* Header value from a raw response header block (case-insensitive name), copied into out;
 * false when absent. */
bool it_header(const char *headers, const char *name, char *out, size_t size);
/* A string field of a JSON body (copied); false when absent or not a string. */
bool it_json_str(const char *body, const char *field, char *out, size_t size);

/* Messages in topic (full name: ts_broker_topic) whose key is key. */
size_t it_count_key(const struct ts_broker *b, const char *topic, const char *key);

/* Sends n requests at once over n connections (curl multi) and waits for all; statuses[i] gets
 * each HTTP status (0 on a transport error). bodies[i] may differ per request. */
void it_multi_post(const char *url, const char *const *headers, const char *const *bodies, size_t n,
                   long *statuses);

/* Value of an unlabelled or labelled series from /metrics ("name" or "name{labels}"); -1 when
 * absent. */
double it_metric(const struct it_ingress *in, const char *series);

/* Lines of the ingress's log (stderr) that contain needle. */
size_t it_log_count(const struct it_ingress *in, const char *needle);

/* ---- raw connections, for clients no HTTP library would be (slow, greedy, half-sent) ---- */
/* A blocking TCP connection to the ingress from source address src ("127.0.0.2": any address of
 * 127/8 is this host; NULL: the default). Fails the test when it cannot connect. */
int it_raw_connect(const struct it_ingress *in, const char *src);
/* Sends all of len bytes; false when the connection failed (closed or reset by the server). */
bool it_raw_send(int fd, const void *data, size_t len);
/* Reads a response's status line and headers, up to timeout_ms (headers may be NULL). Returns
 * the status; 0 when the connection ended without one; -1 when nothing came in time. */
int it_raw_status(int fd, int timeout_ms, char *headers, size_t size);
/* Waits up to timeout_ms for the server to close fd (what arrives is discarded); returns the
 * milliseconds it took, -1 when fd is still open. */
long it_raw_wait_close(int fd, int timeout_ms);
/* True when fd is still open (nothing to read, no end of stream), without waiting. */
bool it_raw_open(int fd);
/* A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM"); fails the test when absent. */
long it_proc_kib(pid_t pid, const char *field);
/* Monotonic milliseconds. */
long long it_now_ms(void);

#endif
