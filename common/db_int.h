/* db_int: what db.c (the connection) and db_stmt.c (prepared statements, pipelines) share; not
 * for services. */
#ifndef CALLPIPE_DB_INT_H
#define CALLPIPE_DB_INT_H

#include "db.h"

#include <stdbool.h>
#include <stddef.h>

#define DB_SCHEMA_MAX   63
#define DB_PREPARED_MAX 32 /* distinct db_stmt names per connection */

struct db {
	PGconn *conn;
	char *url;
	char schema[DB_SCHEMA_MAX + 1];
	bool broken;        /* the connection must be re-established before use */
	bool in_tx;         /* between db_begin and db_commit/db_rollback */
	long need_version;  /* db_require_version's minimum (0: none) */
	char gate_msg[300]; /* why the last connect was refused by that check ("" if it was not) */
	enum db_errclass errclass;
	char sqlstate[6];
	char constraint[64]; /* the constraint a failed statement violated ("" if none) */
	char errmsg[1024];
	/* names of the db_stmt prepared on this connection (static strings; reset on connect) */
	const char *prepared[DB_PREPARED_MAX];
	size_t nprepared;
};

void db_clear_error(struct db *db);
void db_set_error(struct db *db, enum db_errclass cls, const char *sqlstate, const char *msg);
/* Records the error of a failed result (res may be NULL) and marks a lost connection. */
void db_result_error(struct db *db, const PGresult *res);
/* Before a statement: true when connected (the last error cleared); else records 08003. */
bool db_usable(struct db *db);
/* res when its status is TUPLES_OK or COMMAND_OK; else records the error, clears res, NULL. */
PGresult *db_result(struct db *db, PGresult *res);

#endif
