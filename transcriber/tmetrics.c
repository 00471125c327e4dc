/* tmetrics: registration of the transcriber_* series and the labelled ones on demand. */
#include "tmetrics.h"

#include "metrics.h"

#include <stddef.h>
#include <string.h>

static const double tr_batch_buckets[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
/* Fine around the freshness a caller of GET /calls/{call_sid} sees (tens of milliseconds). */
static const double tr_delay_buckets[] = {0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03,
                                          0.04,  0.05,  0.075, 0.1,  0.15,  0.2,  0.3,   0.5,
                                          0.75,  1,     2,     5,    10,    30,   60,    300};

void tr_metrics_init(struct tr_metrics *tm, struct metrics *reg)
{
	memset(tm, 0, sizeof *tm);
	tm->reg = reg;
	if (!reg)
		return;
	tm->inserted =
	    metrics_counter(reg, "transcriber_inserted_total",
	                    "Transcription lines written (per-turn and reconciled)", NULL);
	tm->reconciled = metrics_counter(
	    reg, "transcriber_reconciled_total",
	    "Lines appended from the post-call transcript that per-turn webhooks missed", NULL);
	tm->duplicates = metrics_counter(
	    reg, "transcriber_duplicates_total",
	    "Lines skipped because they were stored already (redelivery, replay, redrive)", NULL);
	tm->gaps = metrics_counter(reg, "transcriber_reconcile_gaps_total",
	                           "Final-transcript turns missed in the middle of a conversation "
	                           "(not appendable without breaking the order)",
	                           NULL);
	tm->batch_size = metrics_histogram(
	    reg, "transcriber_batch_size", "Messages per database transaction", tr_batch_buckets,
	    sizeof tr_batch_buckets / sizeof tr_batch_buckets[0], NULL);
	tm->tx_seconds =
	    metrics_histogram(reg, "transcriber_tx_seconds", "Duration of one batch transaction",
	                      metrics_latency_buckets, metrics_latency_nbuckets, NULL);
	tm->line_delay = metrics_histogram(
	    reg, "transcriber_line_delay_seconds",
	    "From the ingress's received_at of a per-turn line to the commit that stored it (wall "
	    "clocks of two processes: skew between hosts adds to it)",
	    tr_delay_buckets, sizeof tr_delay_buckets / sizeof tr_delay_buckets[0], NULL);
	tm->parked = metrics_gauge(reg, "transcriber_parked",
	                           "Messages waiting in memory for their call to be ready", NULL);
	tm->paused =
	    metrics_gauge(reg, "transcriber_paused",
	                  "1 while consumption is paused (database down or too much parked)", NULL);
}

void tr_metrics_consumed(struct tr_metrics *tm, const char *topic)
{
	if (tm->reg)
		metric_inc(metrics_counter(tm->reg, "transcriber_consumed_total",
		                           "Messages consumed, per topic", "topic", topic, NULL));
}

void tr_metrics_retry(struct tr_metrics *tm, const char *reason)
{
	if (tm->reg)
		metric_inc(metrics_counter(tm->reg, "transcriber_retries_total",
		                           "Retries, by reason", "reason", reason, NULL));
}

void tr_metrics_dead_lettered(struct tr_metrics *tm, const char *reason)
{
	if (tm->reg)
		metric_inc(metrics_counter(tm->reg, "transcriber_dead_lettered_total",
		                           "Messages sent to a dead-letter topic, by reason",
		                           "reason", reason, NULL));
}

void tr_metrics_post_call(struct tr_metrics *tm, const char *type, const char *outcome)
{
	if (tm->reg)
		metric_inc(metrics_counter(tm->reg, "transcriber_post_call_total",
		                           "Post-call webhooks handled, by type and outcome",
		                           "type", type, "outcome", outcome, NULL));
}
