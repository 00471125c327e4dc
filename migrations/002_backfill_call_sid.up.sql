-- 002_backfill_call_sid: gives every legacy call (call_sid IS NULL) the call_sid
--     EL_{driver_id, or UNKNOWN when NULL}_{epoch seconds of created_at}
-- as the original did, with two deliberate differences (docs/migrations.md):
--  * epoch seconds are truncated (floor), like Unix time, and kept as bigint; the original's
--    CAST(... AS INTEGER) rounded to the nearest second and overflows in 2038.
--  * the result is unique. Real data has two legacy calls of the same driver in the same second;
--    the original's plain format gave them the same call_sid and made 003's unique constraint
--    fail half-way through a deploy. Among rows that share a plain value, the one with the lowest
--    id keeps the plain value and the others, in id order, get "_2", "_3", ... appended
--    (EL_42_1700000000, EL_42_1700000000_2, ...). A value already taken by another row (a call
--    created by the new code, or an earlier backfill) is never reused: such a row takes the next
--    free suffix instead.
-- Rows that already have a call_sid are never touched, so running this again is a no-op;
-- updated_at is left as it was (the backfill is not a change to the call).
DO $$
DECLARE
	bulk bigint;
	slow bigint := 0;
	r record;
	k integer;
	candidate text;
BEGIN
	-- One set-based pass for the normal case: number the rows of each plain value by id, and
	-- assign every candidate that no existing row holds and no other candidate equals.
	WITH plain AS (
		SELECT id,
		       'EL_' || COALESCE(driver_id, 'UNKNOWN') || '_' ||
		       floor(extract(epoch FROM created_at))::bigint AS base
		FROM calls
		WHERE call_sid IS NULL
	), numbered AS (
		SELECT id, base, row_number() OVER (PARTITION BY base ORDER BY id) AS n
		FROM plain
	), wanted AS (
		SELECT id, CASE WHEN n = 1 THEN base ELSE base || '_' || n END AS sid
		FROM numbered
	), checked AS (
		SELECT id, sid, count(*) OVER (PARTITION BY sid) AS same
		FROM wanted
	)
	UPDATE calls c
	SET call_sid = checked.sid
	FROM checked
	WHERE c.id = checked.id
	  AND checked.same = 1
	  AND NOT EXISTS (SELECT 1 FROM calls x WHERE x.call_sid = checked.sid);
	GET DIAGNOSTICS bulk = ROW_COUNT;

	-- Rows whose candidate was taken (rare): one by one in id order, first free of plain, _2, ...
	FOR r IN
		SELECT id,
		       'EL_' || COALESCE(driver_id, 'UNKNOWN') || '_' ||
		       floor(extract(epoch FROM created_at))::bigint AS base
		FROM calls
		WHERE call_sid IS NULL
		ORDER BY id
	LOOP
		k := 1;
		candidate := r.base;
		WHILE EXISTS (SELECT 1 FROM calls WHERE call_sid = candidate) LOOP
			k := k + 1;
			candidate := r.base || '_' || k;
		END LOOP;
		UPDATE calls SET call_sid = candidate WHERE id = r.id;
		slow := slow + 1;
	END LOOP;

	RAISE NOTICE '002 backfill: % call_sids assigned (% after a collision)', bulk + slow, slow;
END
$$;
