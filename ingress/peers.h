/* peers: open connections per client address, for INGRESS_CONNECTIONS_PER_ADDRESS. An IPv4
 * address counts on its own, an IPv6 one by its /64 (one host usually holds a whole /64), an
 * IPv4-mapped IPv6 address as its IPv4 address. Thread-safe (one mutex). */
#ifndef CALLPIPE_INGRESS_PEERS_H
#define CALLPIPE_INGRESS_PEERS_H

#include <stdbool.h>
#include <stddef.h>

#define PEERS_KEY_LEN 16

struct sockaddr;
struct peers;

/* A table letting each address hold at most limit connections (0: no limit, nothing counted).
 * buckets_hint: about how many addresses to expect (the connection limit does). NULL on OOM. */
struct peers *peers_new(unsigned limit, size_t buckets_hint);
/* Frees the table (NULL ok). */
void peers_destroy(struct peers *p);

/* The key addr counts under (IPv4, or the /64 of IPv6). false for other families (a Unix
 * socket, say): those are not limited. */
bool peers_key(const struct sockaddr *addr, size_t addrlen, unsigned char key[PEERS_KEY_LEN]);

/* True when key holds fewer connections than the limit: a cheap refusal before a connection
 * is set up. peers_acquire decides. */
bool peers_allowed(struct peers *p, const unsigned char key[PEERS_KEY_LEN]);
/* Counts one more connection for key. false, nothing counted, when key holds the limit already
 * (or no memory is left for a new address). */
__attribute__((warn_unused_result)) bool peers_acquire(struct peers *p,
                                                       const unsigned char key[PEERS_KEY_LEN]);
/* Forgets one connection counted by peers_acquire. */
void peers_release(struct peers *p, const unsigned char key[PEERS_KEY_LEN]);
/* Connections counted for key; addresses in the table (tests). */
unsigned peers_count(struct peers *p, const unsigned char key[PEERS_KEY_LEN]);
size_t peers_addresses(struct peers *p);

#endif
