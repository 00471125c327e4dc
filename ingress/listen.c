/* listen: checking that nobody listens on HTTP_LISTEN yet, and setting its port. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned listen_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

void listen_set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

int listen_check_free(const struct sockaddr_storage *ss, const char *listen, char *errstr,
                      size_t errstr_size)
{
	socklen_t len =
	    ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int one = 1, fd, rc, err;

	if (listen_port(ss) == 0)
		return 0;
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(errstr, errstr_size, "cannot listen on %s: cannot open a socket: %s",
		         listen, strerror(errno));
		return -1;
	}
	/* like the listening sockets (libmicrohttpd sets it): connections of an earlier run
	 * still in TIME_WAIT do not count, a listening socket does */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	rc = bind(fd, (const struct sockaddr *)ss, len);
	err = errno;
	close(fd);
	if (rc != 0) {
		snprintf(errstr, errstr_size, "cannot listen on %s: %s", listen, strerror(err));
		return -1;
	}
	return 0;
}
