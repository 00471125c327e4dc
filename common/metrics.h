/* metrics: thread-safe counters, gauges and histograms with labels; Prometheus text exposition. */
#ifndef CALLPIPE_METRICS_H
#define CALLPIPE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics;
struct metric; /* one series (name + label values); lives as long as its registry */

/* A registry. metrics_destroy frees it and every series. */
struct metrics *metrics_new(void);
void metrics_destroy(struct metrics *m);

/* Returns the series for name and labels, creating it on first use (same arguments, same
 * pointer). Labels are "key", "value" pairs ending with NULL. help is recorded once per name.
 * Returns NULL only on allocation failure or a name/kind clash; the update functions accept NULL.
 */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help, ...);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help, ...);
/* Histogram with ascending upper bounds (seconds or any unit), nbounds <= 32. */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const double *bounds, size_t nbounds, ...);

/* Default latency buckets in seconds: 0.5 ms .. 10 s. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_nbuckets;

void metric_add(struct metric *c, double v); /* counter (v >= 0) or gauge */
void metric_inc(struct metric *c);
void metric_set(struct metric *g, double v);     /* gauge */
void metric_observe(struct metric *h, double v); /* histogram */
double metric_value(const struct metric *c);     /* counter/gauge value, histogram count (tests) */

/* Renders the Prometheus text format (version 0.0.4). Returns malloc'd text; caller frees. */
char *metrics_render(struct metrics *m);

#endif
