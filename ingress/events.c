/* events: GET /events: hub + LISTEN thread, and the SSE response written from the hub. */
#include "events.h"

#include "admin.h"
#include "config.h"
#include "events_hub.h"
#include "events_listen.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define EVENTS_BLOCK   16384 /* bytes handed to libmicrohttpd per read */
#define EVENTS_WAIT_MS 1000  /* a reader's wait for events, between looks at nothing */

struct events {
	struct events_hub *hub;
	struct events_listen *listen;
	struct metric *m_streams, *m_refused;
};

struct events *events_start(const struct ingress_config *conf, struct metrics *m, char *errstr,
                            size_t errstr_size)
{
	struct events_hub_limits lim = {
	    .max_subscribers = (size_t)conf->events_max_subscribers,
	    .ring_events = (size_t)conf->events_ring,
	    .ring_bytes = (size_t)conf->events_ring_bytes,
	    .queue_events = (size_t)conf->events_queue,
	    .queue_bytes = (size_t)conf->events_queue_bytes,
	};
	struct events_listen_opts opts = {
	    .url = conf->database_url,
	    .schema = conf->db_schema,
	    .ping_ms = (long)conf->events_ping_ms,
	    .max_lines = (size_t)conf->events_max_lines,
	};
	struct events *ev;

	if (conf->database_url == NULL || conf->database_url[0] == '\0')
		return NULL;
	ev = calloc(1, sizeof *ev);
	if (ev == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	/* the epoch: this process's start, so ids of an earlier run never resume here */
	ev->hub = events_hub_new(&lim, (uint64_t)time_now_ms());
	if (ev->hub == NULL) {
		snprintf(errstr, errstr_size, "cannot create the event hub");
		goto fail;
	}
	ev->m_streams =
	    metrics_gauge(m, "ingress_events_streams", "Open GET /events streams", NULL);
	ev->m_refused = metrics_counter(m, "ingress_events_refused_total",
	                                "GET /events answered 503 (listener down, or too many "
	                                "streams)",
	                                NULL);
	ev->listen = events_listen_start(&opts, ev->hub, m, errstr, errstr_size);
	if (ev->listen == NULL)
		goto fail;
	return ev;
fail:
	events_hub_destroy(ev->hub);
	free(ev);
	return NULL;
}

/* One stream: the subscriber, read by the connection's own thread. */
struct events_stream {
	struct events *ev;
	struct events_sub *sub;
};

/* Blocks the connection's thread until there is something to write (a ping comes every
 * INGRESS_EVENTS_PING_MS) or the stream is over. */
static ssize_t events_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct events_stream *st = cls;
	ssize_t n;

	(void)pos;
	while ((n = events_sub_read(st->sub, buf, max, EVENTS_WAIT_MS)) == 0)
		;
	return n > 0 ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void events_stream_free(void *cls)
{
	struct events_stream *st = cls;

	events_sub_close(st->sub);
	metric_add(st->ev->m_streams, -1);
	free(st);
}

static enum MHD_Result events_unavailable(struct events *ev, struct MHD_Connection *conn,
                                          const char *msg)
{
	if (ev != NULL)
		metric_inc(ev->m_refused);
	return admin_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, msg, NULL);
}

enum MHD_Result events_serve(void *opaque, struct MHD_Connection *conn)
{
	struct events *ev = opaque;
	const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
	struct MHD_Response *resp = NULL;
	struct events_stream *st;
	enum MHD_Result ret = MHD_NO;

	if (ev == NULL)
		return events_unavailable(ev, conn, "live events need DATABASE_URL");
	if (!events_listen_up(ev->listen))
		return events_unavailable(ev, conn,
		                          "live events unavailable: database unreachable");
	st = calloc(1, sizeof *st);
	if (st == NULL)
		return MHD_NO;
	st->ev = ev;
	st->sub = events_hub_subscribe(ev->hub, last != NULL && last[0] != '\0' ? last : NULL);
	if (st->sub == NULL) {
		free(st);
		return events_unavailable(ev, conn, "too many event streams open");
	}
	metric_add(ev->m_streams, 1);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EVENTS_BLOCK, events_reader, st,
	                                         events_stream_free);
	if (resp == NULL) {
		events_stream_free(st);
		return MHD_NO;
	}
	/* from here on the response owns st: MHD_destroy_response frees it when it is done */
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream") ==
	        MHD_YES &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES &&
	    /* nginx and friends: do not buffer the stream */
	    MHD_add_response_header(resp, "X-Accel-Buffering", "no") == MHD_YES)
		ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

void events_close(struct events *ev)
{
	if (ev == NULL)
		return;
	events_listen_stop(ev->listen);
	ev->listen = NULL;
	events_hub_close(ev->hub);
}

void events_destroy(struct events *ev)
{
	if (ev == NULL)
		return;
	events_listen_stop(ev->listen);
	events_hub_destroy(ev->hub);
	free(ev);
}
