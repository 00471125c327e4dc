/* replay: re-reads a time window of the webhook topics through the normal consumer loop, in a
 * private consumer group that never commits, and prints what it did. */
#include "replay.h"

#include "consume.h"
#include "log.h"
#include "scan.h"
#include "timeutil.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum tr_lookup { TR_LOOKUP_UNKNOWN, TR_LOOKUP_OK, TR_LOOKUP_UNSUPPORTED };

struct tr_replay {
	struct tr_app *app;
	struct tr_scan *scan;
	FILE *out;
	int64_t from_ms, to_ms;
	enum tr_lookup lookup;
	bool changed; /* assignment changed since the last after_poll */
	int64_t started_ms, last_msg_ms;
	uint64_t outside; /* messages read but outside the window */
	bool gave_up;
	rd_kafka_topic_partition_list_t *positions; /* where tr_replay_start placed partitions */
};

static void tr_replay_rebalanced(void *opaque, bool assigned,
                                 const rd_kafka_topic_partition_list_t *parts)
{
	struct tr_replay *r = opaque;

	tr_scan_update(r->scan, assigned, parts);
	r->changed = true;
}

static bool tr_replay_keep(void *opaque, const rd_kafka_message_t *rkm)
{
	struct tr_replay *r = opaque;
	rd_kafka_timestamp_type_t tstype;
	int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);

	bool first =
	    tr_scan_seen(r->scan, rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset);

	r->last_msg_ms = time_mono_ms();
	if (tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && (ts < r->from_ms || ts > r->to_ms)) {
		if (first) /* a second delivery (e.g. after a rebalance) is not counted again */
			r->outside++;
		return false;
	}
	/* in the window: the engine drops a second delivery of what it took (once_per_run) */
	return true;
}

/* Can the broker look offsets up by time? Asks for timestamp 0, whose answer must be the first
 * offset of every non-empty partition; librdkafka's mock cluster answers the end of the log. */
static enum tr_lookup tr_replay_probe(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts,
                                      const int64_t *lo, const int64_t *hi)
{
	rd_kafka_topic_partition_list_t *probe = rd_kafka_topic_partition_list_copy(parts);
	enum tr_lookup res = TR_LOOKUP_OK;
	rd_kafka_resp_err_t err;

	for (int i = 0; i < probe->cnt; i++)
		probe->elems[i].offset = 0;
	err = rd_kafka_offsets_for_times(rk, probe, 10000);
	if (err)
		res = TR_LOOKUP_UNSUPPORTED;
	for (int i = 0; !err && i < probe->cnt; i++)
		if (lo[i] < hi[i] && (probe->elems[i].err || probe->elems[i].offset != lo[i]))
			res = TR_LOOKUP_UNSUPPORTED;
	rd_kafka_topic_partition_list_destroy(probe);
	return res;
}

/* Records where partition i of parts was placed, for tr_replay_placed. */
static void tr_replay_remember(struct tr_replay *r, const rd_kafka_topic_partition_t *rktpar)
{
	rd_kafka_topic_partition_t *have =
	    rd_kafka_topic_partition_list_find(r->positions, rktpar->topic, rktpar->partition);

	if (!have)
		have = rd_kafka_topic_partition_list_add(r->positions, rktpar->topic,
		                                         rktpar->partition);
	have->offset = rktpar->offset;
}

/* kbus start hook: places newly assigned partitions at --from (offsets for times) before
 * anything is fetched, so the history before the window is never read. Where the broker cannot
 * look offsets up by time (the devbroker), they stay at the beginning (a new group's start) and
 * tr_replay_keep filters by timestamp. */
static void tr_replay_start(void *opaque, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
	struct tr_replay *r = opaque;
	rd_kafka_topic_partition_list_t *at = NULL;
	int64_t *lo = NULL, *hi = NULL;
	rd_kafka_resp_err_t err;

	if (r->lookup == TR_LOOKUP_UNSUPPORTED || parts->cnt == 0)
		return;
	lo = calloc((size_t)parts->cnt, sizeof *lo);
	hi = calloc((size_t)parts->cnt, sizeof *hi);
	if (!lo || !hi)
		goto out;
	for (int i = 0; i < parts->cnt; i++) {
		err = rd_kafka_query_watermark_offsets(
		    rk, parts->elems[i].topic, parts->elems[i].partition, &lo[i], &hi[i], 10000);
		if (err) {
			log_warn("replay: watermarks unknown: reading from the beginning",
			         LOGS("topic", parts->elems[i].topic),
			         LOGI("partition", parts->elems[i].partition),
			         LOGS("error", rd_kafka_err2str(err)));
			goto out;
		}
	}
	if (r->lookup == TR_LOOKUP_UNKNOWN) {
		r->lookup = tr_replay_probe(rk, parts, lo, hi);
		if (r->lookup == TR_LOOKUP_UNSUPPORTED) {
			fprintf(r->out,
			        "note: the broker cannot look offsets up by time (offsets for "
			        "times answered the end of the log): scanning from the earliest "
			        "offset and filtering by message timestamp\n");
			fflush(r->out);
			log_warn(
			    "offsets for times unsupported: scanning from the earliest offset");
			goto out;
		}
	}
	at = rd_kafka_topic_partition_list_copy(parts);
	for (int i = 0; i < at->cnt; i++)
		at->elems[i].offset = r->from_ms;
	err = rd_kafka_offsets_for_times(rk, at, 10000);
	if (err) {
		log_warn("replay: offsets for times failed: reading from the beginning",
		         LOGS("error", rd_kafka_err2str(err)));
		goto out;
	}
	for (int i = 0; i < parts->cnt; i++) {
		/* no message at or after --from: nothing to read but what arrives from now on */
		parts->elems[i].offset =
		    at->elems[i].err || at->elems[i].offset < 0 ? hi[i] : at->elems[i].offset;
		tr_replay_remember(r, &parts->elems[i]);
	}
out:
	if (at)
		rd_kafka_topic_partition_list_destroy(at);
	free(lo);
	free(hi);
}

/* A newly resolved scan partition starts where tr_replay_start placed it (else at its low
 * watermark, as tr_scan_resolve set it). */
static void tr_replay_placed(void *opaque, struct tr_scan_part *p)
{
	struct tr_replay *r = opaque;
	const rd_kafka_topic_partition_t *at =
	    rd_kafka_topic_partition_list_find(r->positions, p->topic, p->partition);

	if (at && at->offset >= 0)
		p->start = at->offset;
}

/* Learns the watermarks of newly assigned partitions (the scan's end) and where they start. */
static void tr_replay_after_poll(void *opaque, struct kbus_consumer *kc)
{
	struct tr_replay *r = opaque;
	int resolved;

	if (!r->changed)
		return;
	resolved = tr_scan_resolve(r->scan, kc, false);
	if (resolved < 0)
		return; /* broker error: retried after the next poll */
	r->changed = false;
	if (resolved > 0)
		tr_scan_each_new(r->scan, tr_replay_placed, r);
}

static bool tr_replay_finished(void *opaque, const struct tr_engine *e)
{
	struct tr_replay *r = opaque;
	int64_t now = time_mono_ms();
	int64_t idle = r->app->conf->idle_timeout_ms;

	if (tr_scan_done(r->scan) && tr_engine_idle(e))
		return true;
	if (tr_engine_idle(e) && now - (r->last_msg_ms ? r->last_msg_ms : r->started_ms) > idle) {
		log_error(tr_scan_count(r->scan) ? "replay: no messages for too long before the end"
		                                 : "replay: no partitions were assigned",
		          LOGI("idle_timeout_ms", idle));
		r->gave_up = true;
		return true;
	}
	return false;
}

int tr_replay_run(struct tr_app *app, FILE *out)
{
	const struct tr_config *conf = app->conf;
	struct tr_replay r = {.app = app, .out = out, .started_ms = time_mono_ms()};
	struct tr_loop_hooks hooks = {
	    .commit = false,
	    .replay = true,
	    .keep = tr_replay_keep,
	    .rebalanced = tr_replay_rebalanced,
	    .start = tr_replay_start,
	    .after_poll = tr_replay_after_poll,
	    .finished = tr_replay_finished,
	    .opaque = &r,
	};
	struct tr_stats st = {0};
	char group[300], from[40], to[40];
	int rc = -1;

	if (!conf->from || time_parse_iso_ms(conf->from, &r.from_ms) < 0) {
		log_error("replay needs --from <ISO-8601 time>");
		return -1;
	}
	if (!conf->to || time_parse_iso_ms(conf->to, &r.to_ms) < 0)
		r.to_ms = time_now_ms();
	time_format_iso_ms(r.from_ms, from, sizeof from);
	time_format_iso_ms(r.to_ms, to, sizeof to);
	/* A private group that never commits: the service's own offsets are untouched. */
	snprintf(group, sizeof group, "%s-replay-%ld-%" PRId64, conf->group, (long)getpid(),
	         time_now_ms());
	hooks.group = group;
	r.scan = tr_scan_new();
	r.positions = rd_kafka_topic_partition_list_new(16);
	if (!r.scan) {
		rd_kafka_topic_partition_list_destroy(r.positions);
		return -1;
	}
	fprintf(out, "replay %s .. %s (group %s)\n", from, to, group);
	fflush(out);
	if (tr_loop_run(app, &hooks, &st) == 0 && !r.gave_up)
		rc = 0;
	fprintf(out,
	        "replay %s: read %" PRIu64 ", inserted %" PRIu64 ", already present %" PRIu64
	        ", %s %" PRIu64 " (post-calls %" PRIu64 ", ignored %" PRIu64
	        ", outside the window %" PRIu64 ")\n",
	        rc == 0 ? "done" : "incomplete", st.read, st.inserted, st.duplicates,
	        conf->no_dead_letter ? "not stored (--no-dead-letter)" : "dead-lettered",
	        conf->no_dead_letter ? st.not_stored : st.dead_lettered, st.post_calls, st.ignored,
	        r.outside);
	fflush(out);
	tr_scan_destroy(r.scan);
	rd_kafka_topic_partition_list_destroy(r.positions);
	return rc;
}
