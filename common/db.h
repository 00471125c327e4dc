/* db: one libpq connection in a configurable schema, with reconnect, parameterised exec,
 * transactions and error classification (transient: retry; permanent: don't). Not thread-safe:
 * one struct db per thread. */
#ifndef CALLPIPE_DB_H
#define CALLPIPE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct db;

enum db_errclass {
	DB_ERR_NONE = 0,
	DB_ERR_TRANSIENT, /* connection lost/refused, serialization failure, deadlock, admin
	                     shutdown, too many connections, query canceled by timeout: retry later
	                   */
	DB_ERR_PERMANENT, /* constraint violation, syntax, missing table, bad data: retrying won't
	                     help */
};

/* Connects to url (libpq URL or conninfo) and sets search_path to schema (validated as an
 * identifier). With no server reachable it still returns a handle (db_ok() false) unless the
 * url or schema is invalid: NULL and errstr then. Caller owns; db_close frees (NULL ok). */
struct db *db_open(const char *url, const char *schema, char *errstr, size_t errstr_size);
void db_close(struct db *db);

/* The oldest migration the statements of this build's common/store_*.c work on (008 added
 * calls.dialled_at, which store_calls writes). */
#define DB_SCHEMA_MIN_VERSION 8

/* From now on a connection counts only when the schema's newest applied migration (its
 * schema_migrations ledger, which migrate keeps) is at least version: below it, or with no
 * ledger, every (re)connect fails as transient with "schema S is at migration V; this build needs
 * N or later: run migrate up", so callers wait as for a database that is down (not ready, no
 * work) until the schema is migrated. Checks the current connection at once. */
void db_require_version(struct db *db, long version);

/* Returns 0 when connected (reconnecting if the connection is bad), -1 otherwise (transient). */
int db_ensure(struct db *db);
bool db_ok(const struct db *db);

/* Asks the server to answer a trivial statement, reconnecting first if the connection is bad:
 * the readiness check of an idle worker. Returns 0 when it answered, -1 otherwise (the error is
 * kept for db_errmsg()). */
__attribute__((warn_unused_result)) int db_ping(struct db *db);

/* Runs a parameterised statement (text params, NULL = SQL NULL). Returns the PGresult when its
 * status is PGRES_TUPLES_OK or PGRES_COMMAND_OK (caller PQclears), NULL on error with the error
 * class and message kept for db_errclass()/db_errmsg()/db_sqlstate(). A lost connection is
 * marked so the next db_ensure() reconnects. */
PGresult *db_exec(struct db *db, const char *sql, int nparams, const char *const *params);

/* A statement run by name and prepared once per connection: the server parses and plans it once
 * instead of on every run. name is a static string, one per SQL text in the process. */
struct db_stmt {
	const char *name;
	const char *sql;
	int nparams;
};

/* Like db_exec, for stmt (prepared on this connection first when it is not yet). */
PGresult *db_exec_stmt(struct db *db, const struct db_stmt *stmt, const char *const *params);

/* Work to do while the server runs a pipeline: called between looks at the connection until the
 * results are in. Each call should take well under a millisecond; it returns false when it had
 * nothing to do (the wait then sleeps on the connection). */
typedef bool db_idle_fn(void *opaque);

/* BEGIN and stmts[0..n) with params[i], sent together in libpq pipeline mode (one round trip),
 * each prepared on this connection first when it is not yet; idle (may be NULL) runs while the
 * server works. Returns 0 inside the transaction, res[i] the result of stmts[i] (caller
 * PQclears each); -1 with the error of the first statement that failed, res all NULL, and the
 * transaction to be rolled back (db_rollback). */
__attribute__((warn_unused_result)) int db_begin_pipeline(struct db *db,
                                                          const struct db_stmt *const *stmts,
                                                          const char *const *const *params,
                                                          size_t n, PGresult **res,
                                                          db_idle_fn *idle, void *opaque);

/* A whole transaction in one round trip: BEGIN, stmts[0..n) and COMMIT, as db_begin_pipeline.
 * Returns 0 committed, res[i] the result of stmts[i] (caller PQclears each); -1 with the error
 * of the first statement that failed (then nothing was committed, unless the connection was lost
 * during the COMMIT: then it is unknown) and res all NULL: call db_rollback. */
__attribute__((warn_unused_result)) int db_write_pipeline(struct db *db,
                                                          const struct db_stmt *const *stmts,
                                                          const char *const *const *params,
                                                          size_t n, PGresult **res,
                                                          db_idle_fn *idle, void *opaque);

/* Like db_exec for statements whose result is not needed. Returns 0 or -1. */
__attribute__((warn_unused_result)) int db_cmd(struct db *db, const char *sql, int nparams,
                                               const char *const *params);

__attribute__((warn_unused_result)) int db_begin(struct db *db);
__attribute__((warn_unused_result)) int db_commit(struct db *db);
void db_rollback(struct db *db); /* best effort; safe outside a transaction */

enum db_errclass db_errclass(const struct db *db);
const char *db_errmsg(const struct db *db);   /* last error message; "" if none */
const char *db_sqlstate(const struct db *db); /* last SQLSTATE, e.g. "23505"; "" if none */
/* The constraint the last failed statement violated (e.g. a unique constraint's name with
 * SQLSTATE 23505); "" if none. */
const char *db_constraint(const struct db *db);
const char *db_schema(const struct db *db);

/* The raw connection for pipeline mode or COPY; NULL when not connected. Borrowed. */
PGconn *db_conn(struct db *db);

/* Classifies a SQLSTATE (NULL = connection-level failure: transient). */
enum db_errclass db_classify_sqlstate(const char *sqlstate);

/* Blocks until connected or shutdown is requested, with backoff; logs each failure once per
 * attempt. Returns 0 connected, -1 on shutdown. */
int db_wait_connected(struct db *db, long max_backoff_ms);

#endif
