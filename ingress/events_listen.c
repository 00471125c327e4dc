/* events_listen: the LISTEN thread: notifications -> hub, pings, reconnect with backoff. */
#include "events_listen.h"

#include "backoff.h"
#include "db.h"
#include "events_hub.h"
#include "events_notify.h"
#include "log.h"
#include "metrics.h"
#include "store_events.h"
#include "timeutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENTS_POLL_MS     250 /* longest wait on the socket: how soon a stop is noticed */
#define EVENTS_BACKOFF_MS  200
#define EVENTS_BACKOFF_MAX 5000

struct events_listen {
	struct events_hub *hub;
	struct db *db;
	char *url;
	char *schema;
	long ping_ms;
	size_t max_lines;
	char app_name[64]; /* application_name of the listening session */
	pthread_t thread;
	atomic_bool stop;
	atomic_bool up;
	struct metric *m_up, *m_events, *m_lost, *m_bulk, *m_bad;
	struct metric *m_ring, *m_ring_bytes, *m_slow, *m_resumed, *m_not_resumed;
	struct events_hub_stats seen; /* the hub's counters as last exported */
	struct log_limit log_down, log_bad;
};

/* A line of a "lines" notification, read back: one line.stored event. */
static int events_listen_line(void *opaque, const struct store_event_line *line)
{
	struct events_listen *el = opaque;
	char *data = events_line_data(line);
	int rc;

	if (data == NULL)
		return -1;
	rc = events_hub_publish(el->hub, "line.stored", data);
	free(data);
	if (rc == 0)
		metric_inc(el->m_events);
	return rc;
}

/* Everything a change too large to announce row by row tells the subscribers: reload. */
static void events_listen_bulk(struct events_listen *el, uint64_t rows)
{
	metric_inc(el->m_bulk);
	log_info("a change too large to stream: subscribers resync", LOGI("rows", rows),
	         LOGI("max_lines", el->max_lines));
	events_hub_resync_all(el->hub, EVENTS_RESYNC_BULK);
}

/* One notification. Returns 0, or -1 when the lines it names could not be read (the caller
 * treats the listener as lost: those events would be missing). */
static int events_listen_handle(struct events_listen *el, const char *payload)
{
	struct events_note note;
	char err[256];
	int rc = 0;

	if (events_note_parse(payload, el->schema, &note, err, sizeof err) != 0) {
		metric_inc(el->m_bad);
		log_warn_limited(&el->log_bad, "notification ignored: not one of migration 009's",
		                 LOGS("error", err));
		goto out;
	}
	switch (note.kind) {
	case EVENTS_NOTE_EVENT:
		if (events_hub_publish(el->hub, note.type, note.data) == 0)
			metric_inc(el->m_events);
		break;
	case EVENTS_NOTE_LINES:
		if (note.nlines > el->max_lines) {
			events_listen_bulk(el, note.nlines);
			break;
		}
		rc = store_events_lines(el->db, note.lo, note.hi, note.nranges, events_listen_line,
		                        el);
		if (rc != 0)
			log_warn("cannot read the lines a notification names",
			         LOGS("error", db_errmsg(el->db)), LOGI("lines", note.nlines));
		break;
	case EVENTS_NOTE_BULK:
		events_listen_bulk(el, note.nlines);
		break;
	case EVENTS_NOTE_IGNORE:
	default:
		break;
	}
out:
	events_note_clear(&note);
	return rc;
}

/* Connects and LISTENs. Every stream open now may have missed changes (none is, normally:
 * /events answers 503 while the listener is down), so they all resync. Returns 0 or -1. */
static int events_listen_connect(struct events_listen *el)
{
	if (el->db == NULL) {
		char err[256];

		el->db = db_open(el->url, el->schema, err, sizeof err);
		if (el->db == NULL) {
			log_warn_limited(&el->log_down, "events: cannot open the database handle",
			                 LOGS("error", err));
			return -1;
		}
	}
	if (db_ensure(el->db) != 0 || store_events_listen(el->db, el->app_name) != 0) {
		log_warn_limited(&el->log_down, "events: cannot listen: retrying",
		                 LOGS("error", db_errmsg(el->db)));
		db_close(el->db);
		el->db = NULL;
		return -1;
	}
	events_hub_resync_all(el->hub, EVENTS_RESYNC_LISTENER);
	atomic_store(&el->up, true);
	metric_set(el->m_up, 1);
	log_info("events: listening", LOGS("channel", STORE_EVENTS_CHANNEL),
	         LOGS("schema", el->schema), LOGI("backend_pid", PQbackendPID(db_conn(el->db))));
	return 0;
}

/* The connection is gone (or a read failed): every stream ends with resync listener_lost, and
 * the next connection starts afresh. */
static void events_listen_lost(struct events_listen *el, const char *why)
{
	atomic_store(&el->up, false);
	metric_set(el->m_up, 0);
	metric_inc(el->m_lost);
	events_hub_resync_all(el->hub, EVENTS_RESYNC_LISTENER);
	log_warn("events: listener lost: every stream resyncs", LOGS("error", why));
	db_close(el->db);
	el->db = NULL;
}

/* Waits up to wait_ms for notifications and handles them. Returns 0, or -1 when lost. */
static int events_listen_wait(struct events_listen *el, long wait_ms)
{
	PGconn *conn = db_conn(el->db);
	struct pollfd pfd = {.fd = conn != NULL ? PQsocket(conn) : -1, .events = POLLIN};
	PGnotify *nt;
	char why[256];

	if (pfd.fd < 0) {
		events_listen_lost(el, "no connection");
		return -1;
	}
	if (poll(&pfd, 1, (int)wait_ms) < 0) {
		if (errno == EINTR)
			return 0; /* a signal (SIGTERM on the way out): not a lost connection */
		snprintf(why, sizeof why, "poll: %s", strerror(errno));
		events_listen_lost(el, why);
		return -1;
	}
	if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) {
		snprintf(why, sizeof why, "%s", PQerrorMessage(conn));
		events_listen_lost(el, why);
		return -1;
	}
	while ((nt = PQnotifies(conn)) != NULL) {
		int rc = events_listen_handle(el, nt->extra);

		PQfreemem(nt);
		if (rc != 0) {
			snprintf(why, sizeof why, "%s", db_errmsg(el->db));
			events_listen_lost(el, why);
			return -1;
		}
	}
	return 0;
}

/* The hub's figures into /metrics (its counters as deltas since the last export). */
static void events_listen_export(struct events_listen *el)
{
	struct events_hub_stats st;

	events_hub_stats(el->hub, &st);
	metric_set(el->m_ring, (double)st.ring_events);
	metric_set(el->m_ring_bytes, (double)st.ring_bytes);
	metric_add(el->m_slow, (double)(st.dropped_slow - el->seen.dropped_slow));
	metric_add(el->m_resumed, (double)(st.resumed - el->seen.resumed));
	metric_add(el->m_not_resumed, (double)(st.not_resumed - el->seen.not_resumed));
	el->seen = st;
}

static void *events_listen_main(void *arg)
{
	struct events_listen *el = arg;
	int64_t now = time_mono_ms(), next_ping = now + el->ping_ms, next_try = now;
	int64_t next_export = now;
	struct backoff b;

	backoff_init(&b, EVENTS_BACKOFF_MS, EVENTS_BACKOFF_MAX);
	while (!atomic_load(&el->stop)) {
		long wait;

		now = time_mono_ms();
		if (now >= next_ping) {
			events_hub_ping(el->hub);
			next_ping = now + el->ping_ms;
		}
		if (now >= next_export) {
			events_listen_export(el);
			next_export = now + 1000;
		}
		wait = (long)(next_ping - now) < EVENTS_POLL_MS ? (long)(next_ping - now)
		                                                : EVENTS_POLL_MS;
		if (atomic_load(&el->up)) {
			(void)events_listen_wait(el, wait);
			continue;
		}
		if (now >= next_try) {
			if (events_listen_connect(el) == 0) {
				backoff_reset(&b);
				continue;
			}
			next_try = time_mono_ms() + backoff_next(&b);
		}
		usleep((useconds_t)(wait > 0 ? wait : 1) * 1000);
	}
	return NULL;
}

struct events_listen *events_listen_start(const struct events_listen_opts *opts,
                                          struct events_hub *hub, struct metrics *m, char *errstr,
                                          size_t errstr_size)
{
	struct events_listen *el = calloc(1, sizeof *el);

	if (el == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	el->hub = hub;
	el->ping_ms = opts->ping_ms;
	el->max_lines = opts->max_lines;
	el->url = strdup(opts->url);
	el->schema = strdup(opts->schema);
	/* the pid tells the listeners of several ingresses apart in pg_stat_activity */
	snprintf(el->app_name, sizeof el->app_name, "ingress-events-%ld", (long)getpid());
	atomic_init(&el->stop, false);
	atomic_init(&el->up, false);
	el->m_up = metrics_gauge(m, "ingress_events_listening",
	                         "1 while the LISTEN connection of GET /events is up", NULL);
	el->m_events = metrics_counter(m, "ingress_events_total",
	                               "Events published to GET /events subscribers", NULL);
	el->m_lost =
	    metrics_counter(m, "ingress_events_listener_lost_total",
	                    "Times the LISTEN connection was lost (every stream resynced)", NULL);
	el->m_bulk = metrics_counter(m, "ingress_events_bulk_total",
	                             "Changes too large to stream (every stream resynced)", NULL);
	el->m_bad =
	    metrics_counter(m, "ingress_events_bad_notifications_total",
	                    "Notifications on the channel that were not migration 009's", NULL);
	el->m_ring =
	    metrics_gauge(m, "ingress_events_ring", "Recent events kept for Last-Event-ID", NULL);
	el->m_ring_bytes =
	    metrics_gauge(m, "ingress_events_ring_bytes", "Bytes of the recent events kept", NULL);
	el->m_slow = metrics_counter(m, "ingress_events_dropped_total",
	                             "GET /events streams ended with resync, by reason", "reason",
	                             "slow_consumer", NULL);
	el->m_resumed = metrics_counter(m, "ingress_events_resumed_total",
	                                "GET /events streams opened with Last-Event-ID, by outcome",
	                                "outcome", "resumed", NULL);
	el->m_not_resumed =
	    metrics_counter(m, "ingress_events_resumed_total",
	                    "GET /events streams opened with Last-Event-ID, by outcome", "outcome",
	                    "cannot_resume", NULL);
	if (el->url == NULL || el->schema == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (pthread_create(&el->thread, NULL, events_listen_main, el) != 0) {
		snprintf(errstr, errstr_size, "cannot start the events thread");
		goto fail;
	}
	return el;
fail:
	free(el->url);
	free(el->schema);
	free(el);
	return NULL;
}

bool events_listen_up(struct events_listen *el)
{
	return el != NULL && atomic_load(&el->up);
}

void events_listen_stop(struct events_listen *el)
{
	if (el == NULL)
		return;
	atomic_store(&el->stop, true);
	pthread_join(el->thread, NULL);
	db_close(el->db);
	free(el->url);
	free(el->schema);
	free(el);
}
