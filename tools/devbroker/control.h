/* control: devbroker's HTTP control interface (loopback) for status and fault injection. */
#ifndef CALLPIPE_DEVBROKER_CONTROL_H
#define CALLPIPE_DEVBROKER_CONTROL_H

#include <stddef.h>

struct cluster;
struct control;

/* Serves the routes documented in docs/devbroker.md on listen ("host:port", port 0 = any free
 * port) in its own thread. cl is borrowed and must outlive the server. NULL + errstr on
 * failure; control_stop frees (NULL ok). */
struct control *control_start(const char *listen, struct cluster *cl, char *errstr,
                              size_t errstr_size);
/* "http://host:port"; borrowed, valid until control_stop. */
const char *control_url(const struct control *ctl);
void control_stop(struct control *ctl);

#endif
