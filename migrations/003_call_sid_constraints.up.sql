-- 003_call_sid_constraints: call_sid becomes NOT NULL and unique, with the two lookup indexes
-- of the original (idx_calls_call_sid for the webhook lookup, idx_calls_call_sid_status for
-- status queries). Refuses, before touching anything, while 002 has left rows without a call_sid.
DO $$
DECLARE
	missing bigint;
BEGIN
	SELECT count(*) INTO missing FROM calls WHERE call_sid IS NULL;
	IF missing > 0 THEN
		RAISE EXCEPTION '003 refused: % calls in schema % have no call_sid', missing, current_schema()
			USING HINT = 'run migration 002 (migrate down 1 && migrate up re-runs it; it only fills NULL call_sids)';
	END IF;
END
$$;

ALTER TABLE calls ALTER COLUMN call_sid SET NOT NULL;
ALTER TABLE calls ADD CONSTRAINT uq_calls_call_sid UNIQUE (call_sid);
CREATE INDEX idx_calls_call_sid ON calls (call_sid);
CREATE INDEX idx_calls_call_sid_status ON calls (call_sid, status);
