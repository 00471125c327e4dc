/* tmetrics: the transcriber's metric series (transcriber_*), registered once. */
#ifndef CALLPIPE_TRANSCRIBER_TMETRICS_H
#define CALLPIPE_TRANSCRIBER_TMETRICS_H

struct metrics;
struct metric;

/* Series pointers into a registry that outlives this struct (borrowed). Any may be NULL (the
 * metric_* updates accept NULL). */
struct tr_metrics {
	struct metrics *reg;
	struct metric *inserted, *reconciled, *duplicates, *gaps;
	struct metric *batch_size, *tx_seconds, *line_delay;
	struct metric *parked, *paused;
};

/* Registers the fixed series in reg (may be NULL: then every series is NULL). */
void tr_metrics_init(struct tr_metrics *tm, struct metrics *reg);

/* transcriber_consumed_total{topic} */
void tr_metrics_consumed(struct tr_metrics *tm, const char *topic);
/* transcriber_retries_total{reason}: unknown_call_sid, missing_conversation_id, post_call_gate,
 * database, dlq_produce */
void tr_metrics_retry(struct tr_metrics *tm, const char *reason);
/* transcriber_dead_lettered_total{reason} */
void tr_metrics_dead_lettered(struct tr_metrics *tm, const char *reason);
/* transcriber_post_call_total{type,outcome} */
void tr_metrics_post_call(struct tr_metrics *tm, const char *type, const char *outcome);

#endif
