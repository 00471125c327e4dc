/* e2e_sse: the tests' SSE client on a plain socket. */
#include "e2e_sse.h"

#include "tsupport.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long e2e_sse_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what is there within timeout_ms into c->buf. Returns bytes read, 0 on timeout, -1 at
 * the end of the stream. */
static int e2e_sse_fill(struct e2e_sse *c, int timeout_ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	ssize_t n;

	if (c->eof)
		return -1;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	if (c->cap - c->len < 65536) {
		c->cap = c->cap * 2 + 65536;
		c->buf = realloc(c->buf, c->cap + 1);
		if (c->buf == NULL)
			fail_msg("e2e_sse: out of memory");
	}
	n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n <= 0) {
		c->eof = true;
		return -1;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return (int)n;
}

static void e2e_sse_consume(struct e2e_sse *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	c->buf[c->len] = '\0';
}

void e2e_sse_open(struct e2e_sse *c, unsigned port, const char *token, const char *last_event_id,
                  int rcvbuf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	char req[1024];
	long long deadline = e2e_sse_now_ms() + 10000;
	char *end;
	int n;

	memset(c, 0, sizeof *c);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		fail_msg("e2e_sse: socket: %s", strerror(errno));
	if (rcvbuf > 0 && setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0)
		fail_msg("e2e_sse: SO_RCVBUF: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		fail_msg("e2e_sse: connect to port %u: %s", port, strerror(errno));
	n = snprintf(req, sizeof req,
	             "GET /events HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n%s%s%s%s%s\r\n", port,
	             token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
	             last_event_id ? "Last-Event-ID: " : "", last_event_id ? last_event_id : "");
	if (last_event_id != NULL)
		n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
	if (n <= 0 || (size_t)n >= sizeof req || send(c->fd, req, (size_t)n, 0) != n)
		fail_msg("e2e_sse: cannot send the request");
	while ((end = c->buf != NULL ? strstr(c->buf, "\r\n\r\n") : NULL) == NULL) {
		if (e2e_sse_now_ms() > deadline || e2e_sse_fill(c, 200) < 0)
			fail_msg("e2e_sse: no complete answer headers (read: %s)",
			         c->buf != NULL ? c->buf : "");
	}
	if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1)
		fail_msg("e2e_sse: bad status line: %.80s", c->buf);
	if (c->status == 200 && strstr(c->buf, "Content-Type: text/event-stream") == NULL)
		fail_msg("e2e_sse: 200 without Content-Type text/event-stream: %s", c->buf);
	e2e_sse_consume(c, (size_t)(end + 4 - c->buf));
}

/* Parses one block (lines up to a blank line) at the start of c->buf into ev; false when the
 * block is only comments. */
static bool e2e_sse_block(struct e2e_sse *c, size_t blen, struct e2e_sse_event *ev)
{
	char *line = c->buf, *stop = c->buf + blen;
	bool any = false;

	while (line < stop) {
		char *nl = memchr(line, '\n', (size_t)(stop - line));

		if (nl == NULL)
			nl = stop;
		*nl = '\0';
		if (strcmp(line, ": ping") == 0) {
			c->pings++;
		} else if (strncmp(line, "id: ", 4) == 0) {
			snprintf(ev->id, sizeof ev->id, "%s", line + 4);
			any = true;
		} else if (strncmp(line, "event: ", 7) == 0) {
			snprintf(ev->type, sizeof ev->type, "%s", line + 7);
			any = true;
		} else if (strncmp(line, "data: ", 6) == 0) {
			if (ev->data != NULL)
				fail_msg("e2e_sse: an event with two data lines");
			ev->data = strdup(line + 6);
			any = true;
		} else if (line[0] != '\0') {
			fail_msg("e2e_sse: unexpected line '%s'", line);
		}
		line = nl + 1;
	}
	return any;
}

int e2e_sse_next(struct e2e_sse *c, struct e2e_sse_event *ev, int timeout_ms)
{
	long long deadline = e2e_sse_now_ms() + timeout_ms;

	memset(ev, 0, sizeof *ev);
	for (;;) {
		char *end = c->buf != NULL ? strstr(c->buf, "\n\n") : NULL;
		long long left;

		if (end != NULL) {
			size_t blen = (size_t)(end - c->buf);
			bool got = e2e_sse_block(c, blen, ev);

			e2e_sse_consume(c, blen + 2);
			if (got) {
				if (ev->type[0] == '\0' || ev->data == NULL)
					fail_msg("e2e_sse: an event without type or data");
				return 1;
			}
			continue;
		}
		left = deadline - e2e_sse_now_ms();
		if (left <= 0)
			return 0;
		if (e2e_sse_fill(c, (int)(left < 200 ? left : 200)) < 0) {
			if (c->len > 0)
				fail_msg("e2e_sse: the stream ended inside an event: '%s'", c->buf);
			return -1;
		}
	}
}

void e2e_sse_event_clear(struct e2e_sse_event *ev)
{
	free(ev->data);
	memset(ev, 0, sizeof *ev);
}

void e2e_sse_close(struct e2e_sse *c)
{
	if (c->fd > 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof *c);
}
