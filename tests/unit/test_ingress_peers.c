/* test_ingress_peers: the per-address connection table: keys (IPv4, IPv6 by /64, IPv4-mapped as
 * IPv4), the limit, release, and many addresses at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static void key4(const char *ip, unsigned char key[PEERS_KEY_LEN])
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(1234)};

	assert_int_equal(inet_pton(AF_INET, ip, &in.sin_addr), 1);
	assert_true(peers_key((struct sockaddr *)&in, sizeof in, key));
}

static void key6(const char *ip, unsigned char key[PEERS_KEY_LEN])
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};

	assert_int_equal(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
	assert_true(peers_key((struct sockaddr *)&in6, sizeof in6, key));
}

static void test_peers_keys(void **state)
{
	unsigned char a[PEERS_KEY_LEN], b[PEERS_KEY_LEN];
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_in in = {.sin_family = AF_INET};

	(void)state;
	key4("127.0.0.1", a);
	key4("127.0.0.2", b);
	assert_memory_not_equal(a, b, PEERS_KEY_LEN);
	/* the port is not part of it */
	key4("127.0.0.1", b);
	assert_memory_equal(a, b, PEERS_KEY_LEN);
	/* an IPv4-mapped IPv6 address (a dual-stack listener) is the IPv4 address */
	key6("::ffff:127.0.0.1", b);
	assert_memory_equal(a, b, PEERS_KEY_LEN);
	/* IPv6: one /64 is one address; the next /64 is another */
	key6("2001:db8:1:2::1", a);
	key6("2001:db8:1:2:ffff:ffff:ffff:ffff", b);
	assert_memory_equal(a, b, PEERS_KEY_LEN);
	key6("2001:db8:1:3::1", b);
	assert_memory_not_equal(a, b, PEERS_KEY_LEN);
	/* other families, short addresses: not limited */
	assert_false(peers_key((struct sockaddr *)&un, sizeof un, a));
	assert_false(peers_key((struct sockaddr *)&in, 4, a));
	assert_false(peers_key(NULL, 0, a));
}

static void test_peers_limit(void **state)
{
	struct peers *p = peers_new(3, 16);
	unsigned char a[PEERS_KEY_LEN], b[PEERS_KEY_LEN];

	(void)state;
	assert_non_null(p);
	key4("10.0.0.1", a);
	key4("10.0.0.2", b);
	for (int i = 0; i < 3; i++) {
		assert_true(peers_allowed(p, a));
		assert_true(peers_acquire(p, a));
	}
	assert_false(peers_allowed(p, a));
	assert_false(peers_acquire(p, a)); /* nothing counted */
	assert_int_equal(peers_count(p, a), 3);
	/* another address is not affected */
	assert_true(peers_acquire(p, b));
	assert_int_equal(peers_addresses(p), 2);
	peers_release(p, a);
	assert_true(peers_allowed(p, a));
	assert_true(peers_acquire(p, a));
	for (int i = 0; i < 3; i++)
		peers_release(p, a);
	peers_release(p, b);
	/* an address with no connection left is forgotten; a stray release changes nothing */
	assert_int_equal(peers_addresses(p), 0);
	peers_release(p, a);
	assert_int_equal(peers_count(p, a), 0);
	peers_destroy(p);
	peers_destroy(NULL);
}

/* 0: no limit, nothing kept. */
static void test_peers_no_limit(void **state)
{
	struct peers *p = peers_new(0, 16);
	unsigned char a[PEERS_KEY_LEN];

	(void)state;
	assert_non_null(p);
	key4("10.0.0.1", a);
	for (int i = 0; i < 1000; i++)
		assert_true(peers_acquire(p, a));
	assert_true(peers_allowed(p, a));
	assert_int_equal(peers_addresses(p), 0);
	peers_release(p, a);
	peers_destroy(p);
}

/* Many addresses in a small table: chains, not losses. */
static void test_peers_many_addresses(void **state)
{
	struct peers *p = peers_new(2, 0);
	unsigned char k[PEERS_KEY_LEN];
	char ip[32];

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
		key4(ip, k);
		assert_true(peers_acquire(p, k));
		assert_true(peers_acquire(p, k));
		assert_false(peers_acquire(p, k));
	}
	assert_int_equal(peers_addresses(p), 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
		key4(ip, k);
		assert_int_equal(peers_count(p, k), 2);
		peers_release(p, k);
		peers_release(p, k);
	}
	assert_int_equal(peers_addresses(p), 0);
	peers_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_peers_keys),
	    cmocka_unit_test(test_peers_limit),
	    cmocka_unit_test(test_peers_no_limit),
	    cmocka_unit_test(test_peers_many_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
