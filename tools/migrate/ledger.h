/* ledger: the migrator's own state in the target schema: the advisory lock that serialises
 * migrators, the schema_migrations table, and running one migration script. */
#ifndef CALLPIPE_MIGRATE_LEDGER_H
#define CALLPIPE_MIGRATE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct db;
struct mig_file;

/* One row of schema_migrations. */
struct ledger_row {
	int version;
	char name[128];
	char checksum[65];
	char applied_at[40]; /* ISO-8601 UTC */
};

/* Takes the session advisory lock keyed by hashtextextended('callpipe.migrate:' || schema, 0),
 * polling so that signals are honoured; prints one "waiting" line to out while another session
 * holds it. wait_s 0 = wait forever. Returns 0 held, -1 timeout/shutdown/db error (errstr). */
__attribute__((warn_unused_result)) int ledger_lock(struct db *db, long wait_s, FILE *out,
                                                    char *errstr, size_t errstr_size);
void ledger_unlock(struct db *db); /* best effort */

/* Creates the schema and schema_migrations when missing. Returns 0 or -1 (db error). */
__attribute__((warn_unused_result)) int ledger_bootstrap(struct db *db);

/* Loads schema_migrations ordered by version into a malloc'd array (caller frees; NULL and 0 when
 * the table does not exist yet). Returns 0 or -1 (db error). */
__attribute__((warn_unused_result)) int ledger_load(struct db *db, struct ledger_row **rows,
                                                    size_t *n);

/* Inserts / deletes the row of f inside the caller's transaction. Returns 0 or -1. */
__attribute__((warn_unused_result)) int ledger_record(struct db *db, const struct mig_file *f);
__attribute__((warn_unused_result)) int ledger_forget(struct db *db, int version);

/* Runs a whole migration file (several statements) on the connection. Returns 0, or -1 with the
 * error (message, detail and hint) in errstr and its SQLSTATE in sqlstate (6 bytes; "" if none). */
__attribute__((warn_unused_result)) int ledger_run_script(struct db *db, const char *sql,
                                                          char *sqlstate, char *errstr,
                                                          size_t errstr_size);

#endif
