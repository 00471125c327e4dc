/* migrate: applies migrations/ to a Postgres schema: `migrate up | down [N|all] | status`. */
#include "backoff.h"
#include "cfg.h"
#include "db.h"
#include "log.h"
#include "migfiles.h"
#include "runner.h"
#include "shutdown.h"
#include "timeutil.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef CALLPIPE_MIGRATIONS_DIR
#define CALLPIPE_MIGRATIONS_DIR "migrations"
#endif

struct migrate_config {
	char *database_url;
	char *schema;
	char *dir;
	char *log_level;
	long long to;
	long long lock_wait_s;
	long long connect_wait_s;
};

static const struct cfg_option migrate_options[] = {
    CFG_OPT(struct migrate_config, "database-url", "DATABASE_URL", CFG_STR, NULL,
            "libpq URL or conninfo of the database", database_url, 0, 0, true),
    CFG_OPT(struct migrate_config, "schema", "DB_SCHEMA", CFG_STR, "dev",
            "schema holding the tables (created if missing)", schema, 0, 0, true),
    CFG_OPT(struct migrate_config, "dir", "MIGRATIONS_DIR", CFG_STR, CALLPIPE_MIGRATIONS_DIR,
            "directory of NNN_name.up.sql/.down.sql files (./migrations if the default is missing)",
            dir, 0, 0, true),
    CFG_OPT(struct migrate_config, "to", NULL, CFG_INT, "-1",
            "up: apply only versions <= TO; down: revert every version > TO (-1: not set)", to, -1,
            999999, false),
    CFG_OPT(struct migrate_config, "lock-wait", "MIGRATE_LOCK_WAIT_S", CFG_INT, "600",
            "seconds to wait for another migrator of the same schema (0: forever)", lock_wait_s, 0,
            86400, false),
    CFG_OPT(struct migrate_config, "connect-wait", "MIGRATE_CONNECT_WAIT_S", CFG_INT, "0",
            "seconds to keep retrying an unreachable database (0: try once)", connect_wait_s, 0,
            3600, false),
    CFG_OPT_LOG_LEVEL(struct migrate_config, log_level),
};

static const struct cfg_spec migrate_spec = {
    .program = "migrate",
    .usage = "[options] up | down [N|all] | status",
    .about = "Applies the SQL migrations to one schema. up: apply every pending migration in "
             "version order, each in its own transaction. down [N|all]: revert the newest N "
             "applied migrations (default 1). status: list versions as applied or pending. "
             "An advisory lock per schema serialises concurrent migrators. Exit codes: 0 ok, "
             "1 database or migration failure, 2 usage or configuration, 3 an applied file "
             "was changed or a migration refused (e.g. 004 down with NULL conversation_ids).",
    .options = migrate_options,
    .noptions = sizeof migrate_options / sizeof migrate_options[0],
};

/* Connects, retrying with backoff for up to wait_s seconds. Returns 0 or -1. */
static int migrate_connect(struct db *db, long wait_s)
{
	int64_t deadline = time_mono_ms() + wait_s * 1000;
	struct backoff b;

	backoff_init(&b, 200, 2000);
	while (db_ensure(db) < 0) {
		if (time_mono_ms() >= deadline || shutdown_requested())
			return -1;
		log_warn("database unavailable, retrying", LOGS("error", db_errmsg(db)));
		if (shutdown_sleep_ms(backoff_next(&b)))
			return -1;
	}
	return 0;
}

/* Parses the command words. Returns 0, or -1 with errstr (usage error). */
static int migrate_parse_cmd(int argc, char **argv, int argi, const char **cmd, int *steps,
                             char *errstr, size_t errstr_size)
{
	int nargs = argc - argi;

	*steps = 1;
	if (nargs < 1) {
		snprintf(errstr, errstr_size, "missing command: up, down [N|all] or status");
		return -1;
	}
	*cmd = argv[argi];
	if (strcmp(*cmd, "down") == 0 && nargs == 2) {
		char *end;
		long n;

		if (strcmp(argv[argi + 1], "all") == 0) {
			*steps = -1;
			return 0;
		}
		errno = 0;
		n = strtol(argv[argi + 1], &end, 10);
		if (errno || *end || end == argv[argi + 1] || n < 1 || n > 999999) {
			snprintf(errstr, errstr_size, "down: N must be a positive number or 'all'");
			return -1;
		}
		*steps = (int)n;
		return 0;
	}
	if ((strcmp(*cmd, "up") == 0 || strcmp(*cmd, "down") == 0 || strcmp(*cmd, "status") == 0) &&
	    nargs == 1)
		return 0;
	snprintf(errstr, errstr_size, "unknown command or extra arguments: '%s'", *cmd);
	return -1;
}

int main(int argc, char **argv)
{
	struct migrate_config conf;
	struct mig_set set = {0};
	struct db *db = NULL;
	enum log_level level;
	const char *cmd = NULL, *dir;
	char errstr[512], safe_url[512];
	struct mig_opts opts;
	struct stat st;
	int argi = 0, steps = 1, rc = MIG_EXIT_USAGE;

	switch (cfg_load(&migrate_spec, &conf, argc, argv, &argi, errstr, sizeof errstr)) {
	case CFG_EXIT_OK:
		return 0;
	case CFG_ERROR:
		fprintf(stderr, "migrate: %s (see --help)\n", errstr);
		return MIG_EXIT_USAGE;
	case CFG_OK:
		break;
	}
	if (log_level_parse(conf.log_level, &level) < 0) {
		fprintf(stderr,
		        "migrate: LOG_LEVEL (--log-level): '%s' is not one of error, warn, "
		        "info, debug\n",
		        conf.log_level);
		goto out;
	}
	log_init("migrate", level);
	shutdown_install();
	if (migrate_parse_cmd(argc, argv, argi, &cmd, &steps, errstr, sizeof errstr) < 0) {
		fprintf(stderr, "migrate: %s (see --help)\n", errstr);
		goto out;
	}
	dir = conf.dir;
	if (strcmp(dir, CALLPIPE_MIGRATIONS_DIR) == 0 && stat(dir, &st) != 0)
		dir = "migrations"; /* an installed binary without the source tree */
	if (mig_scan(dir, &set, errstr, sizeof errstr) < 0) {
		fprintf(stderr, "migrate: %s\n", errstr);
		goto out;
	}
	db = db_open(conf.database_url, conf.schema, errstr, sizeof errstr);
	if (!db) {
		fprintf(stderr, "migrate: %s\n", errstr);
		goto out;
	}
	rc = MIG_EXIT_FAIL;
	cfg_redact_url(conf.database_url, safe_url, sizeof safe_url);
	if (migrate_connect(db, (long)conf.connect_wait_s) < 0) {
		printf("error: cannot connect to %s: %s\n", safe_url, db_errmsg(db));
		log_error("cannot connect to the database", LOGS("error", db_errmsg(db)));
		goto out;
	}
	/* Migrations may legitimately run for long; waiting for the lock is done by polling. */
	if (db_cmd(db, "SET statement_timeout = 0", 0, NULL) < 0) {
		printf("error: %s\n", db_errmsg(db));
		goto out;
	}
	opts = (struct mig_opts){
	    .set = &set, .to = (int)conf.to, .lock_wait_s = (long)conf.lock_wait_s, .out = stdout};
	if (strcmp(cmd, "up") == 0)
		rc = mig_up(db, &opts);
	else if (strcmp(cmd, "down") == 0)
		rc = mig_down(db, &opts, conf.to >= 0 ? -1 : steps);
	else
		rc = mig_status(db, &opts);
out:
	fflush(stdout);
	db_close(db);
	mig_set_free(&set);
	cfg_free(&migrate_spec, &conf);
	return rc;
}
