/* proc: the ingress's process-wide settings (see proc.h). */
#include "proc.h"

#include "log.h"

#include <malloc.h>
#include <sys/resource.h>

/* Lets the connection limit be reached: soft open-files limit up to the hard one. */
static void proc_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open-files limit");
	}
}

/* Fixed malloc thresholds. With glibc's defaults (dynamic, from 128 KiB) the librdkafka broker
 * thread's per-batch buffers kept shrinking its heap (madvise) and faulting it back in: ~0.3
 * madvise per request under load. Up to 16 MiB of free heap per arena may now be kept. */
static void proc_tune_malloc(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
}

void ingress_proc_tune(void)
{
	proc_raise_nofile();
	proc_tune_malloc();
}
