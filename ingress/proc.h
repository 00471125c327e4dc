/* proc: process-wide settings the ingress makes once at start, before any thread: the
 * open-files limit and glibc's malloc thresholds. */
#ifndef CALLPIPE_INGRESS_PROC_H
#define CALLPIPE_INGRESS_PROC_H

/* Raises the soft open-files limit to the hard one (so the connection limits can be reached;
 * a warn line when it cannot) and fixes the malloc trim/mmap thresholds. */
void ingress_proc_tune(void);

#endif
