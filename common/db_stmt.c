/* db_stmt: statements prepared once per connection, and a transaction's first statements (or all
 * of a short one, COMMIT included) sent in one round trip (libpq pipeline mode) while the caller
 * does other work. */
#include "db.h"
#include "db_int.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

/* Longest sleep on the connection between looks at the results (signals, timeouts). */
#define DB_WAIT_SLICE_MS 100

static bool db_is_prepared(const struct db *db, const char *name)
{
	for (size_t i = 0; i < db->nprepared; i++)
		if (strcmp(db->prepared[i], name) == 0)
			return true;
	return false;
}

/* Remembers name as prepared on this connection; false when the table is full (the statement is
 * then run unnamed, never prepared twice). */
static bool db_mark_prepared(struct db *db, const char *name)
{
	if (db_is_prepared(db, name))
		return true;
	if (db->nprepared == DB_PREPARED_MAX)
		return false;
	db->prepared[db->nprepared++] = name;
	return true;
}

static bool db_can_prepare(const struct db *db, const char *name)
{
	return db_is_prepared(db, name) || db->nprepared < DB_PREPARED_MAX;
}

PGresult *db_exec_stmt(struct db *db, const struct db_stmt *stmt, const char *const *params)
{
	PGresult *res;

	if (!db_can_prepare(db, stmt->name))
		return db_exec(db, stmt->sql, stmt->nparams, params);
	if (!db_usable(db))
		return NULL;
	if (!db_is_prepared(db, stmt->name)) {
		res =
		    db_result(db, PQprepare(db->conn, stmt->name, stmt->sql, stmt->nparams, NULL));
		if (!res)
			return NULL;
		PQclear(res);
		db_mark_prepared(db, stmt->name);
	}
	return db_result(
	    db, PQexecPrepared(db->conn, stmt->name, stmt->nparams, params, NULL, NULL, 0));
}

/* Waits until a result can be read without blocking, running idle meanwhile. Returns 0, or -1
 * when the connection failed (error recorded, marked broken). */
static int db_wait_result(struct db *db, db_idle_fn *idle, void *opaque)
{
	while (PQisBusy(db->conn)) {
		bool worked = idle && idle(opaque);
		struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};

		if (poll(&pfd, 1, worked ? 0 : DB_WAIT_SLICE_MS) < 0 && errno != EINTR)
			goto lost;
		if (!PQconsumeInput(db->conn))
			goto lost;
	}
	return 0;
lost:
	db_set_error(db, DB_ERR_TRANSIENT, NULL, PQerrorMessage(db->conn));
	db->broken = true;
	return -1;
}

/* The next result of the pipeline (NULL between two statements' results, or on a lost
 * connection: db->broken says which). */
static PGresult *db_next_result(struct db *db, db_idle_fn *idle, void *opaque)
{
	if (db_wait_result(db, idle, opaque) < 0)
		return NULL;
	return PQgetResult(db->conn);
}

/* Reads one statement's result and the NULL that ends it. ok: a status that is not an error.
 * The first error is recorded; *failed says one was. Returns the result (caller clears), or
 * NULL on a lost connection. */
static PGresult *db_pipeline_take(struct db *db, db_idle_fn *idle, void *opaque, bool *failed)
{
	PGresult *res = db_next_result(db, idle, opaque), *end;
	ExecStatusType st = PQresultStatus(res);

	if (!res) {
		if (!db->broken)
			db_set_error(db, DB_ERR_TRANSIENT, NULL, PQerrorMessage(db->conn));
		db->broken = true;
		*failed = true;
		return NULL;
	}
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		if (!*failed && st != PGRES_PIPELINE_ABORTED)
			db_result_error(db, res);
		*failed = true;
	}
	end = db_next_result(db, idle, opaque);
	if (end) { /* a statement has one result: this cannot happen */
		PQclear(end);
		db_set_error(db, DB_ERR_TRANSIENT, NULL, "unexpected extra result in a pipeline");
		db->broken = true;
		*failed = true;
	}
	return res;
}

/* Sends BEGIN and the statements (with the prepares they need), COMMIT when commit, and the
 * sync. Returns 0, or -1 (the connection is unusable: error recorded). prepare[i] says a prepare
 * was sent for i. */
static int db_pipeline_send(struct db *db, const struct db_stmt *const *stmts,
                            const char *const *const *params, size_t n, bool commit, bool *prepare)
{
	if (!PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct db_stmt *s = stmts[i];
		bool named = db_can_prepare(db, s->name);

		prepare[i] = named && !db_is_prepared(db, s->name);
		for (size_t k = 0; prepare[i] && k < i; k++)
			if (prepare[k] && stmts[k] == s)
				prepare[i] = false; /* prepared earlier in this pipeline */
		if (prepare[i] && !PQsendPrepare(db->conn, s->name, s->sql, s->nparams, NULL))
			return -1;
		if (named ? !PQsendQueryPrepared(db->conn, s->name, s->nparams, params[i], NULL,
		                                 NULL, 0)
		          : !PQsendQueryParams(db->conn, s->sql, s->nparams, NULL, params[i], NULL,
		                               NULL, 0))
			return -1;
	}
	if (commit && !PQsendQueryParams(db->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
		return -1;
	return PQpipelineSync(db->conn) ? 0 : -1;
}

static int db_pipeline_tx(struct db *db, const struct db_stmt *const *stmts,
                          const char *const *const *params, size_t n, bool commit, PGresult **res,
                          db_idle_fn *idle, void *opaque)
{
	bool prepare[DB_PREPARED_MAX] = {false}, failed = false;
	PGresult *r;

	for (size_t i = 0; i < n; i++)
		res[i] = NULL;
	if (n > DB_PREPARED_MAX) {
		db_set_error(db, DB_ERR_PERMANENT, NULL, "too many statements for one pipeline");
		return -1;
	}
	if (!db_usable(db))
		return -1;
	if (!PQenterPipelineMode(db->conn))
		goto lost;
	db->in_tx = true; /* from here on the caller ends it, commit or rollback */
	if (db_pipeline_send(db, stmts, params, n, commit, prepare) < 0)
		goto lost;
	PQclear(db_pipeline_take(db, idle, opaque, &failed)); /* BEGIN */
	for (size_t i = 0; i < n && !db->broken; i++) {
		if (prepare[i]) {
			r = db_pipeline_take(db, idle, opaque, &failed);
			if (PQresultStatus(r) == PGRES_COMMAND_OK)
				db_mark_prepared(db, stmts[i]->name);
			PQclear(r);
		}
		res[i] = db->broken ? NULL : db_pipeline_take(db, idle, opaque, &failed);
	}
	if (commit && !db->broken) { /* aborted when a statement failed: the caller rolls back */
		r = db_pipeline_take(db, idle, opaque, &failed);
		if (r && !failed && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
			db_set_error(db, DB_ERR_PERMANENT, "25P02",
			             "transaction was aborted by an earlier error and rolled back");
			failed = true;
		}
		PQclear(r);
	}
	if (db->broken)
		goto fail;
	r = db_next_result(db, idle, opaque); /* the sync */
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
		PQclear(r);
		goto lost;
	}
	PQclear(r);
	if (!PQexitPipelineMode(db->conn))
		goto lost;
	if (!failed) {
		db->in_tx = !commit;
		return 0;
	}
	goto fail;
lost:
	if (!db->broken)
		db_set_error(db, DB_ERR_TRANSIENT, NULL, PQerrorMessage(db->conn));
	db->broken = true;
fail:
	for (size_t i = 0; i < n; i++) {
		PQclear(res[i]);
		res[i] = NULL;
	}
	return -1;
}

int db_begin_pipeline(struct db *db, const struct db_stmt *const *stmts,
                      const char *const *const *params, size_t n, PGresult **res, db_idle_fn *idle,
                      void *opaque)
{
	return db_pipeline_tx(db, stmts, params, n, false, res, idle, opaque);
}

int db_write_pipeline(struct db *db, const struct db_stmt *const *stmts,
                      const char *const *const *params, size_t n, PGresult **res, db_idle_fn *idle,
                      void *opaque)
{
	return db_pipeline_tx(db, stmts, params, n, true, res, idle, opaque);
}
