/* db: one libpq connection in a configurable schema: connect, reconnect, exec, transactions. */
#include "db.h"
#include "db_int.h"

#include "backoff.h"
#include "log.h"
#include "shutdown.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connection defaults, applied before the caller's url so that the url can override them. */
#define DB_CONNECT_TIMEOUT_S     "5"
#define DB_STATEMENT_TIMEOUT_OPT "-c statement_timeout=30000"

/* Copies src into dst as one line: newlines and tabs become spaces, trailing space trimmed. */
static void db_copy_line(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (; src && *src && n + 1 < size; src++) {
		char c = *src;
		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		if (c == ' ' && (n == 0 || dst[n - 1] == ' '))
			continue;
		dst[n++] = c;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

void db_clear_error(struct db *db)
{
	db->errclass = DB_ERR_NONE;
	db->sqlstate[0] = '\0';
	db->constraint[0] = '\0';
	db->errmsg[0] = '\0';
}

void db_set_error(struct db *db, enum db_errclass cls, const char *sqlstate, const char *msg)
{
	db->errclass = cls;
	snprintf(db->sqlstate, sizeof db->sqlstate, "%s", sqlstate ? sqlstate : "");
	db->constraint[0] = '\0';
	db_copy_line(db->errmsg, sizeof db->errmsg, msg && *msg ? msg : "unknown database error");
}

static bool db_schema_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > DB_SCHEMA_MAX || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

enum db_errclass db_classify_sqlstate(const char *sqlstate)
{
	static const char *const transient[] = {
	    "40001", /* serialization_failure */
	    "40P01", /* deadlock_detected */
	    "57P01", /* admin_shutdown */
	    "57P02", /* crash_shutdown */
	    "57P03", /* cannot_connect_now */
	    "53300", /* too_many_connections */
	    "57014", /* query_canceled (statement_timeout) */
	};

	if (!sqlstate || !*sqlstate)
		return DB_ERR_TRANSIENT; /* no SQLSTATE: libpq lost or never had the connection */
	if (strncmp(sqlstate, "08", 2) == 0)
		return DB_ERR_TRANSIENT; /* connection_exception class */
	for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
		if (strcmp(sqlstate, transient[i]) == 0)
			return DB_ERR_TRANSIENT;
	return DB_ERR_PERMANENT;
}

/* Server NOTICE/WARNING messages go to the JSON log instead of libpq's default stderr print. */
static void db_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const struct db *db = arg;

	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	/* 00000 is what RAISE NOTICE sends: worth reading. The server's own notices ("already
	 * exists, skipping") are debug noise. */
	if (sev && strcmp(sev, "WARNING") == 0)
		log_warn("postgres warning", LOGS("pg_msg", msg), LOGS("schema", db->schema));
	else if (state && strcmp(state, "00000") == 0)
		log_info("postgres notice", LOGS("pg_msg", msg), LOGS("schema", db->schema));
	else
		log_debug("postgres notice", LOGS("pg_msg", msg), LOGS("schema", db->schema));
}

/* Runs the per-session setup after a (re)connect: search_path to the quoted schema. */
static int db_session_setup(struct db *db)
{
	char *ident = PQescapeIdentifier(db->conn, db->schema, strlen(db->schema));
	const char *params[1];
	PGresult *res = NULL;
	int rc = -1;

	if (!ident) {
		db_set_error(db, DB_ERR_TRANSIENT, NULL, PQerrorMessage(db->conn));
		goto out;
	}
	params[0] = ident;
	res = PQexecParams(db->conn, "SELECT pg_catalog.set_config('search_path', $1, false)", 1,
	                   NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		db_set_error(db, db_classify_sqlstate(state), state, PQerrorMessage(db->conn));
		goto out;
	}
	rc = 0;
out:
	PQclear(res);
	PQfreemem(ident);
	return rc;
}

/* With db->need_version set: 0 when the schema's ledger says it is migrated that far, else -1
 * with a transient error recorded (the reads of schema_migrations are here; migrate's ledger.c
 * owns the table). */
static int db_version_check(struct db *db)
{
	PGresult *res = NULL;
	long have = -1;
	char *msg = db->gate_msg;
	size_t size = sizeof db->gate_msg;
	int rc = -1;

	msg[0] = '\0';
	if (db->need_version <= 0)
		return 0;
	res = PQexec(db->conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto failed;
	if (PQgetvalue(res, 0, 0)[0] == 't') {
		PQclear(res);
		res = PQexec(db->conn, "SELECT coalesce(max(version), -1) FROM schema_migrations");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			goto failed;
		have = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	}
	if (have >= db->need_version) {
		rc = 0;
		goto out;
	}
	if (have < 0)
		snprintf(msg, size,
		         "schema %s has no migrations applied; this build needs migration %ld or "
		         "later: run migrate up",
		         db->schema, db->need_version);
	else
		snprintf(
		    msg, size,
		    "schema %s is at migration %ld; this build needs %ld or later: run migrate up",
		    db->schema, have, db->need_version);
	db_set_error(db, DB_ERR_TRANSIENT, NULL, msg);
	goto out;
failed:
	db_set_error(db, DB_ERR_TRANSIENT, res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL,
	             PQerrorMessage(db->conn));
out:
	PQclear(res);
	return rc;
}

/* (Re)connects from scratch. Returns 0 or -1 with a transient error recorded. */
static int db_connect(struct db *db)
{
	const char *keys[] = {"connect_timeout",  "keepalives",
	                      "keepalives_idle",  "keepalives_interval",
	                      "keepalives_count", "tcp_user_timeout",
	                      "application_name", "options",
	                      "dbname",           NULL};
	const char *vals[] = {DB_CONNECT_TIMEOUT_S,
	                      "1",
	                      "30",
	                      "10",
	                      "3",
	                      "30000",
	                      program_invocation_short_name,
	                      DB_STATEMENT_TIMEOUT_OPT,
	                      db->url,
	                      NULL};

	if (db->conn) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	db->gate_msg[0] = '\0'; /* a refusal by the version check is news of this attempt only */
	db->in_tx = false;
	db->nprepared = 0; /* prepared statements belong to the connection */
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (!db->conn) {
		db_set_error(db, DB_ERR_TRANSIENT, NULL, "out of memory creating a connection");
		return -1;
	}
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_set_error(db, DB_ERR_TRANSIENT, NULL, PQerrorMessage(db->conn));
		db->broken = true;
		return -1;
	}
	PQsetNoticeReceiver(db->conn, db_notice, db);
	if (db_session_setup(db) < 0 || db_version_check(db) < 0) {
		db->broken = true;
		return -1;
	}
	db->broken = false;
	db_clear_error(db);
	log_info("database connected", LOGS("host", PQhost(db->conn)),
	         LOGS("port", PQport(db->conn)), LOGS("db", PQdb(db->conn)),
	         LOGS("schema", db->schema));
	return 0;
}

/* Accepts a libpq URL or key=value conninfo (validated by libpq), or a bare database name. */
static int db_url_valid(const char *url, char *errstr, size_t errstr_size)
{
	PQconninfoOption *opts;
	char *err = NULL;

	if (!url || !*url) {
		snprintf(errstr, errstr_size, "DATABASE_URL is empty");
		return -1;
	}
	if (!strchr(url, '=') && !strstr(url, "://"))
		return 0; /* a database name */
	opts = PQconninfoParse(url, &err);
	if (!opts) {
		char line[256];
		db_copy_line(line, sizeof line, err ? err : "out of memory");
		snprintf(errstr, errstr_size, "DATABASE_URL is not a valid libpq URL/conninfo: %s",
		         line);
		PQfreemem(err);
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

struct db *db_open(const char *url, const char *schema, char *errstr, size_t errstr_size)
{
	struct db *db = NULL;

	if (db_url_valid(url, errstr, errstr_size) < 0)
		return NULL;
	if (!db_schema_valid(schema)) {
		snprintf(errstr, errstr_size,
		         "DB_SCHEMA '%s' is not a valid identifier (letters, digits, _; at most "
		         "%d bytes; not starting with a digit)",
		         schema ? schema : "", DB_SCHEMA_MAX);
		return NULL;
	}
	db = calloc(1, sizeof *db);
	if (!db || !(db->url = strdup(url))) {
		snprintf(errstr, errstr_size, "out of memory");
		free(db);
		return NULL;
	}
	snprintf(db->schema, sizeof db->schema, "%s", schema);
	db->broken = true;
	(void)db_connect(db); /* failure is reported by db_ok()/db_errmsg() */
	return db;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	if (db->conn)
		PQfinish(db->conn);
	free(db->url);
	free(db);
}

void db_require_version(struct db *db, long version)
{
	db->need_version = version;
	if (db_ok(db) && db_version_check(db) < 0)
		db->broken = true;
}

bool db_ok(const struct db *db)
{
	return db && db->conn && !db->broken && PQstatus(db->conn) == CONNECTION_OK;
}

int db_ensure(struct db *db)
{
	if (db_ok(db))
		return 0;
	return db_connect(db);
}

void db_result_error(struct db *db, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	enum db_errclass cls = db_classify_sqlstate(state);
	char msg[1024];

	if (primary)
		snprintf(msg, sizeof msg, "%s%s%s%s%s", primary, detail ? " DETAIL: " : "",
		         detail ? detail : "", hint ? " HINT: " : "", hint ? hint : "");
	else
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(db->conn));
	if (PQstatus(db->conn) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P0", 4) == 0) {
		db->broken = true;
		cls = DB_ERR_TRANSIENT;
	}
	db_set_error(db, cls, state, msg);
	snprintf(db->constraint, sizeof db->constraint, "%s", constraint ? constraint : "");
}

bool db_usable(struct db *db)
{
	/* No silent reconnect: session state (advisory locks, an open transaction) would be lost
	 * without the caller knowing. Callers reconnect with db_ensure()/db_wait_connected(). */
	if (!db_ok(db)) {
		db_set_error(db, DB_ERR_TRANSIENT, "08003",
		             db->gate_msg[0] ? db->gate_msg : "not connected to the database");
		db->broken = true;
		return false;
	}
	db_clear_error(db);
	return true;
}

PGresult *db_result(struct db *db, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (res && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK))
		return res;
	if (res && st != PGRES_FATAL_ERROR && st != PGRES_NONFATAL_ERROR)
		db_set_error(db, DB_ERR_PERMANENT, NULL, "unexpected result status");
	else
		db_result_error(db, res);
	PQclear(res);
	return NULL;
}

PGresult *db_exec(struct db *db, const char *sql, int nparams, const char *const *params)
{
	if (!db_usable(db))
		return NULL;
	return db_result(db, PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0));
}

int db_cmd(struct db *db, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = db_exec(db, sql, nparams, params);

	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int db_ping(struct db *db)
{
	if (db_ensure(db) < 0)
		return -1;
	return db_cmd(db, "SELECT 1", 0, NULL);
}

int db_begin(struct db *db)
{
	if (db_cmd(db, "BEGIN", 0, NULL) < 0)
		return -1;
	db->in_tx = true;
	return 0;
}

int db_commit(struct db *db)
{
	PGresult *res = db_exec(db, "COMMIT", 0, NULL);
	int rc = -1;

	db->in_tx = false;
	if (!res)
		return -1;
	/* COMMIT of a transaction that already failed answers "ROLLBACK", not an error. */
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		db_set_error(db, DB_ERR_PERMANENT, "25P02",
		             "transaction was aborted by an earlier error and rolled back");
		goto out;
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

void db_rollback(struct db *db)
{
	PGresult *res;

	if (!db)
		return;
	db->in_tx = false;
	if (!db_ok(db))
		return;
	/* Keep the error that made the caller roll back: don't go through db_exec. */
	res = PQexec(db->conn, "ROLLBACK");
	if (PQstatus(db->conn) != CONNECTION_OK)
		db->broken = true;
	PQclear(res);
}

enum db_errclass db_errclass(const struct db *db)
{
	return db ? db->errclass : DB_ERR_TRANSIENT;
}

const char *db_errmsg(const struct db *db)
{
	return db ? db->errmsg : "";
}

const char *db_sqlstate(const struct db *db)
{
	return db ? db->sqlstate : "";
}

const char *db_constraint(const struct db *db)
{
	return db ? db->constraint : "";
}

const char *db_schema(const struct db *db)
{
	return db ? db->schema : "";
}

PGconn *db_conn(struct db *db)
{
	return db_ok(db) ? db->conn : NULL;
}

int db_wait_connected(struct db *db, long max_backoff_ms)
{
	struct backoff b;
	unsigned attempt = 0;

	backoff_init(&b, 200, max_backoff_ms > 0 ? max_backoff_ms : 5000);
	while (!shutdown_requested()) {
		long delay;

		if (db_ensure(db) == 0) {
			if (attempt > 0)
				log_info("database reachable again", LOGI("attempts", attempt),
				         LOGS("schema", db->schema));
			return 0;
		}
		attempt++;
		delay = backoff_next(&b);
		log_warn("database unavailable", LOGS("error", db->errmsg),
		         LOGI("attempt", attempt), LOGI("retry_in_ms", delay),
		         LOGS("schema", db->schema));
		if (shutdown_sleep_ms(delay))
			break;
	}
	return -1;
}
