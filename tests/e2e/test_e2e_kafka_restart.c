/* test_e2e_kafka_restart: the broker, a real Kafka of the test's own, is killed with -9 while
 * clients post signed transcription webhooks as fast as they are answered, and started again on
 * the same data. While it is down the ingress answers 503 with Retry-After, never 200; each
 * client re-sends a refused webhook as ElevenLabs would (same signature: same event_id) until
 * it is answered 200. Every webhook answered 200 is then stored exactly once, and each call's
 * lines in the order they were posted. Kafka only: the devbroker's outage is test_e2e_broker. */
#include "e2e.h"
#include "e2e_group.h"
#include "e2e_sim.h"
#include "sig.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define E2E_PARTITIONS          6
#define E2E_CLIENTS             6
#define E2E_WARMUP_MS           3000  /* load before the kill */
#define E2E_DOWN_MS             6000  /* dead before the restart begins (which takes ~10 s) */
#define E2E_AFTER_MS            5000  /* load after the broker is back */
#define E2E_GAP_MS              10    /* between a client's webhooks */
#define E2E_LINE_GIVE_UP_MS     90000 /* a client stops retrying one webhook after this */
#define E2E_DELIVERY_TIMEOUT_MS 2000
#define E2E_RETRY_AFTER_S       1

/* One HTTP attempt of a client. */
struct e2e_attempt {
	long long sent_ms, answered_ms;
	long status;     /* -1: no answer (transport error) */
	int retry_after; /* its Retry-After in seconds, -1 when absent */
};

/* A client: one call, lines posted one after the other, each retried until answered 200. Runs
 * on its own thread and must not call cmocka; error says what went wrong. It owns copies of
 * what it needs: a failed test unwinds (and frees the stack) while it may still run. */
struct e2e_client {
	pthread_t thread;
	int index;
	char url[160], secret[48];
	atomic_bool *stop;
	char call_sid[64], conversation_id[64];
	char (*event_ids)[80]; /* of each line answered 200, in posting order */
	int nlines, lines_cap;
	struct e2e_attempt *attempts;
	int nattempts, attempts_cap;
	char error[512];
};

/* What a response carries for the client. */
struct e2e_answer {
	char body[1024];
	size_t len;
	int retry_after;
};

static size_t e2e_answer_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
	struct e2e_answer *a = opaque;
	size_t n = size * nmemb, room = sizeof a->body - 1 - a->len;

	memcpy(a->body + a->len, ptr, n < room ? n : room);
	a->len += n < room ? n : room;
	a->body[a->len] = '\0';
	return n;
}

static size_t e2e_answer_header(char *ptr, size_t size, size_t nmemb, void *opaque)
{
	struct e2e_answer *a = opaque;
	size_t n = size * nmemb;

	if (n > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0)
		a->retry_after = atoi(ptr + 12);
	return n;
}

static bool e2e_client_grow(struct e2e_client *c)
{
	if (c->nattempts == c->attempts_cap) {
		int cap = c->attempts_cap ? 2 * c->attempts_cap : 256;
		void *p = realloc(c->attempts, (size_t)cap * sizeof *c->attempts);

		if (!p)
			return false;
		c->attempts = p;
		c->attempts_cap = cap;
	}
	if (c->nlines == c->lines_cap) {
		int cap = c->lines_cap ? 2 * c->lines_cap : 256;
		void *p = realloc(c->event_ids, (size_t)cap * sizeof *c->event_ids);

		if (!p)
			return false;
		c->event_ids = p;
		c->lines_cap = cap;
	}
	return true;
}

/* Posts body with the signature header sighdr once; records the attempt. */
static long e2e_client_post(struct e2e_client *c, CURL *curl, const char *url, const char *sighdr,
                            const char *body, struct e2e_answer *a)
{
	struct curl_slist *hl = NULL;
	struct e2e_attempt *at = &c->attempts[c->nattempts++];
	long status = -1;
	CURLcode rc;

	memset(a, 0, sizeof *a);
	a->retry_after = -1;
	hl = curl_slist_append(hl, sighdr);
	hl = curl_slist_append(hl, "Content-Type: application/json");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
	at->sent_ms = e2e_wall_ms();
	rc = curl_easy_perform(curl);
	at->answered_ms = e2e_wall_ms();
	if (rc == CURLE_OK && curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = -1;
	if (rc != CURLE_OK)
		snprintf(c->error, sizeof c->error, "POST %s: %s", url, curl_easy_strerror(rc));
	at->status = status;
	at->retry_after = a->retry_after;
	curl_slist_free_all(hl);
	return status;
}

/* Posts line n of the client's call until it is answered 200; false on anything else. */
static bool e2e_client_line(struct e2e_client *c, CURL *curl, const char *url, int n)
{
	char message[64], sig[256], sighdr[300], *body = NULL;
	long long first = e2e_wall_ms();
	bool ok = false;
	json_t *root;

	snprintf(message, sizeof message, "client %d line %d", c->index, n);
	root = json_pack("{s:s, s:s, s:s}", "call_sid", c->call_sid, "speaker",
	                 n % 2 ? "user" : "agent", "message", message);
	body = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	/* Signed once: a re-sent webhook is the same delivery (ingress: the same event_id). */
	if (!body ||
	    sig_sign(c->secret, (int64_t)time(NULL), body, strlen(body), sig, sizeof sig) != 0) {
		snprintf(c->error, sizeof c->error, "cannot build or sign line %d", n);
		goto out;
	}
	snprintf(sighdr, sizeof sighdr, "ElevenLabs-Signature: %s", sig);
	for (;;) {
		struct e2e_answer a;
		long status;

		if (!e2e_client_grow(c)) {
			snprintf(c->error, sizeof c->error, "out of memory");
			goto out;
		}
		status = e2e_client_post(c, curl, url, sighdr, body, &a);
		if (status == 200) {
			json_t *ans = json_loads(a.body, 0, NULL);
			const char *id = json_string_value(json_object_get(ans, "event_id"));

			if (id)
				snprintf(c->event_ids[c->nlines++], sizeof *c->event_ids, "%s", id);
			else
				snprintf(c->error, sizeof c->error, "200 without event_id: %.300s",
				         a.body);
			ok = id != NULL;
			json_decref(ans);
			goto out;
		}
		if (status != 503) {
			if (status >= 0)
				snprintf(c->error, sizeof c->error, "line %d answered %ld: %.300s",
				         n, status, a.body);
			goto out;
		}
		if (e2e_wall_ms() - first > E2E_LINE_GIVE_UP_MS) {
			snprintf(c->error, sizeof c->error, "line %d still refused after %d ms", n,
			         E2E_LINE_GIVE_UP_MS);
			goto out;
		}
		ts_sleep_ms(a.retry_after > 0 ? a.retry_after * 1000L : 1000L);
	}
out:
	free(body);
	return ok;
}

static void *e2e_client_run(void *opaque)
{
	struct e2e_client *c = opaque;
	CURL *curl = curl_easy_init();

	if (!curl) {
		snprintf(c->error, sizeof c->error, "curl_easy_init failed");
		return NULL;
	}
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, e2e_answer_body);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, e2e_answer_header);
	/* A line begun is finished (answered 200) even after stop: every one posted must land. */
	for (int n = 0; !atomic_load(c->stop); n++) {
		if (!e2e_client_line(c, curl, c->url, n))
			break;
		ts_sleep_ms(E2E_GAP_MS);
	}
	curl_easy_cleanup(curl);
	return NULL;
}

/* What the client threads share, on the heap (so is the port watch): a failed test unwinds past
 * the threads, which end once the stack is gone. */
struct e2e_load {
	atomic_bool stop;
	struct e2e_client clients[E2E_CLIENTS];
};

/* Watches the dead broker's port from another thread: when it accepts connections again, the
 * broker is no longer down (its restart script returns only later, once metadata answers). */
struct e2e_port_watch {
	pthread_t thread;
	struct sockaddr_in addr;
	long long up_ms;
};

static void *e2e_port_watch_run(void *opaque)
{
	struct e2e_port_watch *w = opaque;

	for (long long deadline = e2e_wall_ms() + 180000; e2e_wall_ms() < deadline;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool up = fd >= 0 && connect(fd, (struct sockaddr *)&w->addr, sizeof w->addr) == 0;

		if (fd >= 0)
			close(fd);
		if (up) {
			w->up_ms = e2e_wall_ms();
			break;
		}
		ts_sleep_ms(20);
	}
	return NULL;
}

static void e2e_port_watch_start(struct e2e_port_watch *w, const char *bootstrap)
{
	const char *colon = strrchr(bootstrap, ':');

	memset(w, 0, sizeof *w);
	w->up_ms = -1;
	w->addr.sin_family = AF_INET;
	w->addr.sin_port = htons((uint16_t)(colon ? atoi(colon + 1) : 0));
	w->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!colon || strncmp(bootstrap, "127.0.0.1:", 10) != 0)
		fail_msg("e2e: broker address %s is not 127.0.0.1:port", bootstrap);
	if (pthread_create(&w->thread, NULL, e2e_port_watch_run, w))
		fail_msg("e2e: pthread_create failed");
}

/* The calls the clients post lines for: in progress, with a conversation_id, as the dialer
 * would have left them. */
static void e2e_seed_calls(const struct e2e_stack *s, struct e2e_client *clients)
{
	char stamp[32], sql[512];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 0; i < E2E_CLIENTS; i++) {
		struct e2e_client *c = &clients[i];

		snprintf(c->call_sid, sizeof c->call_sid, "EL_R%04d_%s", i, stamp);
		snprintf(c->conversation_id, sizeof c->conversation_id, "conv_restart_%d_%s", i,
		         stamp);
		snprintf(sql, sizeof sql,
		         "insert into calls (call_sid, conversation_id, driver_id, trip_id, status,"
		         " call_start_time) values ('%s', '%s', 'R%04d', 'TRIP-R', 'in_progress',"
		         " now())",
		         c->call_sid, c->conversation_id, i);
		ts_pg_exec(s->schema, sql);
	}
}

/* The outage as the test saw it (wall clock, epoch ms). The broker died somewhere between
 * kill_ms and killed_ms (scripts/kafka kill -9s it, then waits until it is gone). */
struct e2e_outage {
	long long kill_ms, killed_ms;
	long long up_ms;      /* its port accepted a connection again */
	long long restart_ms; /* the restart began */
	long long back_ms;    /* the restart returned: it answers metadata */
};

/* What the clients saw around the outage. */
struct e2e_tally {
	int attempts, ok, refused, other, no_retry_after, bad_retry_after;
	int down_ok, down_refused; /* answered between killed_ms and up_ms */
	int cut, cut_ok;           /* sent before killed_ms, answered after kill_ms */
	int ok_after;              /* answered 200, sent after the broker was back */
	int refused_after;         /* answered 503, sent after the broker was back */
	long long first_ok_after_ms;
};

static void e2e_tally(const struct e2e_client *clients, const struct e2e_outage *o,
                      struct e2e_tally *t)
{
	memset(t, 0, sizeof *t);
	t->first_ok_after_ms = -1;
	for (int i = 0; i < E2E_CLIENTS; i++) {
		for (int k = 0; k < clients[i].nattempts; k++) {
			const struct e2e_attempt *a = &clients[i].attempts[k];
			bool down = a->answered_ms > o->killed_ms && a->answered_ms < o->up_ms;

			t->attempts++;
			t->ok += a->status == 200;
			t->refused += a->status == 503;
			t->other += a->status != 200 && a->status != 503;
			if (a->status == 503 && a->retry_after < 0)
				t->no_retry_after++;
			else if (a->status == 503 && a->retry_after != E2E_RETRY_AFTER_S)
				t->bad_retry_after++;
			t->down_ok += down && a->status == 200;
			t->down_refused += down && a->status == 503;
			if (a->sent_ms < o->killed_ms && a->answered_ms > o->kill_ms) {
				t->cut++;
				t->cut_ok += a->status == 200;
			}
			if (a->status == 200 && a->answered_ms > o->restart_ms &&
			    (t->first_ok_after_ms < 0 || a->answered_ms < t->first_ok_after_ms))
				t->first_ok_after_ms = a->answered_ms;
			t->ok_after += a->status == 200 && a->sent_ms > o->back_ms;
			t->refused_after += a->status == 503 && a->sent_ms > o->back_ms;
		}
	}
}

/* Writes every attempt (client, sent and answered in ms from the kill, status) into the test's
 * scratch directory, for a look after the run. */
static void e2e_write_attempts(const struct e2e_client *clients, long long kill_ms)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof path, "%s/attempts.tsv", ts_tmpdir());
	fp = fopen(path, "w");
	if (!fp)
		return;
	fprintf(fp, "client\tsent_ms\tanswered_ms\tstatus\tretry_after\n");
	for (int i = 0; i < E2E_CLIENTS; i++)
		for (int k = 0; k < clients[i].nattempts; k++)
			fprintf(fp, "%d\t%lld\t%lld\t%ld\t%d\n", i,
			        clients[i].attempts[k].sent_ms - kill_ms,
			        clients[i].attempts[k].answered_ms - kill_ms,
			        clients[i].attempts[k].status, clients[i].attempts[k].retry_after);
	fclose(fp);
	print_message("e2e: every attempt, in ms from the kill: %s\n", path);
}

/* The event_ids of the call's stored lines in sequence order, as a JSON array (new reference);
 * fails the test unless the sequence numbers are 1..N. */
static json_t *e2e_stored_lines(const struct e2e_stack *s, const struct e2e_client *c)
{
	char sql[512], *text;
	json_t *rows, *ids = json_array(), *row;
	size_t i;

	snprintf(sql, sizeof sql,
	         "select coalesce(json_agg(json_build_array(sequence_number, event_id)"
	         " order by sequence_number), '[]')::text from call_transcriptions"
	         " where conversation_id = '%s'",
	         c->conversation_id);
	text = ts_pg_query(s->schema, sql);
	rows = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (!rows || !ids)
		fail_msg("e2e: could not read the lines of %s", c->call_sid);
	json_array_foreach(rows, i, row)
	{
		if (json_integer_value(json_array_get(row, 0)) != (json_int_t)i + 1)
			fail_msg("e2e: %s: line %zu has sequence number %lld", c->call_sid, i + 1,
			         (long long)json_integer_value(json_array_get(row, 0)));
		json_array_append(ids, json_array_get(row, 1));
	}
	json_decref(rows);
	return ids;
}

/* How many messages webhooks.transcription holds, and how many of them repeat an event_id: a
 * webhook answered 503 whose message had reached the log anyway, then sent again. */
static size_t e2e_topic_copies(const struct e2e_stack *s, size_t *repeated)
{
	struct ts_kmsg *msgs = NULL;
	char topic[256];
	size_t n = ts_kafka_read_all(
	    s->broker.bootstrap,
	    ts_broker_topic(&s->broker, "webhooks.transcription", topic, sizeof topic), &msgs);
	json_t *seen = json_object();

	*repeated = 0;
	for (size_t i = 0; i < n; i++) {
		const char *id = ts_kmsg_header(&msgs[i], "event_id");

		if (!id)
			fail_msg("e2e: a message of %s has no event_id header", topic);
		if (json_object_get(seen, id))
			(*repeated)++;
		else
			json_object_set_new(seen, id, json_true());
	}
	json_decref(seen);
	ts_kmsgs_free(msgs, n);
	return n;
}

/* Every webhook answered 200 is stored exactly once, in the order its client posted it; nothing
 * else is stored, nothing dead-lettered. */
static void e2e_check_stored(const struct e2e_stack *s, const struct e2e_client *clients, int total)
{
	struct ts_kmsg *msgs = NULL;
	long long rows = -1, deadline = e2e_wall_ms() + 60000;
	char dlq[256];
	size_t ndlq;

	while ((rows = e2e_count_rows(s, "call_transcriptions")) < total &&
	       e2e_wall_ms() < deadline)
		ts_sleep_ms(250);
	ts_sleep_ms(1000); /* anything more that was going to arrive */
	rows = e2e_count_rows(s, "call_transcriptions");
	if (rows != total) {
		e2e_stack_dump_logs(s, 15);
		fail_msg("e2e: %lld lines stored for %d webhooks answered 200", rows, total);
	}
	for (int i = 0; i < E2E_CLIENTS; i++) {
		const struct e2e_client *c = &clients[i];
		json_t *ids = e2e_stored_lines(s, c);

		if ((int)json_array_size(ids) != c->nlines)
			fail_msg("e2e: %s: %zu lines stored, %d answered 200", c->call_sid,
			         json_array_size(ids), c->nlines);
		for (int k = 0; k < c->nlines; k++) {
			const char *id = json_string_value(json_array_get(ids, (size_t)k));

			if (!id || strcmp(id, c->event_ids[k]) != 0)
				fail_msg("e2e: %s: line %d is event %s, the client posted %s there",
				         c->call_sid, k + 1, id ? id : "(none)", c->event_ids[k]);
		}
		json_decref(ids);
	}
	ndlq = ts_kafka_read_all(
	    s->broker.bootstrap,
	    ts_broker_topic(&s->broker, "webhooks.transcription.dlq", dlq, sizeof dlq), &msgs);
	ts_kmsgs_free(msgs, ndlq);
	if (ndlq)
		fail_msg("e2e: %zu webhooks dead-lettered", ndlq);
}

static void test_e2e_kafka_broker_restart(void **state)
{
	/* A delivery timeout shorter than the outage, so the ingress must refuse during it. */
	const char *ingress_env[] = {
	    "INGRESS_DELIVERY_TIMEOUT_MS=" E2E_STR(E2E_DELIVERY_TIMEOUT_MS),
	    "INGRESS_RETRY_AFTER_S=" E2E_STR(E2E_RETRY_AFTER_S), NULL};
	/* The fast settings and (last wins) no sweeper: the seeded calls have no conversation
	 * elevensim knows, and are not the sweeper's business here. */
	const char *worker_env[32];
	struct e2e_fixture *f = *state;
	struct e2e_stack *s = &f->stack;
	const struct e2e_opts opts = {
	    .name = "e2e_restart",
	    .partitions = E2E_PARTITIONS,
	    .private_kafka = true,
	    .ingress_env = ingress_env,
	    .worker_env = worker_env,
	};
	struct e2e_load *load = calloc(1, sizeof *load);
	struct e2e_port_watch *watch = calloc(1, sizeof *watch);
	struct e2e_client *clients = load ? load->clients : NULL;
	struct e2e_outage o;
	struct e2e_tally t;
	int n = 0, total = 0;
	size_t copies, repeated;

	if (!load || !watch)
		fail_msg("e2e: out of memory");
	if (!ts_broker_kafka_mode()) {
		print_message("e2e: Kafka only (CALLPIPE_TEST_BROKER=kafka)\n");
		skip();
	}
	for (const char *const *e = e2e_worker_env_fast; *e && n < 30; e++)
		worker_env[n++] = *e;
	worker_env[n++] = "DIALER_SWEEPER=false";
	worker_env[n] = NULL;

	e2e_stack_start(s, &opts);
	e2e_group_wait_settled(s, "transcriber", 2 * E2E_PARTITIONS, 30000);
	e2e_seed_calls(s, clients);
	atomic_init(&load->stop, false);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (int i = 0; i < E2E_CLIENTS; i++) {
		clients[i].index = i;
		snprintf(clients[i].url, sizeof clients[i].url,
		         "%s/webhooks/elevenlabs/transcription", s->ingress_url);
		snprintf(clients[i].secret, sizeof clients[i].secret, "%s", s->secret);
		clients[i].stop = &load->stop;
		if (pthread_create(&clients[i].thread, NULL, e2e_client_run, &clients[i]))
			fail_msg("e2e: pthread_create failed");
	}

	ts_sleep_ms(E2E_WARMUP_MS);
	o.kill_ms = e2e_wall_ms();
	ts_broker_kill(&s->broker);
	o.killed_ms = e2e_wall_ms();
	e2e_port_watch_start(watch, s->broker.bootstrap);
	print_message("e2e: broker killed (-9) under load (gone %.2f s after the kill began)\n",
	              (o.killed_ms - o.kill_ms) / 1e3);
	ts_sleep_ms(E2E_DOWN_MS);
	o.restart_ms = e2e_wall_ms();
	ts_broker_restart(&s->broker);
	o.back_ms = e2e_wall_ms();
	pthread_join(watch->thread, NULL);
	o.up_ms = watch->up_ms;
	if (o.up_ms < 0)
		fail_msg("e2e: the restarted broker's port never opened");
	print_message("e2e: broker restarted on its data: down %.1f s until its port opened "
	              "(%.1f s into the restart), ready %.1f s after the kill\n",
	              (o.up_ms - o.killed_ms) / 1e3, (o.up_ms - o.restart_ms) / 1e3,
	              (o.back_ms - o.killed_ms) / 1e3);
	ts_sleep_ms(E2E_AFTER_MS);
	atomic_store(&load->stop, true);
	for (int i = 0; i < E2E_CLIENTS; i++)
		pthread_join(clients[i].thread, NULL);
	for (int i = 0; i < E2E_CLIENTS; i++) {
		if (clients[i].error[0]) {
			e2e_stack_dump_logs(s, 15);
			fail_msg("e2e: client %d: %s", i, clients[i].error);
		}
		total += clients[i].nlines;
	}

	e2e_write_attempts(clients, o.kill_ms);
	e2e_tally(clients, &o, &t);
	print_message("e2e: %d webhooks in %d attempts: %d answered 200, %d answered 503 (%d "
	              "without Retry-After, %d with another value than %d); cut by the kill: %d "
	              "(%d answered 200, acknowledged before it); answered while the broker was "
	              "down: %d x 503, %d x 200; first 200 %.2f s after the restart began; after "
	              "it was back %d x 200, %d x 503\n",
	              total, t.attempts, t.ok, t.refused, t.no_retry_after, t.bad_retry_after,
	              E2E_RETRY_AFTER_S, t.cut, t.cut_ok, t.down_refused, t.down_ok,
	              (t.first_ok_after_ms - o.restart_ms) / 1e3, t.ok_after, t.refused_after);
	assert_int_equal(t.other, 0);
	assert_true(t.cut - t.cut_ok > 0);     /* under load: the kill left requests waiting */
	assert_int_equal(t.down_ok, 0);        /* never 200 while the broker is down */
	assert_true(t.down_refused > 0);       /* the outage was real and seen */
	assert_int_equal(t.no_retry_after, 0); /* every 503 with Retry-After */
	assert_int_equal(t.bad_retry_after, 0);
	assert_true(t.ok_after > 0); /* the ingress produces again */
	assert_int_equal(t.ok, total);

	e2e_check_stored(s, clients, total);
	copies = e2e_topic_copies(s, &repeated);
	print_message("e2e: all %d lines stored once each, in posting order, none dead-lettered "
	              "(the topic holds %zu messages: %zu repeat an event_id)\n",
	              total, copies, repeated);
	assert_true(copies - repeated == (size_t)total);
	for (int i = 0; i < E2E_CLIENTS; i++) {
		free(clients[i].attempts);
		free(clients[i].event_ids);
	}
	free(watch);
	free(load);
	e2e_stack_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_e2e_kafka_broker_restart, e2e_setup, e2e_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
