/* app: the pieces the consumer, replay and redrive share. */
#include "app.h"

#include "db.h"
#include "kbus_topics.h"
#include "log.h"
#include "timeutil.h"

#include <stdio.h>
#include <string.h>

#define TR_APP_TOPICS_CHECK_MS 3000 /* longest wait at start for the cluster's list of topics */
#define TR_APP_SEEK_MS         5000 /* longest wait for a seek back to a message */

static int tr_app_setup(struct tr_app *app, const struct tr_config *conf, struct metrics *metrics,
                        char *errstr, size_t errstr_size)
{
	char line_dlq[sizeof app->line_topic + 8], post_dlq[sizeof app->post_topic + 8];
	const char *need[4];

	app->conf = conf;
	app->metrics = metrics;
	tr_metrics_init(&app->tm, metrics);
	app->kconf = (struct kbus_config){
	    .brokers = conf->kafka_brokers,
	    .topic_prefix = conf->topic_prefix,
	    .config_file = conf->kafka_config_file,
	    .client_id = "transcriber",
	    .delivery_timeout_ms = (int)conf->dlq_timeout_ms,
	    .session_timeout_ms = (int)conf->session_timeout_ms,
	    .metrics = metrics,
	    .fetch_queue_kb = (int)conf->fetch_queue_kb,
	    .fetch_queue_low = (int)(2 * conf->batch_max), /* two rounds' worth */
	};
	if (kbus_topic(&app->kconf, KBUS_TOPIC_TRANSCRIPTION, false, app->line_topic,
	               sizeof app->line_topic) < 0 ||
	    kbus_topic(&app->kconf, KBUS_TOPIC_POST_CALL, false, app->post_topic,
	               sizeof app->post_topic) < 0) {
		snprintf(errstr, errstr_size, "KAFKA_TOPIC_PREFIX: topic names too long");
		return -1;
	}
	/* every mode reads the webhook topics and writes (or, redrive, reads) their dead letters */
	if (kbus_topic(&app->kconf, KBUS_TOPIC_TRANSCRIPTION, true, line_dlq, sizeof line_dlq) <
	        0 ||
	    kbus_topic(&app->kconf, KBUS_TOPIC_POST_CALL, true, post_dlq, sizeof post_dlq) < 0) {
		snprintf(errstr, errstr_size, "KAFKA_TOPIC_PREFIX: topic names too long");
		return -1;
	}
	need[0] = app->line_topic;
	need[1] = app->post_topic;
	need[2] = line_dlq;
	need[3] = post_dlq;
	if (kbus_topics_require(&app->kconf, need, 4, TR_APP_TOPICS_CHECK_MS, errstr, errstr_size))
		return -1;
	atomic_store(&app->ready, false);
	return 0;
}

int tr_app_open(struct tr_app *app, const struct tr_config *conf, struct metrics *metrics,
                char *errstr, size_t errstr_size)
{
	if (tr_app_setup(app, conf, metrics, errstr, errstr_size) < 0)
		return -1;
	app->db = db_open(conf->database_url, conf->db_schema, errstr, errstr_size);
	if (!app->db)
		return -1;
	db_require_version(app->db, DB_SCHEMA_MIN_VERSION);
	app->producer = kbus_producer_new(&app->kconf, errstr, errstr_size);
	if (!app->producer)
		return -2;
	return 0;
}

void tr_app_close(struct tr_app *app)
{
	kbus_producer_destroy(app->producer, 5000);
	app->producer = NULL;
	db_close(app->db);
	app->db = NULL;
}

struct tr_engine_config tr_app_engine_config(const struct tr_app *app)
{
	const struct tr_config *c = app->conf;

	return (struct tr_engine_config){
	    .line_topic = app->line_topic,
	    .post_topic = app->post_topic,
	    .windows = {c->unknown_retry_max_ms, c->missing_conversation_wait_ms,
	                c->post_call_gate_ms},
	    .retry_base_ms = (long)c->retry_base_ms,
	    .retry_max_ms = (long)c->retry_max_ms,
	    .dlq_timeout_ms = (int)c->dlq_timeout_ms,
	};
}

int tr_app_round(struct tr_app *app, struct tr_engine *e)
{
	if (!db_ok(app->db) && db_ensure(app->db) < 0) {
		log_warn("database unavailable", LOGS("error", db_errmsg(app->db)));
		tr_metrics_retry(&app->tm, "database");
		return -1;
	}
	return tr_engine_run(e, time_mono_ms());
}

enum tr_poll_end tr_app_refetch(struct kbus_consumer *kc, const rd_kafka_message_t *rkm)
{
	const char *topic = rd_kafka_topic_name(rkm->rkt);

	log_error("out of memory taking a message: reading it again after a pause",
	          LOGS("topic", topic), LOGI("partition", rkm->partition),
	          LOGI("offset", rkm->offset));
	(void)kbus_consumer_pause(kc, topic, rkm->partition);
	if (kbus_consumer_seek(kc, topic, rkm->partition, rkm->offset, TR_APP_SEEK_MS) < 0) {
		log_error("cannot move back to a message it could not take", LOGS("topic", topic),
		          LOGI("partition", rkm->partition), LOGI("offset", rkm->offset));
		return TR_POLL_STUCK;
	}
	return TR_POLL_REFUSED;
}

size_t tr_app_poll_batch(const struct tr_app *app, struct kbus_consumer *kc, struct tr_engine *e,
                         int first_wait_ms, size_t have,
                         bool (*keep)(void *opaque, const rd_kafka_message_t *rkm), void *opaque,
                         enum tr_poll_end *end)
{
	size_t n = 0;
	int64_t deadline = have ? time_mono_ms() + app->conf->batch_wait_ms : 0;
	int wait = first_wait_ms;

	*end = TR_POLL_OK;
	while (have + n < (size_t)app->conf->batch_max) {
		rd_kafka_message_t *rkm = kbus_consumer_poll(kc, wait > 0 ? wait : 0);
		struct tr_msg *m;

		if (!rkm)
			break;
		if (keep && !keep(opaque, rkm)) {
			rd_kafka_message_destroy(rkm);
		} else {
			m = tr_msg_from_kafka(rkm);
			if (!m || tr_engine_add(e, m) < 0) { /* tr_engine_add freed m */
				*end = tr_app_refetch(kc, rkm);
				rd_kafka_message_destroy(rkm);
				break;
			}
			rd_kafka_message_destroy(rkm);
			n++;
		}
		if (!deadline)
			deadline = time_mono_ms() + app->conf->batch_wait_ms;
		wait = (int)(deadline - time_mono_ms());
	}
	return n;
}
