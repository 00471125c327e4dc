/* peers: a hash table of connection counts per client address (keyed hash: chains an attacker
 * cannot choose). */
#include "peers.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#define PEERS_BUCKETS_MIN 64
#define PEERS_BUCKETS_MAX 65536

struct peer {
	struct peer *next;
	unsigned char key[PEERS_KEY_LEN];
	unsigned n;
};

struct peers {
	pthread_mutex_t lock;
	unsigned limit;
	size_t mask; /* buckets - 1 */
	size_t naddr;
	uint64_t seed; /* random: which chain an address lands in cannot be predicted */
	struct peer **buckets;
};

struct peers *peers_new(unsigned limit, size_t buckets_hint)
{
	struct peers *p = calloc(1, sizeof *p);
	size_t n = PEERS_BUCKETS_MIN;

	if (p == NULL)
		return NULL;
	while (n < buckets_hint && n < PEERS_BUCKETS_MAX)
		n *= 2;
	p->buckets = calloc(n, sizeof *p->buckets);
	if (p->buckets == NULL) {
		free(p);
		return NULL;
	}
	if (getrandom(&p->seed, sizeof p->seed, 0) != (ssize_t)sizeof p->seed)
		p->seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15u;
	p->mask = n - 1;
	p->limit = limit;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void peers_destroy(struct peers *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i <= p->mask; i++) {
		struct peer *e = p->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(p->buckets);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

bool peers_key(const struct sockaddr *addr, size_t addrlen, unsigned char key[PEERS_KEY_LEN])
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(key, 0, PEERS_KEY_LEN);
	if (addr == NULL)
		return false;
	if (addr->sa_family == AF_INET && addrlen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;

		memcpy(key, v4mapped, sizeof v4mapped);
		memcpy(key + 12, &in->sin_addr, 4);
		return true;
	}
	if (addr->sa_family == AF_INET6 && addrlen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;

		if (memcmp(in6->sin6_addr.s6_addr, v4mapped, sizeof v4mapped) == 0)
			memcpy(key, in6->sin6_addr.s6_addr, 16); /* the IPv4 key above */
		else
			memcpy(key, in6->sin6_addr.s6_addr, 8); /* the /64 */
		return true;
	}
	return false;
}

static size_t peers_hash(const struct peers *p, const unsigned char key[PEERS_KEY_LEN])
{
	uint64_t h = p->seed, w;

	for (size_t i = 0; i < PEERS_KEY_LEN; i += 8) {
		memcpy(&w, key + i, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15u;
		h ^= h >> 29;
	}
	h = (h ^ p->seed) * 0xBF58476D1CE4E5B9u;
	return (size_t)(h ^ (h >> 31)) & p->mask;
}

/* The entry of key, or NULL; *slot gets the link pointing at it (or the chain's head). The
 * caller holds the lock. */
static struct peer *peers_find(struct peers *p, const unsigned char key[PEERS_KEY_LEN],
                               struct peer ***slot)
{
	struct peer **link = &p->buckets[peers_hash(p, key)];

	while (*link != NULL && memcmp((*link)->key, key, PEERS_KEY_LEN) != 0)
		link = &(*link)->next;
	if (slot != NULL)
		*slot = link;
	return *link;
}

bool peers_allowed(struct peers *p, const unsigned char key[PEERS_KEY_LEN])
{
	struct peer *e;
	bool ok;

	if (p->limit == 0)
		return true;
	pthread_mutex_lock(&p->lock);
	e = peers_find(p, key, NULL);
	ok = e == NULL || e->n < p->limit;
	pthread_mutex_unlock(&p->lock);
	return ok;
}

bool peers_acquire(struct peers *p, const unsigned char key[PEERS_KEY_LEN])
{
	struct peer **slot, *e;
	bool ok = false;

	if (p->limit == 0)
		return true;
	pthread_mutex_lock(&p->lock);
	e = peers_find(p, key, &slot);
	if (e == NULL) {
		e = calloc(1, sizeof *e);
		if (e == NULL)
			goto out;
		memcpy(e->key, key, PEERS_KEY_LEN);
		*slot = e;
		p->naddr++;
	}
	if (e->n < p->limit) {
		e->n++;
		ok = true;
	}
out:
	pthread_mutex_unlock(&p->lock);
	return ok;
}

void peers_release(struct peers *p, const unsigned char key[PEERS_KEY_LEN])
{
	struct peer **slot, *e;

	if (p->limit == 0)
		return;
	pthread_mutex_lock(&p->lock);
	e = peers_find(p, key, &slot);
	if (e != NULL && e->n > 0 && --e->n == 0) {
		*slot = e->next;
		free(e);
		p->naddr--;
	}
	pthread_mutex_unlock(&p->lock);
}

unsigned peers_count(struct peers *p, const unsigned char key[PEERS_KEY_LEN])
{
	struct peer *e;
	unsigned n;

	pthread_mutex_lock(&p->lock);
	e = peers_find(p, key, NULL);
	n = e != NULL ? e->n : 0;
	pthread_mutex_unlock(&p->lock);
	return n;
}

size_t peers_addresses(struct peers *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->naddr;
	pthread_mutex_unlock(&p->lock);
	return n;
}
