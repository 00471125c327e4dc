/* ts_pg: the throwaway Postgres for integration tests: its URL, one fresh schema per test
 * (migrated with the real `migrate up`), and one-statement query helpers. */
#include "db.h"
#include "ts_int.h"
#include "tsupport.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ts_pg_url(void)
{
	static char url[2048];
	const char *env = getenv("CALLPIPE_TEST_DATABASE_URL");
	const char *dir = getenv("CALLPIPE_TESTENV_DIR");
	static const char key[] = "CALLPIPE_TEST_DATABASE_URL=";
	char path[PATH_MAX], line[2048];
	FILE *fp;

	if (url[0])
		return url;
	if (env && *env) {
		snprintf(url, sizeof url, "%s", env);
		return url;
	}
	if (!dir || !*dir)
		fail_msg("neither CALLPIPE_TEST_DATABASE_URL nor CALLPIPE_TESTENV_DIR is set (run "
		         "through ctest, which starts the pg fixture)");
	snprintf(path, sizeof path, "%s/pg.env", dir);
	fp = fopen(path, "r");
	if (!fp)
		fail_msg("%s is missing: was the ctest fixture pg_start run?", path);
	while (fgets(line, sizeof line, fp)) {
		char *v = line + sizeof key - 1;
		size_t n;

		if (strncmp(line, key, sizeof key - 1) != 0)
			continue;
		v[strcspn(v, "\r\n")] = '\0';
		n = strlen(v);
		if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
			v[n - 1] = '\0';
			v++;
		}
		snprintf(url, sizeof url, "%s", v);
	}
	fclose(fp);
	if (!url[0])
		fail_msg("%s has no CALLPIPE_TEST_DATABASE_URL= line", path);
	return url;
}

/* A connection with search_path set to schema (NULL: default). Fails the test on error. */
static PGconn *ts_pg_connect(const char *schema)
{
	PGconn *conn = PQconnectdb(ts_pg_url());
	PGresult *res;

	if (PQstatus(conn) != CONNECTION_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
		PQfinish(conn);
		fail_msg("cannot connect to the test Postgres: %s", msg);
	}
	res = PQexec(conn, "SET client_min_messages = warning");
	PQclear(res);
	if (schema) {
		const char *params[] = {schema};
		res = PQexecParams(conn, "SELECT set_config('search_path', $1, false)", 1, NULL,
		                   params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			char msg[512];
			snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
			PQclear(res);
			PQfinish(conn);
			fail_msg("set search_path %s: %s", schema, msg);
		}
		PQclear(res);
	}
	return conn;
}

/* Runs sql; returns the result (caller PQclears) or fails the test with the SQL and error. */
static PGresult *ts_pg_run(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
		PQclear(res);
		PQfinish(conn);
		fail_msg("SQL failed: %s\n  statement: %s", msg, sql);
	}
	return res;
}

static bool ts_pg_ident_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 63 || isdigit((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

void ts_pg_schema_new(const char *prefix, bool migrate, char *out, size_t size)
{
	static unsigned seq;
	char name[64], sql[160], bin[PATH_MAX], url_env[2100], schema_env[96],
	    dir_env[PATH_MAX + 32];
	size_t n = 0;
	PGconn *conn;

	dir_env[0] = '\0';
	/* prefix, lower-cased and reduced to [a-z0-9_], then pid and a counter */
	for (const char *s = prefix ? prefix : "t"; *s && n < 30; s++)
		name[n++] = isalnum((unsigned char)*s) ? (char)tolower((unsigned char)*s) : '_';
	if (n == 0 || isdigit((unsigned char)name[0]))
		name[n++] = 't';
	snprintf(name + n, sizeof name - n, "_%ld_%u", (long)getpid(), ++seq);
	if (!ts_pg_ident_ok(name) || strlen(name) >= size)
		fail_msg("ts_pg_schema_new: bad schema name %s", name);
	snprintf(out, size, "%s", name);

	conn = ts_pg_connect(NULL);
	snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", name);
	PQclear(ts_pg_run(conn, sql));
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", name);
	PQclear(ts_pg_run(conn, sql));
	PQfinish(conn);
	if (!migrate)
		return;

	snprintf(url_env, sizeof url_env, "DATABASE_URL=%s", ts_pg_url());
	snprintf(schema_env, sizeof schema_env, "DB_SCHEMA=%s", name);
	/* The source tree's migrations, when known (else migrate's built-in default). */
	if (getenv("CALLPIPE_SOURCE_DIR"))
		snprintf(dir_env, sizeof dir_env, "MIGRATIONS_DIR=%s/migrations", ts_source_dir());
	const char *argv[] = {ts_bin("migrate", bin, sizeof bin), "up", NULL};
	const char *env[] = {url_env, schema_env, "LOG_LEVEL=warn", dir_env[0] ? dir_env : NULL,
	                     NULL};
	char *output = NULL;
	int rc = ts_run(argv, env, &output, 60000);
	if (rc != 0) {
		fprintf(stderr, "%s", output ? output : "");
		free(output);
		fail_msg("migrate up into schema %s exited with %d (its stderr is above)", name,
		         rc);
	}
	free(output);
}

void ts_pg_schema_drop(const char *schema)
{
	char sql[160];
	PGconn *conn;

	if (!ts_pg_ident_ok(schema))
		fail_msg("ts_pg_schema_drop: bad schema name");
	conn = ts_pg_connect(NULL);
	snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	PQclear(ts_pg_run(conn, sql));
	PQfinish(conn);
}

char *ts_pg_query(const char *schema, const char *sql)
{
	PGconn *conn = ts_pg_connect(schema);
	PGresult *res = ts_pg_run(conn, sql);
	char *value = NULL;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0 &&
	    !PQgetisnull(res, 0, 0)) {
		value = strdup(PQgetvalue(res, 0, 0));
		if (!value)
			fail_msg("out of memory");
	}
	PQclear(res);
	PQfinish(conn);
	return value;
}

long long ts_pg_query_ll(const char *schema, const char *sql)
{
	char *v = ts_pg_query(schema, sql);
	long long n;
	char *end;

	if (!v)
		return -1;
	n = strtoll(v, &end, 10);
	if (*end) {
		char copy[64];
		snprintf(copy, sizeof copy, "%s", v);
		free(v);
		fail_msg("ts_pg_query_ll: \"%s\" is not an integer (%s)", copy, sql);
	}
	free(v);
	return n;
}

void ts_pg_exec(const char *schema, const char *sql)
{
	PGconn *conn = ts_pg_connect(schema);

	PQclear(ts_pg_run(conn, sql));
	PQfinish(conn);
}

struct db *ts_pg_db_open(const char *schema)
{
	char err[256];
	struct db *db = db_open(ts_pg_url(), schema, err, sizeof err);

	if (!db || !db_ok(db))
		fail_msg("db_open: %s", db ? db_errmsg(db) : err);
	return db;
}
