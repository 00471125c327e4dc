-- 005_pipeline_columns down: drops the pipeline columns, their constraints and the sweeper
-- index. Failure reasons, dial bookkeeping and event ids are lost; statuses normalised to lower
-- case by the up migration stay lower case.
ALTER TABLE call_transcriptions
	DROP CONSTRAINT uq_call_transcriptions_event_id,
	DROP COLUMN event_id;

DROP INDEX idx_calls_sweep;

ALTER TABLE calls
	DROP CONSTRAINT ck_calls_status,
	DROP COLUMN sweep_lease_until,
	DROP COLUMN dial_attempts,
	DROP COLUMN dial_attempted_at,
	DROP COLUMN failure_reason;
