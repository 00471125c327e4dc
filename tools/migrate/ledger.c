/* ledger: advisory lock, schema_migrations bookkeeping and script execution for migrate. */
#include "ledger.h"

#include "db.h"
#include "log.h"
#include "migfiles.h"
#include "shutdown.h"
#include "timeutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEDGER_LOCK_POLL_MS 200

/* The lock key depends on the schema only, so migrators of different schemas never wait for
 * each other. Tests and operators compute the same key in SQL. */
#define LEDGER_LOCK_KEY "hashtextextended('callpipe.migrate:' || $1, 0)"

int ledger_lock(struct db *db, long wait_s, FILE *out, char *errstr, size_t errstr_size)
{
	const char *params[] = {db_schema(db)};
	int64_t start = time_mono_ms();
	bool announced = false;

	for (;;) {
		PGresult *res =
		    db_exec(db, "SELECT pg_try_advisory_lock(" LEDGER_LOCK_KEY ")", 1, params);
		bool got;

		if (!res) {
			snprintf(errstr, errstr_size, "taking the migration lock: %s",
			         db_errmsg(db));
			return -1;
		}
		got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (got) {
			if (announced)
				log_info("migration lock acquired", LOGS("schema", db_schema(db)),
				         LOGI("waited_ms", time_mono_ms() - start));
			return 0;
		}
		if (!announced) {
			fprintf(out,
			        "waiting for the migration lock of schema %s (another migrator "
			        "is running)\n",
			        db_schema(db));
			fflush(out);
			log_info("waiting for the migration lock", LOGS("schema", db_schema(db)));
			announced = true;
		}
		if (wait_s > 0 && time_mono_ms() - start > wait_s * 1000) {
			snprintf(errstr, errstr_size,
			         "gave up waiting for the migration lock of schema %s after %ld s",
			         db_schema(db), wait_s);
			return -1;
		}
		if (shutdown_sleep_ms(LEDGER_LOCK_POLL_MS)) {
			snprintf(errstr, errstr_size,
			         "interrupted while waiting for the migration lock");
			return -1;
		}
	}
}

void ledger_unlock(struct db *db)
{
	const char *params[] = {db_schema(db)};
	PGresult *res = db_exec(db, "SELECT pg_advisory_unlock(" LEDGER_LOCK_KEY ")", 1, params);

	PQclear(res); /* closing the connection releases it anyway */
}

int ledger_bootstrap(struct db *db)
{
	PGconn *conn = db_conn(db);
	char *ident = NULL, *sql = NULL;
	int rc = -1;

	if (!conn || !(ident = PQescapeIdentifier(conn, db_schema(db), strlen(db_schema(db)))))
		goto out;
	/* The one piece of DDL outside migrations/: the ledger cannot be created by a migration. */
	if (asprintf(&sql,
	             "CREATE SCHEMA IF NOT EXISTS %s; "
	             "CREATE TABLE IF NOT EXISTS %s.schema_migrations ("
	             " version integer PRIMARY KEY,"
	             " name text NOT NULL,"
	             " checksum char(64) NOT NULL,"
	             " applied_at timestamptz NOT NULL DEFAULT now())",
	             ident, ident) < 0) {
		sql = NULL;
		goto out;
	}
	{
		char state[6], err[512];
		if (ledger_run_script(db, sql, state, err, sizeof err) < 0) {
			log_error("creating schema_migrations failed", LOGS("error", err),
			          LOGS("sqlstate", state), LOGS("schema", db_schema(db)));
			goto out;
		}
	}
	rc = 0;
out:
	free(sql);
	PQfreemem(ident);
	return rc;
}

int ledger_load(struct db *db, struct ledger_row **rows, size_t *n)
{
	PGresult *res = NULL;
	bool exists;
	int rc = -1;

	*rows = NULL;
	*n = 0;
	res = db_exec(db, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL);
	if (!res)
		goto out;
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	res = NULL;
	if (!exists)
		return 0;
	res = db_exec(db,
	              "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', "
	              "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM schema_migrations ORDER BY version",
	              0, NULL);
	if (!res)
		goto out;
	if (PQntuples(res) > 0) {
		*rows = calloc((size_t)PQntuples(res), sizeof **rows);
		if (!*rows)
			goto out;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct ledger_row *r = &(*rows)[i];

		r->version = atoi(PQgetvalue(res, i, 0));
		snprintf(r->name, sizeof r->name, "%s", PQgetvalue(res, i, 1));
		snprintf(r->checksum, sizeof r->checksum, "%s", PQgetvalue(res, i, 2));
		snprintf(r->applied_at, sizeof r->applied_at, "%s", PQgetvalue(res, i, 3));
	}
	*n = (size_t)PQntuples(res);
	rc = 0;
out:
	PQclear(res);
	return rc;
}

int ledger_record(struct db *db, const struct mig_file *f)
{
	char version[16];
	const char *params[] = {version, f->name, f->checksum};

	snprintf(version, sizeof version, "%d", f->version);
	return db_cmd(db,
	              "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
	              3, params);
}

int ledger_forget(struct db *db, int version)
{
	char v[16];
	const char *params[] = {v};

	snprintf(v, sizeof v, "%d", version);
	return db_cmd(db, "DELETE FROM schema_migrations WHERE version = $1", 1, params);
}

int ledger_run_script(struct db *db, const char *sql, char *sqlstate, char *errstr,
                      size_t errstr_size)
{
	PGconn *conn = db_conn(db);
	PGresult *res;
	ExecStatusType st;
	const char *state, *primary, *detail, *hint;

	sqlstate[0] = '\0';
	if (!conn) {
		snprintf(errstr, errstr_size, "not connected to the database");
		return -1;
	}
	/* The simple query protocol runs every statement of the file; the result is the last. */
	res = PQexec(conn, sql);
	st = PQresultStatus(res);
	if (res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)) {
		PQclear(res);
		return 0;
	}
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	snprintf(sqlstate, 6, "%s", state ? state : "");
	if (primary)
		snprintf(errstr, errstr_size, "%s%s%s%s%s", primary, detail ? "\n  detail: " : "",
		         detail ? detail : "", hint ? "\n  hint: " : "", hint ? hint : "");
	else
		snprintf(errstr, errstr_size, "%s", PQerrorMessage(conn));
	PQclear(res);
	return -1;
}
