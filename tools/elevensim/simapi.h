/* simapi: elevensim's HTTP side (libmicrohttpd, one polling thread, answers held by suspending
 * the connection): the outbound-call and conversations API, /healthz and the /sim control
 * endpoints. */
#ifndef CALLPIPE_ELEVENSIM_SIMAPI_H
#define CALLPIPE_ELEVENSIM_SIMAPI_H

#include <stddef.h>

struct sim_conf;
struct sim_store;
struct sim_play;
struct sim_api;

/* Listens on listen ("host:port", port 0: any). api_key "" accepts any key. conf, store and
 * play are borrowed. NULL + errstr on failure. */
struct sim_api *sim_api_start(const char *listen, const char *api_key, struct sim_conf *conf,
                              struct sim_store *store, struct sim_play *play, char *errstr,
                              size_t errstr_size);
unsigned sim_api_port(const struct sim_api *a);

/* Stops the server (every held answer must have been released: sim_play_stop) and frees it. */
void sim_api_stop(struct sim_api *a);

#endif
