/* admin_int: what admin.c (the daemon) and admin_read.c (the console's read endpoints) share.
 * Internal. */
#ifndef CALLPIPE_INGRESS_ADMIN_INT_H
#define CALLPIPE_INGRESS_ADMIN_INT_H

#include "admin.h"
#include "calls_read.h"

#include <microhttpd.h>

struct admin;

/* Runs fn(db, arg) on the calls_read workers (call_sid non-NULL: the GET /calls/{call_sid}
 * lookup instead) and waits on this connection's thread, up to INGRESS_DELIVERY_TIMEOUT_MS, for
 * its answer, which it queues (503 when none came). arg_free (may be NULL) frees arg once neither
 * side needs it. */
enum MHD_Result admin_run_read(struct admin *a, struct MHD_Connection *conn, calls_read_fn *fn,
                               void *arg, void (*arg_free)(void *arg), const char *call_sid);

/* ---- console_api.c: GET /calls, /stats/drivers, /stats/overview (docs/console.md) ---- */
enum MHD_Result admin_calls_list(struct admin *a, struct MHD_Connection *conn, const char *url,
                                 const char *rest);
enum MHD_Result admin_stats_drivers(struct admin *a, struct MHD_Connection *conn, const char *url,
                                    const char *rest);
enum MHD_Result admin_stats_overview(struct admin *a, struct MHD_Connection *conn, const char *url,
                                     const char *rest);

#endif
