/* redrive: dead-letter topics back to their source topics, once each: a consumer group on the
 * .dlq topics produces each message to its source and commits it only after the broker acked. */
#include "redrive.h"

#include "deadletter.h"
#include "log.h"
#include "msg.h"
#include "scan.h"
#include "shutdown.h"
#include "timeutil.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct tr_redrive {
	struct tr_app *app;
	struct tr_scan *scan;
	struct kbus_consumer *kc;
	char dlq_line[300], dlq_post[300];
	bool changed;
	uint64_t read, redriven, skipped;
};

static void tr_redrive_rebalanced(void *opaque, bool assigned,
                                  const rd_kafka_topic_partition_list_t *parts)
{
	struct tr_redrive *r = opaque;

	tr_scan_update(r->scan, assigned, parts);
	r->changed = true;
}

/* The topic a dead-letter goes back to: its source_topic header when that is one of ours, else
 * the dead-letter topic's name without ".dlq". NULL when neither is ours. */
static const char *tr_redrive_target(const struct tr_redrive *r, const rd_kafka_message_t *rkm,
                                     char *buf, size_t size)
{
	const char *dlq = rd_kafka_topic_name(rkm->rkt);

	if (kbus_message_header(rkm, DEADLETTER_HDR_SOURCE_TOPIC, buf, size) == 0 &&
	    (strcmp(buf, r->app->line_topic) == 0 || strcmp(buf, r->app->post_topic) == 0))
		return buf;
	if (strcmp(dlq, r->dlq_line) == 0)
		return r->app->line_topic;
	if (strcmp(dlq, r->dlq_post) == 0)
		return r->app->post_topic;
	return NULL;
}

/* The headers of the redriven message: the original ones without the dead-letter's, plus
 * redrive_count + 1 and the message's first position (origin_partition/origin_offset). Values
 * are copied into vals (freed by the caller). Returns the count, -1 when out of memory. */
static long tr_redrive_headers(const rd_kafka_message_t *rkm, struct kbus_header *h, char **vals,
                               size_t max)
{
	rd_kafka_headers_t *hdrs = NULL;
	char count[32], part[16] = "", off[32] = "";
	const char *name;
	const void *val;
	size_t size, n = 0, nv = 0;
	long prev = 0;

	if (kbus_message_header(rkm, TR_HDR_REDRIVE_COUNT, count, sizeof count) == 0)
		prev = strtol(count, NULL, 10);
	snprintf(count, sizeof count, "%ld", prev + 1);
	if (kbus_message_header(rkm, TR_HDR_ORIGIN_PARTITION, part, sizeof part) < 0 ||
	    kbus_message_header(rkm, TR_HDR_ORIGIN_OFFSET, off, sizeof off) < 0) {
		if (kbus_message_header(rkm, DEADLETTER_HDR_SOURCE_PARTITION, part, sizeof part) <
		        0 ||
		    kbus_message_header(rkm, DEADLETTER_HDR_SOURCE_OFFSET, off, sizeof off) < 0)
			part[0] = off[0] = '\0';
	}
	if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
		for (size_t i = 0;
		     n + 3 < max && !rd_kafka_header_get_all(hdrs, i, &name, &val, &size); i++) {
			if (deadletter_header(name) || strcmp(name, TR_HDR_REDRIVE_COUNT) == 0 ||
			    strcmp(name, TR_HDR_ORIGIN_PARTITION) == 0 ||
			    strcmp(name, TR_HDR_ORIGIN_OFFSET) == 0)
				continue;
			vals[nv] = strndup(val ? val : "", val ? size : 0);
			if (!vals[nv])
				return -1;
			h[n++] = (struct kbus_header){name, vals[nv++]};
		}
	}
	if (!(vals[nv] = strdup(count)))
		return -1;
	h[n++] = (struct kbus_header){TR_HDR_REDRIVE_COUNT, vals[nv++]};
	if (part[0] && off[0]) {
		if (!(vals[nv] = strdup(part)) || !(vals[nv + 1] = strdup(off)))
			return -1;
		h[n++] = (struct kbus_header){TR_HDR_ORIGIN_PARTITION, vals[nv]};
		h[n++] = (struct kbus_header){TR_HDR_ORIGIN_OFFSET, vals[nv + 1]};
	}
	return (long)n;
}

/* Moves one dead-letter. Returns 0 (redriven or skipped, and committed), -1 on failure. */
static int tr_redrive_one(struct tr_redrive *r, const rd_kafka_message_t *rkm)
{
	const struct tr_config *conf = r->app->conf;
	const char *dlq = rd_kafka_topic_name(rkm->rkt);
	char reason[128] = "", target_buf[256], errstr[512];
	const char *target;
	struct kbus_header h[64];
	char *vals[64] = {0};
	long nh;
	int rc = -1;

	r->read++;
	(void)kbus_message_header(rkm, DEADLETTER_HDR_REASON, reason, sizeof reason);
	target = tr_redrive_target(r, rkm, target_buf, sizeof target_buf);
	if ((conf->reason && strcmp(reason, conf->reason) != 0) || !target) {
		if (!target)
			log_warn("dead-letter with an unknown source topic: skipped",
			         LOGS("topic", dlq), LOGI("offset", rkm->offset));
		r->skipped++;
		goto commit;
	}
	nh = tr_redrive_headers(rkm, h, vals, 64);
	if (nh < 0) {
		log_error("out of memory building headers");
		goto out;
	}
	if (kbus_produce_sync(r->app->producer, target, rkm->key, rkm->key_len, rkm->payload,
	                      rkm->len, h, (size_t)nh, (int)conf->dlq_timeout_ms, errstr,
	                      sizeof errstr) < 0) {
		log_error("redrive produce failed: run redrive again later", LOGS("topic", target),
		          LOGS("error", errstr));
		goto out;
	}
	log_info("redriven", LOGS("from", dlq), LOGI("offset", rkm->offset), LOGS("to", target),
	         LOGS("reason", reason));
	r->redriven++;
commit:
	rc = kbus_consumer_commit(r->kc, dlq, rkm->partition, rkm->offset + 1);
out:
	for (size_t i = 0; i < 64 && vals[i]; i++)
		free(vals[i]);
	return rc;
}

int tr_redrive_run(struct tr_app *app, FILE *out)
{
	const struct tr_config *conf = app->conf;
	struct tr_redrive r = {.app = app};
	const char *topics[2] = {r.dlq_line, r.dlq_post};
	char group[300], errstr[512];
	int64_t last = time_mono_ms();
	int rc = -1;

	if (kbus_topic(&app->kconf, KBUS_TOPIC_TRANSCRIPTION, true, r.dlq_line, sizeof r.dlq_line) <
	        0 ||
	    kbus_topic(&app->kconf, KBUS_TOPIC_POST_CALL, true, r.dlq_post, sizeof r.dlq_post) < 0)
		return -1;
	if (conf->redrive_group)
		snprintf(group, sizeof group, "%s", conf->redrive_group);
	else
		snprintf(group, sizeof group, "%s-redrive%s%s", conf->group,
		         conf->reason ? "-" : "", conf->reason ? conf->reason : "");
	r.scan = tr_scan_new();
	if (!r.scan)
		return -1;
	r.kc = kbus_consumer_new(&app->kconf, group, topics, 2, tr_redrive_rebalanced, &r, errstr,
	                         sizeof errstr);
	if (!r.kc) {
		log_error("kafka consumer", LOGS("error", errstr));
		goto out;
	}
	fprintf(out, "redrive %s, %s (group %s, reason %s)\n", r.dlq_line, r.dlq_post, group,
	        conf->reason ? conf->reason : "any");
	fflush(out);
	while (!shutdown_requested()) {
		rd_kafka_message_t *rkm = kbus_consumer_poll(r.kc, 100);

		if (r.changed && tr_scan_resolve(r.scan, r.kc, true) >= 0)
			r.changed = false;
		if (rkm) {
			int ok = 0;

			/* A second delivery of an offset (librdkafka 2.0.2 re-fetches now and then
			 * after an assignment) must not be redriven twice. */
			if (tr_scan_seen(r.scan, rd_kafka_topic_name(rkm->rkt), rkm->partition,
			                 rkm->offset))
				ok = tr_redrive_one(&r, rkm);
			rd_kafka_message_destroy(rkm);
			if (ok < 0)
				goto out;
			last = time_mono_ms();
		}
		if (!r.changed && tr_scan_done(r.scan)) {
			rc = 0;
			break;
		}
		if (time_mono_ms() - last > conf->idle_timeout_ms) {
			log_error(tr_scan_count(r.scan)
			              ? "redrive: no messages for too long before "
			                "the end"
			              : "redrive: no partitions were assigned",
			          LOGI("idle_timeout_ms", conf->idle_timeout_ms));
			break;
		}
	}
out:
	kbus_consumer_close(r.kc);
	fprintf(out,
	        "redrive %s: read %" PRIu64 ", redriven %" PRIu64 ", skipped %" PRIu64
	        " (other reasons)\n",
	        rc == 0 ? "done" : "incomplete", r.read, r.redriven, r.skipped);
	fflush(out);
	tr_scan_destroy(r.scan);
	return rc;
}
