/* kbus_int: helpers shared by kbus.c (producer) and kbus_consumer.c; not for services. */
#ifndef CALLPIPE_KBUS_INT_H
#define CALLPIPE_KBUS_INT_H

#include "kbus.h"

#include <stddef.h>

/* Sets one property; on failure writes "name: reason" into errstr and returns -1. */
int kbus_conf_set(rd_kafka_conf_t *rkc, const char *name, const char *value, char *errstr,
                  size_t errstr_size) __attribute__((warn_unused_result));

/* Sets bootstrap.servers, client.id and the log/error callbacks (into common/log). */
int kbus_conf_common(rd_kafka_conf_t *rkc, const struct kbus_config *conf, char *errstr,
                     size_t errstr_size) __attribute__((warn_unused_result));

/* Applies conf->extra ("key", "value", ..., NULL) last, so it overrides kbus' defaults. */
int kbus_conf_extra(rd_kafka_conf_t *rkc, const struct kbus_config *conf, char *errstr,
                    size_t errstr_size) __attribute__((warn_unused_result));

/* Monotonic clock in ms. */
long long kbus_now_ms(void);

#endif
