/* e2e_sse: a Server-Sent Events client for the GET /events tests, on a plain socket (HTTP/1.0,
 * so the body is the stream itself, no chunking): it can stop reading at will (a slow
 * subscriber), and it parses what it reads into events. Failures abort the test (cmocka). */
#ifndef CALLPIPE_E2E_SSE_H
#define CALLPIPE_E2E_SSE_H

#include <stdbool.h>
#include <stddef.h>

struct e2e_sse {
	int fd;
	int status; /* the HTTP status of the answer */
	char *buf;  /* bytes read and not parsed yet */
	size_t len, cap;
	bool eof;
	int pings; /* ": ping" comments seen */
};

struct e2e_sse_event {
	char id[64]; /* "" when the event has none (resync) */
	char type[32];
	char *data; /* malloc'd; free with e2e_sse_event_clear */
};

/* Connects to 127.0.0.1:port, sends GET /events with token (NULL: no Authorization) and
 * last_event_id (NULL: none), and reads the answer's headers. rcvbuf > 0 shrinks the socket's
 * receive buffer first (a slow subscriber stalls sooner). Sets c->status. */
void e2e_sse_open(struct e2e_sse *c, unsigned port, const char *token, const char *last_event_id,
                  int rcvbuf);
/* Next event within timeout_ms (comments are counted and skipped). Returns 1 with *ev set, 0 on
 * timeout, -1 once the server closed the stream. */
int e2e_sse_next(struct e2e_sse *c, struct e2e_sse_event *ev, int timeout_ms);
void e2e_sse_event_clear(struct e2e_sse_event *ev);
void e2e_sse_close(struct e2e_sse *c);

#endif
