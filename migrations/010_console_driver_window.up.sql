-- 010_console_driver_window: a maintained rolling 30-day per-driver rollup, so GET /stats/drivers
-- over the rolling window reads about `limit` rows through an index instead of aggregating the
-- ~333,000 calls of a 30-day window at a million calls (docs/console.md, "Performance").
--  console_driver_window        one row per driver with calls created at or after the cutoff:
--                               calls, completed, failed, in_progress, last_call_at; an index per
--                               sort key and direction (ties in driver_id order), success_rate
--                               as an expression index. Failure reasons and medians are not kept:
--                               the read takes them from calls for the page's drivers only.
--  console_driver_window_state  one row: cutoff (calls with created_at >= cutoff are counted)
--                               and span ('30 days').
--  calls triggers               AFTER INSERT, AFTER DELETE, and AFTER UPDATE only WHEN status,
--                               driver_id or created_at changes (the dialer's claim, the
--                               conversation id and the sweeper's lease fire nothing); AFTER
--                               TRUNCATE empties the rollup.
--  console_driver_window_advance()  moves the cutoff to now() - span: subtracts the calls whose
--                               created_at is in [old cutoff, new cutoff) by their current status
--                               (an index range on calls.created_at, 008's covering index), deletes
--                               drivers left with no call. The /stats/drivers read calls it before
--                               it reads: its cost is the calls that left the window since the
--                               previous read. While writers hold the lock and the cutoff is at
--                               most 60 s late it does nothing (the read reports the cutoff it
--                               used). Returns the cutoff.
--
-- Why it neither double- nor under-counts (READ COMMITTED, the default):
--  * Every trigger takes pg_advisory_xact_lock_shared(K) before it reads the cutoff; the advance
--    takes pg_advisory_xact_lock(K) (exclusive) before it reads anything. Both are held to the
--    end of their transaction, and Postgres releases locks only after the commit is visible.
--  * So while the advance runs, no transaction that has applied a trigger is in flight: every
--    call's contribution to the rollup is committed, and the advance's statements (each with a
--    fresh snapshot, taken after the lock) see exactly the statuses the rollup counted. It
--    subtracts those for the calls leaving the window.
--  * A writer whose row change is not yet committed has not run its trigger yet, or waits in it
--    for the shared lock: the advance sees the row's previous committed version (counted under
--    that status, subtracted under it). When the writer's trigger then gets the lock it reads
--    the new cutoff (a fresh snapshot: plpgsql statements in a volatile function take one each)
--    and applies nothing for a row now older than the cutoff: a call whose status changes after
--    it left the window changes nothing.
--  * Writers against each other: each change is an INSERT ... ON CONFLICT DO UPDATE or UPDATE of
--    counts relative to the row's latest version (READ COMMITTED re-reads it after waiting on
--    its row lock), so concurrent increments are not lost.
--  * The read (store_console.c) reads the state and the rollup in one statement: one snapshot,
--    so the counts match the cutoff it reports.
-- The cost: while an advance runs, writers' triggers wait for it (and new writers queue behind
-- its lock request); the advance is short when reads are frequent (one read after a week idle
-- subtracts the week's calls once). K = 0x63647701 ('cdw' 1).
CREATE TABLE console_driver_window (
	driver_id    varchar(255) PRIMARY KEY,
	calls        bigint NOT NULL DEFAULT 0,
	completed    bigint NOT NULL DEFAULT 0,
	failed       bigint NOT NULL DEFAULT 0,
	in_progress  bigint NOT NULL DEFAULT 0,
	last_call_at timestamptz NOT NULL
);

-- Every call write rewrites its driver's row (its indexed counts change, so never a HOT update):
-- vacuum it often, or the sort indexes fill with dead entries the page scan has to skip.
ALTER TABLE console_driver_window SET (autovacuum_vacuum_scale_factor = 0.02,
	autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

CREATE TABLE console_driver_window_state (
	only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	cutoff   timestamptz NOT NULL,
	span     interval NOT NULL DEFAULT interval '30 days'
);

CREATE FUNCTION console_driver_window_rate(completed bigint, failed bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN completed + failed > 0 THEN completed::float8 / (completed + failed) END $$;

CREATE INDEX idx_cdw_calls_desc ON console_driver_window (calls DESC, driver_id);
CREATE INDEX idx_cdw_calls_asc ON console_driver_window (calls, driver_id);
CREATE INDEX idx_cdw_completed_desc ON console_driver_window (completed DESC, driver_id);
CREATE INDEX idx_cdw_completed_asc ON console_driver_window (completed, driver_id);
CREATE INDEX idx_cdw_failed_desc ON console_driver_window (failed DESC, driver_id);
CREATE INDEX idx_cdw_failed_asc ON console_driver_window (failed, driver_id);
CREATE INDEX idx_cdw_in_progress_desc ON console_driver_window (in_progress DESC, driver_id);
CREATE INDEX idx_cdw_in_progress_asc ON console_driver_window (in_progress, driver_id);
CREATE INDEX idx_cdw_rate_desc ON console_driver_window
	(console_driver_window_rate(completed, failed) DESC NULLS LAST, driver_id);
CREATE INDEX idx_cdw_rate_asc ON console_driver_window
	(console_driver_window_rate(completed, failed) ASC NULLS FIRST, driver_id);
CREATE INDEX idx_cdw_last_desc ON console_driver_window (last_call_at DESC, driver_id);
CREATE INDEX idx_cdw_last_asc ON console_driver_window (last_call_at, driver_id);

-- Adds sign (+1/-1) calls of one status for a driver; on -1 a row left with no call is deleted and
-- last_call_at recomputed when the call removed was the newest (rare: a DELETE or a moved call).
CREATE FUNCTION console_driver_window_apply(drv varchar, at timestamptz, st varchar, sign int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	c bigint := (st = 'completed')::int * sign;
	f bigint := (st = 'failed')::int * sign;
	p bigint := (st = 'in_progress')::int * sign;
	left_calls bigint;
	newest timestamptz;
BEGIN
	IF sign > 0 THEN
		INSERT INTO console_driver_window AS w
			(driver_id, calls, completed, failed, in_progress, last_call_at)
		VALUES (drv, 1, c, f, p, at)
		ON CONFLICT (driver_id) DO UPDATE SET calls = w.calls + 1,
			completed = w.completed + c, failed = w.failed + f,
			in_progress = w.in_progress + p, last_call_at = greatest(w.last_call_at, at);
		RETURN;
	END IF;
	UPDATE console_driver_window SET calls = calls - 1, completed = completed + c,
		failed = failed + f, in_progress = in_progress + p
	WHERE driver_id = drv RETURNING calls, last_call_at INTO left_calls, newest;
	IF left_calls IS NULL THEN
		RETURN;
	ELSIF left_calls <= 0 THEN
		DELETE FROM console_driver_window WHERE driver_id = drv;
	ELSIF at >= newest THEN
		-- AFTER ROW triggers run once the whole statement is done: a statement that removes
		-- all of a driver's calls finds none here and keeps the value until the row reaches 0
		UPDATE console_driver_window SET last_call_at = COALESCE((SELECT max(created_at)
			FROM calls WHERE driver_id = drv AND created_at >= (SELECT cutoff FROM
			console_driver_window_state)), last_call_at)
		WHERE driver_id = drv;
	END IF;
END $$;

CREATE FUNCTION console_driver_window_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	cut timestamptz;
BEGIN
	PERFORM pg_advisory_xact_lock_shared(1667528449);
	SELECT cutoff INTO cut FROM console_driver_window_state;
	IF TG_OP = 'UPDATE' AND OLD.driver_id IS NOT DISTINCT FROM NEW.driver_id
	   AND OLD.created_at = NEW.created_at THEN
		-- a status change: one row, counts only
		IF NEW.driver_id IS NOT NULL AND NEW.created_at >= cut THEN
			UPDATE console_driver_window SET
				completed = completed + (NEW.status = 'completed')::int
					- (OLD.status = 'completed')::int,
				failed = failed + (NEW.status = 'failed')::int - (OLD.status = 'failed')::int,
				in_progress = in_progress + (NEW.status = 'in_progress')::int
					- (OLD.status = 'in_progress')::int
			WHERE driver_id = NEW.driver_id;
		END IF;
		RETURN NULL;
	END IF;
	IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.driver_id IS NOT NULL AND OLD.created_at >= cut THEN
		PERFORM console_driver_window_apply(OLD.driver_id, OLD.created_at, OLD.status, -1);
	END IF;
	IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.driver_id IS NOT NULL AND NEW.created_at >= cut THEN
		PERFORM console_driver_window_apply(NEW.driver_id, NEW.created_at, NEW.status, 1);
	END IF;
	RETURN NULL;
END $$;

-- TRUNCATE calls (tests, a reset) empties the rollup too.
CREATE FUNCTION console_driver_window_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_advisory_xact_lock_shared(1667528449);
	DELETE FROM console_driver_window;
	RETURN NULL;
END $$;

CREATE FUNCTION console_driver_window_advance() RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
	old_cut timestamptz;
	new_cut timestamptz;
BEGIN
	-- A writer holds the lock: a read does not queue (nor make new writers queue behind it)
	-- while the window is at most a minute late; it reads the window as it is and reports it.
	IF NOT pg_try_advisory_xact_lock(1667528449) THEN
		SELECT cutoff INTO old_cut FROM console_driver_window_state
		WHERE cutoff >= now() - span - interval '60 seconds';
		IF FOUND THEN
			RETURN old_cut;
		END IF;
		PERFORM pg_advisory_xact_lock(1667528449);
	END IF;
	SELECT cutoff, greatest(cutoff, now() - span) INTO old_cut, new_cut
	FROM console_driver_window_state;
	IF new_cut = old_cut THEN
		RETURN old_cut;
	END IF;
	WITH gone AS (SELECT driver_id, count(*) AS calls,
			count(*) FILTER (WHERE status = 'completed') AS completed,
			count(*) FILTER (WHERE status = 'failed') AS failed,
			count(*) FILTER (WHERE status = 'in_progress') AS in_progress
		FROM calls WHERE created_at >= old_cut AND created_at < new_cut
			AND driver_id IS NOT NULL GROUP BY driver_id)
	UPDATE console_driver_window w SET calls = w.calls - g.calls,
		completed = w.completed - g.completed, failed = w.failed - g.failed,
		in_progress = w.in_progress - g.in_progress
	FROM gone g WHERE w.driver_id = g.driver_id;
	DELETE FROM console_driver_window WHERE calls <= 0;
	UPDATE console_driver_window_state SET cutoff = new_cut;
	RETURN new_cut;
END $$;

-- Backfill: the existing calls of the last 30 days (the lock keeps writers' triggers out while it
-- runs; the triggers are created in this same transaction, so none fires before the state row).
SELECT pg_advisory_xact_lock(1667528449);
INSERT INTO console_driver_window_state (cutoff) VALUES (now() - interval '30 days');
INSERT INTO console_driver_window (driver_id, calls, completed, failed, in_progress, last_call_at)
SELECT driver_id, count(*), count(*) FILTER (WHERE status = 'completed'),
	count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'in_progress'),
	max(created_at)
FROM calls WHERE created_at >= now() - interval '30 days' AND driver_id IS NOT NULL
GROUP BY driver_id;

CREATE TRIGGER calls_console_window_ins AFTER INSERT ON calls
	FOR EACH ROW EXECUTE FUNCTION console_driver_window_trigger();
CREATE TRIGGER calls_console_window_del AFTER DELETE ON calls
	FOR EACH ROW EXECUTE FUNCTION console_driver_window_trigger();
CREATE TRIGGER calls_console_window_truncate AFTER TRUNCATE ON calls
	FOR EACH STATEMENT EXECUTE FUNCTION console_driver_window_truncate();
CREATE TRIGGER calls_console_window_upd AFTER UPDATE ON calls
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
		OR OLD.driver_id IS DISTINCT FROM NEW.driver_id
		OR OLD.created_at IS DISTINCT FROM NEW.created_at)
	EXECUTE FUNCTION console_driver_window_trigger();
