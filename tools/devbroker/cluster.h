/* cluster: devbroker's librdkafka mock cluster (in memory), its topics, and fault injection. */
#ifndef CALLPIPE_DEVBROKER_CLUSTER_H
#define CALLPIPE_DEVBROKER_CLUSTER_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cluster;

/* Starts a mock cluster of nbrokers on loopback. listen_port 0 lets the kernel pick the ports
 * (the default); otherwise broker i listens on listen_port + i - 1 (see bind() in cluster.c).
 * NULL + errstr on failure. Caller owns; cluster_destroy frees (NULL ok). */
struct cluster *cluster_new(int nbrokers, unsigned listen_port, char *errstr, size_t errstr_size);
/* Destroys the mock cluster, then its host handle (this order is required; takes ~1 s). */
void cluster_destroy(struct cluster *cl);

/* "127.0.0.1:port,..." ; borrowed, valid until cluster_destroy. */
const char *cluster_bootstrap(const struct cluster *cl);

/* Creates a topic. Returns 0, or -1 + errstr (bad arguments, already exists). */
__attribute__((warn_unused_result)) int cluster_topic_create(struct cluster *cl, const char *name,
                                                             int partitions, char *errstr,
                                                             size_t errstr_size);

/* Takes broker id down (connections closed, new ones refused) or back up. */
__attribute__((warn_unused_result)) int cluster_broker_set_up(struct cluster *cl, int32_t id,
                                                              bool up, char *errstr,
                                                              size_t errstr_size);

/* Makes the next count requests of api fail with code (broker -1: on whichever broker gets
 * them; else only on that broker). */
__attribute__((warn_unused_result)) int cluster_push_errors(struct cluster *cl, int16_t api,
                                                            rd_kafka_resp_err_t code, size_t count,
                                                            int32_t broker, char *errstr,
                                                            size_t errstr_size);
/* Forgets the queued errors of api (cluster-wide ones). */
void cluster_clear_errors(struct cluster *cl, int16_t api);

/* Adds rtt_ms to every response of broker id. */
__attribute__((warn_unused_result)) int cluster_set_rtt(struct cluster *cl, int32_t id, int rtt_ms,
                                                        char *errstr, size_t errstr_size);

/* {"bootstrap", "brokers": [{"id","up","rtt_ms"}], "topics": [{"name","partitions"}]}: new
 * reference for the caller. */
json_t *cluster_status(struct cluster *cl);

/* "Produce", "Fetch", ... or a number → ApiKey. Returns 0 or -1. */
int cluster_parse_api(const char *s, int16_t *api);
/* "NOT_LEADER_FOR_PARTITION", "_TRANSPORT", or a number → error code. Returns 0 or -1. */
int cluster_parse_error(const char *s, rd_kafka_resp_err_t *code);

#endif
