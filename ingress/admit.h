/* admit: the arithmetic of admitting a request body: its deadline and the global body budget.
 * Pure (unit-tested); the header-stage checks that use them are in admit.c (server_int.h). */
#ifndef CALLPIPE_INGRESS_ADMIT_H
#define CALLPIPE_INGRESS_ADMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long a body of len bytes may take: base_ms plus len at min_rate bytes per second (rounded
 * up), saturating at INT64_MAX / 8 (a deadline that far out is none). min_rate < 1 counts as 1. */
int64_t admit_body_ms(uint64_t len, int64_t base_ms, int64_t min_rate);

/* Takes n bytes from a budget of budget bytes of which *used are taken: true and *used += n when
 * they fit, false (nothing taken) when not. Lock-free; any thread. */
bool admit_budget_take(_Atomic size_t *used, size_t budget, size_t n);
/* Gives back n bytes taken by admit_budget_take. */
void admit_budget_give(_Atomic size_t *used, size_t n);

#endif
