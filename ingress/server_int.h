/* server_int: what server.c (the MHD plumbing) and routes.c (the endpoints) share. Internal. */
#ifndef CALLPIPE_INGRESS_SERVER_INT_H
#define CALLPIPE_INGRESS_SERVER_INT_H

#include "config.h"
#include "httpd.h"
#include "log.h"
#include "publish.h"
#include "sig.h"

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/types.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ingress_config;
struct calls_read;
struct conn;
struct conns;
struct metrics;
struct metric;
struct calltoken_key;
struct ready;

enum route {
	ROUTE_CALL_REQUEST = 0, /* POST /driver_data/call-elevenlabs */
	ROUTE_TRANSCRIPTION,    /* POST /webhooks/elevenlabs/transcription */
	ROUTE_POST_CALL,        /* POST /webhooks/elevenlabs/post-call */
	ROUTE_CALLS_READ,       /* GET /calls/{call_sid} */
	ROUTE_HEALTHZ,
	ROUTE_READYZ,
	ROUTE_METRICS,
	ROUTE_OTHER,
	ROUTE_N,
};

#define SERVER_STATUS_SLOTS 10

#define ROUTES_SIG_HEADER   "ElevenLabs-Signature"
#define ROUTES_TOOL_HEADER  "X-Callpipe-Tool-Secret"
#define ROUTES_TOKEN_HEADER "X-Callpipe-Call-Token"

struct server {
	const struct ingress_config *conf;
	struct publish *pub;
	struct calls_read *reads;
	struct metrics *metrics;
	/* one single-threaded daemon per HTTP thread, each listening on the same port */
	struct MHD_Daemon *daemons[INGRESS_THREADS_MAX];
	unsigned ndaemons;
	/* returned by MHD_quiesce_daemon; closed after the daemon stops */
	MHD_socket listen_fds[INGRESS_THREADS_MAX];
	unsigned port;
	struct conns *conns;       /* open connections: per-address limit, deadlines */
	_Atomic size_t body_bytes; /* request bodies held (INGRESS_BODY_BUDGET) */
	atomic_bool draining;
	atomic_long in_flight;
	atomic_long suspended;
	/* per-request warnings that an outage or an attacker can repeat thousands of times a
	 * second: at most one line a second each (log_warn_limited), with the count held back */
	struct log_limit log_failed, log_timed_out, log_bad_auth, log_refused;
	struct httpd_mhd_logger log_mhd; /* libmicrohttpd's diagnostics (httpd_mhd_log) */
	pthread_mutex_t wait_lock;       /* guards the wait list */
	struct req *wait_head;           /* requests waiting, not yet done */
	pthread_t timer;
	bool timer_started;
	atomic_bool timer_stop;
	struct ready *probe; /* the broker check behind /readyz, on its own thread */
	bool has_token;
	unsigned char token_hash[32]; /* SHA-256 of INGRESS_API_TOKEN */
	bool has_tool_secret;
	unsigned char tool_hash[32]; /* SHA-256 of INGRESS_TOOL_SECRET */
	/* CALL_TOKEN_SECRET, ready to verify tool lines' call tokens; NULL: no tool path */
	struct calltoken_key *call_token_key;
	EVP_MD *sha256; /* fetched once: event ids and secret digests */
	/* ELEVENLABS_WEBHOOK_SECRET, ready to verify; NULL: unsigned webhooks */
	struct sig_key *webhook_key;
	uint64_t request_id_base; /* random, drawn at start */
	atomic_uint_fast64_t request_seq;
	_Atomic(struct metric *) m_requests[ROUTE_N][SERVER_STATUS_SLOTS];
	struct metric *m_in_flight;
	struct metric *m_audio_dropped;
	struct metric *m_ignored;
	struct metric *m_connections; /* gauges refreshed by the deadline timer */
	struct metric *m_body_bytes;
};

/* One HTTP request, from its headers to the response. Referenced by MHD (until the request
 * completes) and by a pending publish or read (until its callback ran). */
struct req {
	struct server *srv;
	struct MHD_Connection *conn;
	struct conn *edge;    /* the connection's record (conns.h); NULL: none */
	pthread_mutex_t lock; /* guards the waiting state below (not refs) */
	atomic_uint refs;
	enum route route;
	int64_t start_mono_ms;
	int64_t received_ms;
	char received_at[32];
	char request_id[40];
	/* body */
	char *body;
	size_t len, cap, limit;
	size_t reserved;  /* of INGRESS_BODY_BUDGET, given back when rq is freed */
	unsigned refused; /* 413 or 503 once a chunked body outgrew its limit or the budget */
	bool body_started;
	/* waiting: set by the route before suspending, completed by a callback */
	bool waiting;   /* a publish or read was started: the next call answers from done_* */
	bool suspended; /* MHD_suspend_connection called and not yet resumed */
	bool done;      /* done_* are final */
	unsigned ok_status;
	json_t *ok_body; /* answer when the publish succeeds (owned) */
	unsigned done_status;
	json_t *done_body; /* owned */
	char event_id[72];
	/* on the server's wait list (guarded by server.wait_lock) */
	struct req *wait_prev, *wait_next;
	bool on_wait_list;
	int64_t deadline_ms; /* monotonic: answer 503 if the wait is not over by then */
};

/* ---- respond.c ---- */
extern const char *const route_names[ROUTE_N];
/* Counts one answer in ingress_requests_total{route,status}. */
void server_count_request(struct server *s, enum route route, unsigned status);
/* A request context for conn (one reference, MHD's), counted in ingress_in_flight. NULL on OOM. */
struct req *req_new(struct server *s, struct MHD_Connection *conn);
void req_ref(struct req *rq);
void req_unref(struct req *rq);
/* MHD_OPTION_NOTIFY_COMPLETED: drops MHD's reference. */
void server_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe);
/* Queues a JSON answer (body borrowed; NULL = empty object). extra: "Name", "value", ... NULL
 * (may be NULL). Counts ingress_requests_total{route,status}. */
enum MHD_Result server_reply(struct req *rq, unsigned status, const json_t *body,
                             const char *const *extra);
/* Queues {"error": msg} and counts ingress_rejected_total{reason} (reason may be NULL). 503s
 * carry Retry-After. */
enum MHD_Result server_reply_error(struct req *rq, unsigned status, const char *msg,
                                   const char *reason);
/* ---- wait.c ---- */
/* The deadline timer: answers 503 for waits older than INGRESS_DELIVERY_TIMEOUT_MS. */
int server_timer_start(struct server *s);
void server_timer_stop(struct server *s);
/* Starts waiting: publishes msgs to topic; answers ok_status with ok_body (stolen) once the
 * broker acknowledged all, 503 otherwise. The connection is suspended meanwhile. */
enum MHD_Result server_publish(struct req *rq, enum publish_topic topic,
                               const struct publish_msg *msgs, size_t n, unsigned ok_status,
                               json_t *ok_body);
/* Answers a request whose wait finished (called again by MHD after the resume). */
enum MHD_Result server_answer_done(struct req *rq);
/* Starts waiting for a GET /calls lookup. */
enum MHD_Result server_read_call(struct req *rq, const char *call_sid);

/* ---- admit.c ---- */
/* Header stage of a webhook: the credential its headers carry (a well-formed, fresh signature,
 * or the tool's secret), before a byte of the body is stored. true to go on; otherwise a 401 was
 * queued into *ret. */
bool admit_webhook(struct req *rq, enum MHD_Result *ret);
/* Content-Length (cl, NULL when chunked) against the route's limit (413) and the body budget
 * (503), then the body's deadline. true to go on; otherwise an answer was queued into *ret. */
bool admit_length(struct req *rq, const char *cl, enum MHD_Result *ret);
/* Takes n more bytes of the body budget for rq (false: they do not fit); admit_release gives
 * back all rq holds (req_unref does). */
bool admit_reserve(struct req *rq, size_t n);
void admit_release(struct req *rq);
/* One piece of body: stored, or dropped once the body was refused. MHD_NO: out of memory. */
enum MHD_Result admit_body(struct req *rq, const char *data, size_t size);
/* At the end of the upload: answers a body refused on the way (413, 503) into *ret and returns
 * true; false when it was not refused. */
bool admit_refused(struct req *rq, enum MHD_Result *ret);
/* From the deadline timer: closes overdue connections, refreshes the gauges. */
void admit_tick(struct server *s, int64_t now_ms);

/* ---- routes.c ---- */
/* Header-stage checks of a POST route (auth, content type, length). Returns true when the
 * request may continue to its body; otherwise an answer was queued into *ret. */
bool routes_admit(struct req *rq, enum MHD_Result *ret);
/* Handles a complete request body for the POST routes. */
enum MHD_Result routes_call_request(struct req *rq);
enum MHD_Result routes_transcription(struct req *rq);
enum MHD_Result routes_post_call(struct req *rq);
/* Bearer check (constant time); true when authorized or no token is configured. */
bool routes_authorized(struct req *rq);
/* Compares a presented secret with want, the digest of the configured one (constant time). */
bool routes_secret_equal(const struct server *s, const char *presented,
                         const unsigned char want[32]);

#endif
