/* runner: migrate's three commands (up, down, status) on a connected struct db. */
#ifndef CALLPIPE_MIGRATE_RUNNER_H
#define CALLPIPE_MIGRATE_RUNNER_H

#include <stdio.h>

struct db;
struct mig_set;

/* Process exit codes of migrate (docs/migrations.md). */
enum mig_exit {
	MIG_EXIT_OK = 0,
	MIG_EXIT_FAIL = 1,    /* database unreachable, a migration failed, lock wait timed out */
	MIG_EXIT_USAGE = 2,   /* bad arguments or configuration, unreadable migrations directory */
	MIG_EXIT_REFUSED = 3, /* an applied file was changed, or a migration refused (RAISE) */
};

struct mig_opts {
	const struct mig_set *set; /* borrowed */
	int to;           /* up: highest version to apply; down: revert above it; -1 none */
	long lock_wait_s; /* 0 = wait forever */
	FILE *out;        /* human-readable report */
};

/* Applies every pending migration (up to opts->to) in version order, each in its own
 * transaction, under the schema's advisory lock. Returns an enum mig_exit. */
__attribute__((warn_unused_result)) int mig_up(struct db *db, const struct mig_opts *opts);

/* Reverts the last steps applied migrations (all of them when steps < 0; those above opts->to
 * when opts->to >= 0), newest first. Returns an enum mig_exit. */
__attribute__((warn_unused_result)) int mig_down(struct db *db, const struct mig_opts *opts,
                                                 int steps);

/* Prints every known version as applied, pending, changed or missing. Takes no lock and changes
 * nothing. Returns MIG_EXIT_OK, MIG_EXIT_REFUSED when an applied file changed, MIG_EXIT_FAIL. */
__attribute__((warn_unused_result)) int mig_status(struct db *db, const struct mig_opts *opts);

#endif
