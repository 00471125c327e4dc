/* test_migrations_util: what the migration tests share: running the real migrate binary against
 * a test schema, a catalog dump to compare schemas, and scratch copies of migrations/. */
#ifndef CALLPIPE_TEST_MIGRATIONS_UTIL_H
#define CALLPIPE_TEST_MIGRATIONS_UTIL_H

#include <stdbool.h>

/* The source tree's migrations directory. Static buffer. */
const char *mt_migrations_dir(void);

/* Number of NNN_*.up.sql files in dir. */
int mt_count_migrations(const char *dir);

/* Runs `migrate --schema schema [--dir dir] args...` (args NULL-terminated) with DATABASE_URL
 * of the test Postgres. Returns the exit status; *out (if out) gets stdout, malloc'd. */
int mt_migrate(const char *schema, const char *dir, char **out, ...);

/* A text dump of every column, index and constraint of schema (schema_migrations excluded),
 * one sorted line per item: equal dumps mean equal schemas. malloc'd ("" when empty). */
char *mt_catalog(const char *schema);

/* Copies the source tree's migrations into a fresh scratch directory. Returns its path
 * (malloc'd). */
char *mt_copy_migrations(void);

/* Reads a whole file (malloc'd); fails the test when it cannot. */
char *mt_read_file(const char *path);

/* True when the file at path contains needle. */
bool mt_file_contains(const char *path, const char *needle);

#endif
