/* listen: the address the HTTP workers share. Each worker has its own listening socket on the
 * same address (SO_REUSEPORT), so the kernel spreads new connections over the workers instead
 * of letting whichever worker wakes first accept them all. No state: plain functions. */
#ifndef CALLPIPE_INGRESS_LISTEN_H
#define CALLPIPE_INGRESS_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

/* Fails (-1, errstr "cannot listen on <listen>: <reason>") when something already listens on
 * *ss. Sockets that share a port with SO_REUSEPORT would otherwise also let a second ingress
 * started on the same port quietly take a share of the connections. Port 0 (any free port)
 * always passes. */
int listen_check_free(const struct sockaddr_storage *ss, const char *listen, char *errstr,
                      size_t errstr_size) __attribute__((warn_unused_result));

/* Sets the port of an AF_INET or AF_INET6 address. */
void listen_set_port(struct sockaddr_storage *ss, unsigned port);

#endif
