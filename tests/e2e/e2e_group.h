/* e2e_group: the consumer groups of the stack's workers as their logs tell it: which partitions
 * each member holds ("kafka partitions assigned" / "revoked" lines of kbus), and when that
 * changed, for the scaling and takeover checks. Wall-clock times are epoch milliseconds, the
 * clock of the log lines and of Postgres' now(). */
#ifndef CALLPIPE_E2E_GROUP_H
#define CALLPIPE_E2E_GROUP_H

#include <stdbool.h>

struct e2e_stack;
struct e2e_worker;

#define E2E_GROUP_MAX_PARTS 48

struct e2e_part {
	char topic[200];
	int partition;
};

/* What a member holds (kbus' eager rebalances: an assignment replaces the last one, a
 * revocation takes everything away). */
struct e2e_holding {
	long long ms; /* time of the log line that made it so; 0: never assigned */
	int count;    /* partitions, as logged */
	int n;        /* of them parsed into parts (less than count when the log line was cut) */
	struct e2e_part parts[E2E_GROUP_MAX_PARTS];
};

/* The wall clock now (epoch ms). */
long long e2e_wall_ms(void);

/* What worker w holds per its log now (count 0 when nothing). */
void e2e_group_holding(const struct e2e_worker *w, struct e2e_holding *out);

/* Waits until the running workers of kind ("dialer", "transcriber") hold total partitions
 * between them, each some of them (the group formed and settled). Fails the test after
 * timeout_ms. */
void e2e_group_wait_settled(const struct e2e_stack *s, const char *kind, int total, int timeout_ms);

/* Parts of h on topic base (under the stack's prefix): their partition numbers into out (at most
 * max); returns how many. */
int e2e_group_partitions(const struct e2e_stack *s, const struct e2e_holding *h, const char *base,
                         int *out, int max);

/* The earliest time after after_ms at which a running worker of kind logged an assignment that
 * holds one of the parts of dead; -1 when none did (yet). */
long long e2e_group_reassigned(const struct e2e_stack *s, const char *kind,
                               const struct e2e_holding *dead, long long after_ms);

#endif
