/* test_migrations_util: helpers shared by the migration tests (see the header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_migrations_util.h"
#include "tsupport.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MT_MAX_ARGS 16

const char *mt_migrations_dir(void)
{
	static char dir[PATH_MAX];

	snprintf(dir, sizeof dir, "%s/migrations", ts_source_dir());
	return dir;
}

int mt_count_migrations(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		fail_msg("cannot open %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len > 7 && strcmp(de->d_name + len - 7, ".up.sql") == 0)
			n++;
	}
	closedir(d);
	return n;
}

int mt_migrate(const char *schema, const char *dir, char **out, ...)
{
	const char *argv[MT_MAX_ARGS + 8];
	char bin[PATH_MAX], url_env[2100];
	const char *env[] = {url_env, "LOG_LEVEL=warn", "DB_SCHEMA=", "MIGRATIONS_DIR=", NULL};
	size_t n = 0;
	const char *arg;
	va_list ap;

	snprintf(url_env, sizeof url_env, "DATABASE_URL=%s", ts_pg_url());
	argv[n++] = ts_bin("migrate", bin, sizeof bin);
	argv[n++] = "--schema";
	argv[n++] = schema;
	argv[n++] = "--dir";
	argv[n++] = dir ? dir : mt_migrations_dir();
	va_start(ap, out);
	while ((arg = va_arg(ap, const char *)) != NULL) {
		if (n >= MT_MAX_ARGS + 6)
			fail_msg("mt_migrate: too many arguments");
		argv[n++] = arg;
	}
	va_end(ap);
	argv[n] = NULL;
	return ts_run(argv, env, out, 60000);
}

char *mt_catalog(const char *schema)
{
	static const char sql[] =
	    "SELECT coalesce(string_agg(item, E'\\n' ORDER BY item), '') FROM ("
	    " SELECT format('table %s', table_name) AS item FROM information_schema.tables"
	    "  WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'"
	    " UNION ALL"
	    " SELECT format('column %s.%s %s(%s) nullable=%s default=%s', table_name,"
	    "  column_name, data_type, coalesce(character_maximum_length::text, ''),"
	    "  is_nullable, coalesce(column_default, ''))"
	    "  FROM information_schema.columns"
	    "  WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'"
	    " UNION ALL"
	    " SELECT format('index %s.%s %s', tablename, indexname, indexdef) FROM pg_indexes"
	    "  WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'"
	    " UNION ALL"
	    " SELECT format('constraint %s.%s %s', cl.relname, co.conname,"
	    "  pg_get_constraintdef(co.oid))"
	    "  FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid"
	    "  WHERE co.connamespace = (SELECT oid FROM pg_namespace"
	    "                           WHERE nspname = current_schema())"
	    "  AND cl.relname <> 'schema_migrations'"
	    " UNION ALL"
	    " SELECT format('sequence %s', sequence_name) FROM information_schema.sequences"
	    "  WHERE sequence_schema = current_schema()"
	    ") items";
	char *dump = ts_pg_query(schema, sql);

	return dump ? dump : strdup("");
}

char *mt_read_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long len;

	if (!fp)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len)
		fail_msg("cannot read %s", path);
	buf[len] = '\0';
	fclose(fp);
	return buf;
}

bool mt_file_contains(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	bool found;

	if (!fp)
		return false;
	fclose(fp);
	buf = mt_read_file(path);
	found = strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

char *mt_copy_migrations(void)
{
	static unsigned seq;
	const char *src = mt_migrations_dir();
	char *dst = NULL;
	struct dirent *de;
	DIR *d;

	if (asprintf(&dst, "%s/migrations-%u-XXXXXX", ts_tmpdir(), ++seq) < 0 || !mkdtemp(dst))
		fail_msg("cannot create a scratch migrations directory");
	d = opendir(src);
	if (!d)
		fail_msg("cannot open %s: %s", src, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char from[PATH_MAX], to[PATH_MAX];
		char *data;
		FILE *fp;

		if (len < 4 || strcmp(de->d_name + len - 4, ".sql") != 0)
			continue;
		if ((size_t)snprintf(from, sizeof from, "%s/%s", src, de->d_name) >= sizeof from ||
		    (size_t)snprintf(to, sizeof to, "%s/%s", dst, de->d_name) >= sizeof to)
			fail_msg("path too long: %s", de->d_name);
		data = mt_read_file(from);
		fp = fopen(to, "wb");
		if (!fp || fputs(data, fp) < 0 || fclose(fp) != 0)
			fail_msg("cannot write %s", to);
		free(data);
	}
	closedir(d);
	return dst;
}
