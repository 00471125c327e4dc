/* test_transcriber_store: the transcription store against real Postgres: the two-step lookup,
 * sequence numbers (first 1, then max+1, per conversation), idempotent event ids, late lines
 * placed by offset, reconciliation appends, and two concurrent writers on one conversation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tsupport.h"

#include "db.h"
#include "store_calls.h"
#include "store_transcriptions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	char schema[64];
	struct db *db;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	ts_pg_schema_new("tr_store", true, f->schema, sizeof f->schema);
	f->db = ts_pg_db_open(f->schema);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	db_close(f->db);
	ts_pg_schema_drop(f->schema);
	free(f);
	return 0;
}

static void call(struct db *db, const char *sid, const char *conv, const char *failed)
{
	bool created, changed;

	assert_int_equal(store_call_insert(db, sid, "d", NULL, &created), 0);
	if (conv)
		assert_int_equal(store_call_set_conversation(db, sid, conv, &changed), 0);
	if (failed)
		assert_int_equal(store_call_set_failed(db, sid, failed, &changed), 0);
}

/* Writes lines in one locked transaction, as the transcriber does. */
static void write_lines(struct db *db, const struct store_tx_line *lines, size_t n,
                        struct store_tx_result *res)
{
	const char *sids[16];

	for (size_t i = 0; i < n; i++)
		sids[i] = lines[i].call_sid;
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(store_transcription_lock_calls(db, sids, n), 0);
	if (store_transcription_insert_batch(db, lines, n, STORE_TX_CHECK_EVENTS, res) < 0)
		fail_msg("insert_batch: %s", db_errmsg(db));
	assert_int_equal(db_commit(db), 0);
}

static void test_transcriber_store_lookup_and_sequence(void **state)
{
	struct fixture *f = *state;
	struct store_call c;
	bool found;
	struct store_tx_result r[5];
	struct store_tx_line lines[5] = {
	    {"EL_ok", "agent", "one", "ev-1", 0, 10},   {"EL_nobody", "agent", "x", "ev-2", 0, 11},
	    {"EL_dialing", "user", "x", "ev-3", 1, 12}, {"EL_failed", "user", "x", "ev-4", 1, 13},
	    {"EL_ok", "user", "two", "ev-5", 0, 14},
	};

	call(f->db, "EL_ok", "conv_ok", NULL);
	call(f->db, "EL_dialing", NULL, NULL);
	call(f->db, "EL_failed", NULL, "api refused");

	/* lookup returns the conversation_id; NULL conversation_id; unknown call_sid */
	assert_int_equal(store_call_get(f->db, "EL_ok", &c, &found), 0);
	assert_true(found && c.has_conversation_id);
	assert_string_equal(c.conversation_id, "conv_ok");
	assert_int_equal(store_call_get(f->db, "EL_dialing", &c, &found), 0);
	assert_true(found && !c.has_conversation_id);
	assert_int_equal(store_call_get(f->db, "EL_nobody", &c, &found), 0);
	assert_false(found);

	write_lines(f->db, lines, 5, r);
	/* first line gets sequence 1, the next one 2; save returns id and sequence */
	assert_int_equal(r[0].state, STORE_TX_INSERTED);
	assert_int_equal(r[0].sequence_number, 1);
	assert_true(r[0].id > 0);
	assert_string_equal(r[0].conversation_id, "conv_ok");
	assert_int_equal(r[4].state, STORE_TX_INSERTED);
	assert_int_equal(r[4].sequence_number, 2);
	assert_true(r[4].id > r[0].id);
	assert_int_equal(r[1].state, STORE_TX_UNKNOWN_CALL);
	assert_int_equal(r[2].state, STORE_TX_NO_CONVERSATION);
	assert_int_equal(r[3].state, STORE_TX_CALL_FAILED);

	/* next gets max+1, in a later transaction */
	lines[0] = (struct store_tx_line){"EL_ok", "agent", "three", "ev-6", 0, 15};
	write_lines(f->db, lines, 1, r);
	assert_int_equal(r[0].state, STORE_TX_INSERTED);
	assert_int_equal(r[0].sequence_number, 3);

	/* the same events again: present, nothing written */
	lines[0] = (struct store_tx_line){"EL_ok", "agent", "one", "ev-1", 0, 10};
	lines[1] = (struct store_tx_line){"EL_ok", "agent", "three", "ev-6", 0, 15};
	write_lines(f->db, lines, 2, r);
	assert_int_equal(r[0].state, STORE_TX_PRESENT);
	assert_int_equal(r[1].state, STORE_TX_PRESENT);
	assert_int_equal(ts_pg_query_ll(f->schema, "SELECT count(*) FROM call_transcriptions"), 3);
	assert_int_equal(ts_pg_query_ll(f->schema, "SELECT max(sequence_number) FROM "
	                                           "call_transcriptions WHERE conversation_id = "
	                                           "'conv_ok'"),
	                 3);
}

static void test_transcriber_store_two_conversations_in_one_batch(void **state)
{
	struct fixture *f = *state;
	struct store_tx_result r[4];
	struct store_tx_line lines[4] = {
	    {"EL_a", "agent", "a1", "a-1", 2, 1},
	    {"EL_b", "agent", "b1", "b-1", 3, 1},
	    {"EL_a", "user", "a2", "a-2", 2, 2},
	    {"EL_b", "user", "b2", "b-2", 3, 2},
	};

	call(f->db, "EL_a", "conv_a", NULL);
	call(f->db, "EL_b", "conv_b", NULL);
	write_lines(f->db, lines, 4, r);
	assert_int_equal(r[0].sequence_number, 1);
	assert_int_equal(r[1].sequence_number, 1);
	assert_int_equal(r[2].sequence_number, 2);
	assert_int_equal(r[3].sequence_number, 2);
}

/* STORE_TX_ASSUME_NEW: new events are written as with the check; a stored one comes back as a
 * late line (it has an offset) or fails the whole statement (it has none: nothing of it is
 * written), told apart from other failures. */
static void test_transcriber_store_assume_new(void **state)
{
	struct fixture *f = *state;
	struct store_tx_result r[3];
	struct store_tx_line lines[3] = {
	    {"EL_new", "agent", "n1", "new-1", 6, 1},
	    {"EL_new", "user", "n2", "new-2", 6, 2},
	    {"EL_new", "agent", "n3", "new-3", 6, 3},
	};
	struct store_tx_line bare[2] = {
	    {"EL_new", "agent", "b1", "bare-1", -1, -1},
	    {"EL_new", "user", "b2", "bare-2", -1, -1},
	};
	const char *sid = "EL_new";

	call(f->db, "EL_new", "conv_new", NULL);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(store_transcription_lock_calls(f->db, &sid, 1), 0);
	if (store_transcription_insert_batch(f->db, lines, 2, STORE_TX_ASSUME_NEW, r) < 0)
		fail_msg("insert_batch: %s", db_errmsg(f->db));
	assert_int_equal(r[0].state, STORE_TX_INSERTED);
	assert_int_equal(r[0].sequence_number, 1);
	assert_int_equal(r[1].state, STORE_TX_INSERTED);
	assert_int_equal(r[1].sequence_number, 2);
	/* a redelivery (not newer than the stored lines) is a late line, not written */
	if (store_transcription_insert_batch(f->db, &lines[1], 2, STORE_TX_ASSUME_NEW, r) < 0)
		fail_msg("insert_batch: %s", db_errmsg(f->db));
	assert_int_equal(r[0].state, STORE_TX_OUT_OF_ORDER);
	assert_int_equal(r[1].state, STORE_TX_INSERTED);
	assert_int_equal(r[1].sequence_number, 3);
	if (store_transcription_insert_batch(f->db, bare, 1, STORE_TX_ASSUME_NEW, r) < 0)
		fail_msg("insert_batch: %s", db_errmsg(f->db));
	assert_int_equal(r[0].sequence_number, 4);
	assert_int_equal(db_commit(f->db), 0);

	/* a stored event without an offset fails the statement, saying why; nothing is written */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(store_transcription_lock_calls(f->db, &sid, 1), 0);
	assert_int_equal(store_transcription_insert_batch(f->db, bare, 2, STORE_TX_ASSUME_NEW, r),
	                 -1);
	assert_true(store_transcription_was_stored(f->db));
	db_rollback(f->db);
	assert_int_equal(ts_pg_query_ll(f->schema, "SELECT count(*) FROM call_transcriptions WHERE "
	                                           "conversation_id = 'conv_new'"),
	                 4);
	/* checked, the same lines: bare-1 present, bare-2 appended as 5 */
	write_lines(f->db, bare, 2, r);
	assert_int_equal(r[0].state, STORE_TX_PRESENT);
	assert_int_equal(r[1].state, STORE_TX_INSERTED);
	assert_int_equal(r[1].sequence_number, 5);

	/* any other failure is not a stored event (a speaker too long for its column: 22001) */
	lines[0] = (struct store_tx_line){"EL_new", "a speaker far too long", "n4", "new-4", 6, 4};
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(store_transcription_insert_batch(f->db, lines, 1, STORE_TX_ASSUME_NEW, r),
	                 -1);
	assert_false(store_transcription_was_stored(f->db));
	db_rollback(f->db);
}

static void list(struct db *db, const char *conv, char *out, size_t size);

/* The pipelined start of a round: BEGIN, the locks and the insert in one round trip, on a fresh
 * connection (both statements prepared inside the pipeline), then again; the lock is held until
 * commit; a failing pipeline leaves the connection usable for the next one. */
static void test_transcriber_store_begin_write(void **state)
{
	struct fixture *f = *state;
	struct store_tx_result r[2];
	struct store_tx_line lines[2] = {
	    {"EL_pipe", "agent", "p1", "pipe-1", 7, 1},
	    {"EL_pipe", "user", "p2", "pipe-2", 7, 2},
	};
	struct store_tx_line bare = {"EL_pipe", "agent", "p0", "pipe-0", -1, -1};
	const char *sid = "EL_pipe";
	struct db *db = ts_pg_db_open(f->schema), *other = ts_pg_db_open(f->schema);
	char got[512];

	call(f->db, "EL_pipe", "conv_pipe", NULL);
	if (store_transcription_begin_write(db, &sid, 1, lines, 1, STORE_TX_ASSUME_NEW, r, NULL,
	                                    NULL) < 0)
		fail_msg("begin_write: %s", db_errmsg(db));
	assert_int_equal(r[0].state, STORE_TX_INSERTED);
	assert_int_equal(r[0].sequence_number, 1);
	/* the call's lock is held: another writer cannot take it until commit */
	assert_int_equal(ts_pg_query_ll(f->schema,
	                                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
	                                "AND classid = 1951560417 AND granted"),
	                 1);
	assert_int_equal(db_commit(db), 0);
	assert_int_equal(ts_pg_query_ll(f->schema, "SELECT count(*) FROM pg_locks WHERE locktype = "
	                                           "'advisory' AND classid = 1951560417"),
	                 0);

	/* one without an offset and the second line: numbered by offset, the one without last */
	lines[0] = bare;
	if (store_transcription_begin_write(db, &sid, 1, lines, 2, STORE_TX_ASSUME_NEW, r, NULL,
	                                    NULL) < 0)
		fail_msg("begin_write: %s", db_errmsg(db));
	assert_int_equal(db_commit(db), 0);
	list(db, "conv_pipe", got, sizeof got);
	assert_string_equal(got, "1:p1,2:p2,3:p0");

	/* a stored event without an offset fails the pipeline; the connection goes on */
	assert_int_equal(store_transcription_begin_write(db, &sid, 1, &bare, 1, STORE_TX_ASSUME_NEW,
	                                                 r, NULL, NULL),
	                 -1);
	assert_true(store_transcription_was_stored(db));
	db_rollback(db);
	assert_int_equal(store_transcription_begin_write(db, &sid, 1, &bare, 1,
	                                                 STORE_TX_CHECK_EVENTS, r, NULL, NULL),
	                 0);
	assert_int_equal(r[0].state, STORE_TX_PRESENT);
	assert_int_equal(db_commit(db), 0);
	/* locks only (no lines) */
	assert_int_equal(store_transcription_begin_write(other, &sid, 1, NULL, 0,
	                                                 STORE_TX_CHECK_EVENTS, r, NULL, NULL),
	                 0);
	assert_int_equal(db_commit(other), 0);
	db_close(other);
	db_close(db);
}

/* A whole round in one round trip (store_transcription_write): committed with the results; a late
 * line (older than a stored line of its partition) leaves the round unwritten, so it can be
 * written again checking each event; a stored event fails it and nothing is committed; the
 * connection goes on. */
static void test_transcriber_store_write_whole(void **state)
{
	struct fixture *f = *state;
	struct store_tx_result r[3];
	struct store_tx_line lines[3] = {
	    {"EL_whole", "agent", "w1", "whole-1", 3, 10},
	    {"EL_whole", "user", "w2", "whole-2", 3, 11},
	    {"EL_whole", "agent", "w0", "whole-0", 3, 5},
	};
	const char *sid = "EL_whole";
	struct db *db = ts_pg_db_open(f->schema);
	char got[512];

	call(f->db, "EL_whole", "conv_whole", NULL);
	if (store_transcription_write(db, &sid, 1, lines, 2, r, NULL, NULL) < 0)
		fail_msg("write: %s", db_errmsg(db));
	assert_int_equal(r[0].state, STORE_TX_INSERTED);
	assert_int_equal(r[1].state, STORE_TX_INSERTED);
	assert_int_equal(r[1].sequence_number, 2);
	/* committed: visible to another connection, no lock left */
	assert_int_equal(ts_pg_query_ll(f->schema, "SELECT count(*) FROM call_transcriptions t "
	                                           "WHERE t.conversation_id = 'conv_whole'"),
	                 2);
	assert_int_equal(ts_pg_query_ll(f->schema, "SELECT count(*) FROM pg_locks WHERE locktype = "
	                                           "'advisory' AND classid = 1951560417"),
	                 0);

	/* a new line beside a late one: the round writes nothing */
	lines[0] = (struct store_tx_line){"EL_whole", "user", "w3", "whole-3", 3, 12};
	lines[1] = lines[2];
	if (store_transcription_write(db, &sid, 1, lines, 2, r, NULL, NULL) < 0)
		fail_msg("write: %s", db_errmsg(db));
	assert_int_equal(r[1].state, STORE_TX_OUT_OF_ORDER);
	assert_int_equal(r[0].state, STORE_TX_OUT_OF_ORDER);
	list(db, "conv_whole", got, sizeof got);
	assert_string_equal(got, "1:w1,2:w2");

	/* a stored event without an offset fails the round: nothing committed */
	lines[1] = (struct store_tx_line){"EL_whole", "agent", "w1", "whole-1", -1, -1};
	assert_int_equal(store_transcription_write(db, &sid, 1, lines, 2, r, NULL, NULL), -1);
	assert_true(store_transcription_was_stored(db));
	db_rollback(db);
	list(db, "conv_whole", got, sizeof got);
	assert_string_equal(got, "1:w1,2:w2");
	if (store_transcription_write(db, &sid, 1, lines, 1, r, NULL, NULL) < 0)
		fail_msg("write: %s", db_errmsg(db));
	assert_int_equal(r[0].state, STORE_TX_INSERTED);
	assert_int_equal(r[0].sequence_number, 3);
	db_close(db);
}

struct collect {
	char text[512];
};

static int collect_line(void *opaque, const struct store_line *line)
{
	struct collect *c = opaque;
	size_t len = strlen(c->text);

	snprintf(c->text + len, sizeof c->text - len, "%s%d:%s", len ? "," : "",
	         line->sequence_number, line->message);
	return 0;
}

static void list(struct db *db, const char *conv, char *out, size_t size)
{
	struct collect c = {""};

	assert_int_equal(store_transcription_list(db, conv, collect_line, &c), 0);
	snprintf(out, size, "%s", c.text);
}

static void place(struct db *db, const char *conv, const struct store_tx_line *line,
                  enum store_tx_state expect)
{
	struct store_tx_result r;

	assert_int_equal(db_begin(db), 0);
	assert_int_equal(store_transcription_lock_calls(db, &line->call_sid, 1), 0);
	if (store_transcription_insert_placed(db, conv, line, &r) < 0)
		fail_msg("insert_placed: %s", db_errmsg(db));
	assert_int_equal(db_commit(db), 0);
	assert_int_equal(r.state, expect);
}

static void test_transcriber_store_late_lines_take_their_place(void **state)
{
	struct fixture *f = *state;
	struct store_tx_result r[4];
	struct store_tx_line lines[4] = {
	    {"EL_late", "agent", "L0", "late-0", 4, 100},
	    {"EL_late", "agent", "L2", "late-2", 4, 102},
	    {"EL_late", "agent", "L3", "late-3", 4, 103},
	};
	struct store_tx_line l1 = {"EL_late", "user", "L1", "late-1", 4, 101};
	char got[512];

	call(f->db, "EL_late", "conv_late", NULL);
	write_lines(f->db, lines, 3, r);
	/* a line older than the stored ones is not appended by the batch... */
	write_lines(f->db, &l1, 1, r);
	assert_int_equal(r[0].state, STORE_TX_OUT_OF_ORDER);
	/* ...but placed after its predecessor, moving the later lines up */
	place(f->db, "conv_late", &l1, STORE_TX_INSERTED);
	list(f->db, "conv_late", got, sizeof got);
	assert_string_equal(got, "1:L0,2:L1,3:L2,4:L3");
	place(f->db, "conv_late", &l1, STORE_TX_PRESENT);

	/* a deleted window comes back in its own numbers */
	ts_pg_exec(f->schema, "DELETE FROM call_transcriptions WHERE event_id IN ('late-1', "
	                      "'late-2')");
	place(f->db, "conv_late", &l1, STORE_TX_INSERTED);
	place(f->db, "conv_late", &lines[1], STORE_TX_INSERTED);
	list(f->db, "conv_late", got, sizeof got);
	assert_string_equal(got, "1:L0,2:L1,3:L2,4:L3");
}

static void test_transcriber_store_reconciled_copies(void **state)
{
	struct fixture *f = *state;
	struct store_tx_result r[2];
	struct store_tx_line late = {"EL_rec", "agent", "Bye.", "ev-late", 5, 9};
	bool inserted;
	char got[512];

	call(f->db, "EL_rec", "conv_rec", NULL);
	/* the reconciliation runs in the transaction that completes the call (tr_postcall_apply);
	 * the batch insert looks for copies only on calls no longer in progress */
	ts_pg_exec(f->schema, "UPDATE calls SET status = 'completed' WHERE call_sid = 'EL_rec'");
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(store_transcription_append(f->db, "conv_rec", "agent", "Hello.",
	                                            "postcall:conv_rec:0", &inserted),
	                 0);
	assert_true(inserted);
	assert_int_equal(store_transcription_append(f->db, "conv_rec", "agent", "Bye.",
	                                            "postcall:conv_rec:2", &inserted),
	                 0);
	assert_int_equal(store_transcription_append(f->db, "conv_rec", "agent", "Bye.",
	                                            "postcall:conv_rec:2", &inserted),
	                 0);
	assert_false(inserted);
	assert_int_equal(db_commit(f->db), 0);
	/* a per-turn line arriving after the reconciliation copied it: not written again */
	write_lines(f->db, &late, 1, r);
	assert_int_equal(r[0].state, STORE_TX_RECONCILED);
	list(f->db, "conv_rec", got, sizeof got);
	assert_string_equal(got, "1:Hello.,2:Bye.");
}

/* Two writers (own connections) on one conversation with overlapping events, one statement by
 * statement, the other as the service writes (pipelined, assuming new events first): every event
 * once, numbers 1..N without a gap or a duplicate. */
struct writer {
	const char *schema;
	int first, last;
	int failures;
	bool pipelined; /* as the service: one round trip assuming new, then checked if not */
	int rewritten;  /* rounds written again checking each event */
};

/* The service's round: BEGIN, lock and insert assuming the events are new in one round trip; a
 * stored event (a failure or a late line) rolls back and writes again checking each event. */
static int write_pipelined(struct db *db, struct writer *w, const char *const *sids,
                           const struct store_tx_line *lines, size_t n, struct store_tx_result *r)
{
	bool late = false;

	if (store_transcription_begin_write(db, sids, n, lines, n, STORE_TX_ASSUME_NEW, r, NULL,
	                                    NULL) == 0) {
		for (size_t i = 0; i < n; i++)
			late = late || r[i].state == STORE_TX_OUT_OF_ORDER;
		if (!late)
			return db_commit(db);
	} else if (!store_transcription_was_stored(db)) {
		return -1;
	}
	db_rollback(db);
	w->rewritten++;
	if (store_transcription_begin_write(db, sids, n, lines, n, STORE_TX_CHECK_EVENTS, r, NULL,
	                                    NULL) < 0)
		return -1;
	return db_commit(db);
}

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	struct db *db = ts_pg_db_open(w->schema);
	char ev[4][32], msg[4][32];

	for (int i = w->first; i <= w->last; i += 4) {
		struct store_tx_line lines[4];
		struct store_tx_result r[4];
		const char *sids[4];
		size_t n = 0;

		for (int k = i; k < i + 4 && k <= w->last; k++, n++) {
			snprintf(ev[n], sizeof ev[n], "conc-%d", k);
			snprintf(msg[n], sizeof msg[n], "m%d", k);
			lines[n] =
			    (struct store_tx_line){"EL_conc", "agent", msg[n], ev[n], -1, -1};
			sids[n] = "EL_conc";
		}
		if (w->pipelined
		        ? write_pipelined(db, w, sids, lines, n, r) < 0
		        : (db_begin(db) < 0 || store_transcription_lock_calls(db, sids, n) < 0 ||
		           store_transcription_insert_batch(db, lines, n, STORE_TX_CHECK_EVENTS,
		                                            r) < 0 ||
		           db_commit(db) < 0)) {
			db_rollback(db);
			w->failures++;
		}
	}
	db_close(db);
	return NULL;
}

static void test_transcriber_store_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	struct writer a = {f->schema, 0, 299, 0, false, 0}, b = {f->schema, 100, 399, 0, true, 0};
	pthread_t ta, tb;

	call(f->db, "EL_conc", "conv_conc", NULL);
	assert_int_equal(pthread_create(&ta, NULL, writer_run, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, writer_run, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.failures + b.failures, 0);
	assert_int_equal(ts_pg_query_ll(f->schema, "SELECT count(*) FROM call_transcriptions "
	                                           "WHERE conversation_id = 'conv_conc'"),
	                 400);
	assert_int_equal(ts_pg_query_ll(f->schema,
	                                "SELECT count(DISTINCT sequence_number) FROM "
	                                "call_transcriptions WHERE conversation_id = 'conv_conc' "
	                                "AND sequence_number BETWEEN 1 AND 400"),
	                 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_store_lookup_and_sequence),
	    cmocka_unit_test(test_transcriber_store_two_conversations_in_one_batch),
	    cmocka_unit_test(test_transcriber_store_assume_new),
	    cmocka_unit_test(test_transcriber_store_begin_write),
	    cmocka_unit_test(test_transcriber_store_write_whole),
	    cmocka_unit_test(test_transcriber_store_late_lines_take_their_place),
	    cmocka_unit_test(test_transcriber_store_reconciled_copies),
	    cmocka_unit_test(test_transcriber_store_concurrent_writers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
