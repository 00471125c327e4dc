/* fault: test-only fault injection. The checks are compiled in only where CALLPIPE_FAULTS is
 * defined: the dialer-faults and transcriber-faults binaries and the unit tests built with them
 * (tests/integration/faults.cmake, tests/support/fault.c). Everywhere else each check is a
 * constant false that the compiler removes. */
#ifndef CALLPIPE_FAULT_H
#define CALLPIPE_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef CALLPIPE_FAULTS
/* True when the offsets tracker must refuse the message at topic/partition/offset as if it ran
 * out of memory. CALLPIPE_FAULT_TRACK="[topic@]partition:offset:times[,...]" (read once) names
 * each message and how many of its first attempts are refused; topic matches the end of the
 * full topic name (a NULL topic, from a tracker of one topic, matches entries without one).
 * Each refusal is logged ("fault: offsets tracker refused a message"). Thread-safe. */
bool fault_track_refuse(const char *topic, int32_t partition, int64_t offset);
#else
static inline bool fault_track_refuse(const char *topic, int32_t partition, int64_t offset)
{
	(void)topic;
	(void)partition;
	(void)offset;
	return false;
}
#endif

#endif
