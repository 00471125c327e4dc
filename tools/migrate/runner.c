/* runner: migrate up / down / status: plans against schema_migrations and applies each step. */
#include "runner.h"

#include "db.h"
#include "ledger.h"
#include "log.h"
#include "migfiles.h"
#include "shutdown.h"
#include "timeutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum mig_direction { MIG_APPLY, MIG_REVERT };

static const struct ledger_row *mig_applied(const struct ledger_row *rows, size_t n, int version)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].version == version)
			return &rows[i];
	return NULL;
}

/* An applied migration whose up file changed means the database and the tree disagree about
 * what was run: refuse to do anything. Returns MIG_EXIT_OK or MIG_EXIT_REFUSED. */
static int mig_verify(const struct mig_opts *opts, const struct ledger_row *rows, size_t n)
{
	int rc = MIG_EXIT_OK;

	for (size_t i = 0; i < n; i++) {
		const struct mig_file *f = mig_find(opts->set, rows[i].version);

		if (!f || strcmp(f->checksum, rows[i].checksum) == 0)
			continue;
		fprintf(opts->out,
		        "error: %s was changed after it was applied (checksum %.12s... recorded, "
		        "%.12s... on disk); restore it and add a new migration instead\n",
		        f->up_path, rows[i].checksum, f->checksum);
		log_error("applied migration file changed", LOGS("file", f->up_path),
		          LOGI("version", f->version), LOGS("recorded", rows[i].checksum),
		          LOGS("on_disk", f->checksum));
		rc = MIG_EXIT_REFUSED;
	}
	return rc;
}

/* Runs one file and its ledger change in one transaction. Returns an enum mig_exit. */
static int mig_step(struct db *db, const struct mig_opts *opts, const struct mig_file *f,
                    enum mig_direction dir)
{
	const char *path = dir == MIG_APPLY ? f->up_path : f->down_path;
	const char *what = dir == MIG_APPLY ? "applied" : "reverted";
	char err[2048], state[6] = "";
	int64_t start = time_mono_ms();
	char *sql = mig_read(path, NULL, err, sizeof err);
	int rc = MIG_EXIT_FAIL;

	log_info(dir == MIG_APPLY ? "applying migration" : "reverting migration",
	         LOGS("migration", f->label), LOGS("schema", db_schema(db)));
	if (!sql)
		goto fail;
	if (db_begin(db) < 0) {
		snprintf(err, sizeof err, "%s", db_errmsg(db));
		goto fail;
	}
	if (ledger_run_script(db, sql, state, err, sizeof err) < 0)
		goto rollback;
	if ((dir == MIG_APPLY ? ledger_record(db, f) : ledger_forget(db, f->version)) < 0 ||
	    db_commit(db) < 0) {
		snprintf(err, sizeof err, "%s", db_errmsg(db));
		snprintf(state, sizeof state, "%s", db_sqlstate(db));
		goto rollback;
	}
	fprintf(opts->out, "%s %s (%lld ms)\n", what, f->label,
	        (long long)(time_mono_ms() - start));
	fflush(opts->out);
	log_info(dir == MIG_APPLY ? "migration applied" : "migration reverted",
	         LOGS("migration", f->label), LOGS("schema", db_schema(db)),
	         LOGI("ms", time_mono_ms() - start));
	free(sql);
	return MIG_EXIT_OK;
rollback:
	db_rollback(db);
	/* P0001 is RAISE EXCEPTION: the migration's own guard refused, nothing was changed. */
	if (strcmp(state, "P0001") == 0)
		rc = MIG_EXIT_REFUSED;
fail:
	fprintf(opts->out, "%s %s %s: %s\n",
	        rc == MIG_EXIT_REFUSED ? "refused:" : "error:", f->label,
	        dir == MIG_APPLY ? "up" : "down", err);
	fflush(opts->out);
	log_error(rc == MIG_EXIT_REFUSED ? "migration refused" : "migration failed",
	          LOGS("migration", f->label), LOGS("direction", dir == MIG_APPLY ? "up" : "down"),
	          LOGS("error", err), LOGS("sqlstate", state), LOGS("schema", db_schema(db)));
	free(sql);
	return rc;
}

int mig_up(struct db *db, const struct mig_opts *opts)
{
	struct ledger_row *rows = NULL;
	size_t nrows = 0;
	char err[512];
	int rc = MIG_EXIT_FAIL, applied = 0, top = -1;

	if (ledger_lock(db, opts->lock_wait_s, opts->out, err, sizeof err) < 0) {
		fprintf(opts->out, "error: %s\n", err);
		log_error("migration lock not taken", LOGS("error", err));
		return MIG_EXIT_FAIL;
	}
	if (ledger_bootstrap(db) < 0 || ledger_load(db, &rows, &nrows) < 0) {
		fprintf(opts->out, "error: reading schema_migrations: %s\n", db_errmsg(db));
		goto out;
	}
	if ((rc = mig_verify(opts, rows, nrows)) != MIG_EXIT_OK)
		goto out;
	for (size_t i = 0; i < opts->set->n; i++) {
		const struct mig_file *f = &opts->set->files[i];

		if (mig_applied(rows, nrows, f->version) ||
		    (opts->to >= 0 && f->version > opts->to))
			continue;
		if (shutdown_requested()) {
			fprintf(opts->out, "interrupted before %s\n", f->label);
			rc = MIG_EXIT_FAIL;
			goto out;
		}
		if (nrows > 0 && f->version < rows[nrows - 1].version)
			log_warn("applying a migration older than the newest applied one",
			         LOGS("migration", f->label),
			         LOGI("newest", rows[nrows - 1].version));
		if ((rc = mig_step(db, opts, f, MIG_APPLY)) != MIG_EXIT_OK)
			goto out;
		applied++;
	}
	for (size_t i = 0; i < opts->set->n; i++)
		if (opts->to < 0 || opts->set->files[i].version <= opts->to)
			top = opts->set->files[i].version;
	if (nrows > 0 && rows[nrows - 1].version > top)
		top = rows[nrows - 1].version;
	if (applied == 0)
		fprintf(opts->out, "nothing to do: schema %s is up to date (version %03d)\n",
		        db_schema(db), top);
	else
		fprintf(opts->out, "schema %s: applied %d migration%s, now at version %03d\n",
		        db_schema(db), applied, applied == 1 ? "" : "s", top);
	rc = MIG_EXIT_OK;
out:
	ledger_unlock(db);
	free(rows);
	return rc;
}

/* Tries every down step of the range in ONE transaction and rolls it back, so that a range
 * whose later step refuses (004 down while NULL conversation_ids exist) changes nothing at all
 * instead of reverting the steps before the refusal; the real run then still applies each step
 * in its own transaction. Returns MIG_EXIT_OK, or the failing step's exit code (reported). */
static int mig_rehearse_down(struct db *db, const struct mig_opts *opts,
                             const struct mig_file *const *files, size_t n)
{
	char err[2048], state[6] = "";
	int rc = MIG_EXIT_OK;

	if (n < 2)
		return MIG_EXIT_OK;
	if (db_begin(db) < 0) {
		fprintf(opts->out, "error: %s\n", db_errmsg(db));
		return MIG_EXIT_FAIL;
	}
	for (size_t i = 0; i < n && rc == MIG_EXIT_OK; i++) {
		char *sql = mig_read(files[i]->down_path, NULL, err, sizeof err);

		if (!sql || ledger_run_script(db, sql, state, err, sizeof err) < 0) {
			rc = strcmp(state, "P0001") == 0 ? MIG_EXIT_REFUSED : MIG_EXIT_FAIL;
			fprintf(opts->out,
			        "%s %s down: %s\nnothing was reverted: the %zu steps were tried "
			        "together first and rolled back\n",
			        rc == MIG_EXIT_REFUSED ? "refused:" : "error:", files[i]->label,
			        err, n);
			log_error("migration range refused in rehearsal",
			          LOGS("migration", files[i]->label), LOGS("error", err),
			          LOGS("sqlstate", state), LOGS("schema", db_schema(db)));
		}
		free(sql);
	}
	db_rollback(db);
	return rc;
}

int mig_down(struct db *db, const struct mig_opts *opts, int steps)
{
	struct ledger_row *rows = NULL;
	const struct mig_file **plan = NULL;
	size_t nrows = 0, nplan = 0;
	char err[512];
	int rc = MIG_EXIT_FAIL, reverted = 0;

	if (ledger_lock(db, opts->lock_wait_s, opts->out, err, sizeof err) < 0) {
		fprintf(opts->out, "error: %s\n", err);
		log_error("migration lock not taken", LOGS("error", err));
		return MIG_EXIT_FAIL;
	}
	if (ledger_load(db, &rows, &nrows) < 0) {
		fprintf(opts->out, "error: reading schema_migrations: %s\n", db_errmsg(db));
		goto out;
	}
	if ((rc = mig_verify(opts, rows, nrows)) != MIG_EXIT_OK)
		goto out;
	rc = MIG_EXIT_FAIL;
	plan = calloc(nrows ? nrows : 1, sizeof *plan);
	if (!plan)
		goto out;
	for (size_t i = nrows; i-- > 0;) {
		const struct mig_file *f = mig_find(opts->set, rows[i].version);

		if (opts->to >= 0 ? rows[i].version <= opts->to
		                  : steps >= 0 && nplan >= (size_t)steps)
			break;
		if (!f) {
			fprintf(opts->out,
			        "error: version %03d (%s) is applied but has no file in the "
			        "migrations directory: cannot revert it\n",
			        rows[i].version, rows[i].name);
			goto out;
		}
		plan[nplan++] = f;
	}
	if ((rc = mig_rehearse_down(db, opts, plan, nplan)) != MIG_EXIT_OK)
		goto out;
	for (size_t i = 0; i < nplan; i++) {
		if (shutdown_requested()) {
			fprintf(opts->out, "interrupted before reverting %s\n", plan[i]->label);
			rc = MIG_EXIT_FAIL;
			goto out;
		}
		if ((rc = mig_step(db, opts, plan[i], MIG_REVERT)) != MIG_EXIT_OK)
			goto out;
		reverted++;
	}
	if (reverted == 0)
		fprintf(opts->out, "nothing to revert in schema %s\n", db_schema(db));
	else
		fprintf(opts->out, "schema %s: reverted %d migration%s\n", db_schema(db), reverted,
		        reverted == 1 ? "" : "s");
	rc = MIG_EXIT_OK;
out:
	ledger_unlock(db);
	free(plan);
	free(rows);
	return rc;
}

/* Prints one status line. */
static void mig_status_line(FILE *out, int version, const char *name, const char *state,
                            const char *extra)
{
	char label[160];

	snprintf(label, sizeof label, "%03d_%s", version, name);
	if (*extra)
		fprintf(out, "  %-40s %-8s %s\n", label, state, extra);
	else
		fprintf(out, "  %-40s %s\n", label, state);
}

int mig_status(struct db *db, const struct mig_opts *opts)
{
	struct ledger_row *rows = NULL;
	size_t nrows = 0, fi = 0, ri = 0;
	int napplied = 0, npending = 0, rc = MIG_EXIT_OK;

	if (ledger_load(db, &rows, &nrows) < 0) {
		fprintf(opts->out, "error: reading schema_migrations: %s\n", db_errmsg(db));
		return MIG_EXIT_FAIL;
	}
	fprintf(opts->out, "schema %s:\n", db_schema(db));
	/* Merge the two version-ordered lists. */
	while (fi < opts->set->n || ri < nrows) {
		const struct mig_file *f = fi < opts->set->n ? &opts->set->files[fi] : NULL;
		const struct ledger_row *r = ri < nrows ? &rows[ri] : NULL;

		if (f && (!r || f->version < r->version)) {
			mig_status_line(opts->out, f->version, f->name, "pending", "");
			npending++;
			fi++;
		} else if (r && (!f || r->version < f->version)) {
			mig_status_line(opts->out, r->version, r->name, "applied",
			                "(no file in the migrations directory)");
			napplied++;
			ri++;
		} else {
			bool same = strcmp(f->checksum, r->checksum) == 0;

			mig_status_line(
			    opts->out, f->version, f->name, same ? "applied" : "CHANGED",
			    same ? r->applied_at : "up file differs from the applied one");
			if (!same)
				rc = MIG_EXIT_REFUSED;
			napplied++;
			fi++;
			ri++;
		}
	}
	fprintf(opts->out, "%d applied, %d pending\n", napplied, npending);
	free(rows);
	return rc;
}
