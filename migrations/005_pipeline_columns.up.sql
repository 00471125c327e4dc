-- 005_pipeline_columns: what the Kafka pipeline needs beyond the original schema.
--  calls.failure_reason      why a call is failed (API error, initiation failure, sweeper)
--  calls.dial_attempted_at   set once, atomically, before the dialer calls ElevenLabs: a
--  calls.dial_attempts       replayed request never dials twice (store_call_claim_dial)
--  calls.sweep_lease_until   stuck-call sweeper lease, so concurrent sweepers split the work
--  status CHECK              only in_progress, completed, failed (DESIGN §5)
--  idx_calls_sweep           the sweeper's scan: in_progress calls by call_start_time
--  call_transcriptions.event_id  the ingress's id of the webhook event; unique, so a replayed
--                            event inserts nothing twice. Legacy rows keep NULL (NULLs never
--                            collide). A plain unique constraint rather than a partial index,
--                            so INSERT ... ON CONFLICT (event_id) DO NOTHING works as written.

-- The original's ORM may have written enum names in upper case: normalise those, and refuse
-- (listing them) any other value rather than failing on the CHECK half-way.
UPDATE calls SET status = lower(status)
WHERE status IN ('IN_PROGRESS', 'COMPLETED', 'FAILED');

DO $$
DECLARE
	bad text;
BEGIN
	SELECT string_agg(DISTINCT quote_literal(status), ', ') INTO bad
	FROM calls WHERE status NOT IN ('in_progress', 'completed', 'failed');
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION '005 refused: calls in schema % have unknown status values: %', current_schema(), bad
			USING HINT = 'map them to in_progress, completed or failed with an UPDATE, then run migrate up again';
	END IF;
END
$$;

ALTER TABLE calls
	ADD COLUMN failure_reason text,
	ADD COLUMN dial_attempted_at timestamptz,
	ADD COLUMN dial_attempts integer NOT NULL DEFAULT 0,
	ADD COLUMN sweep_lease_until timestamptz,
	ADD CONSTRAINT ck_calls_status CHECK (status IN ('in_progress', 'completed', 'failed'));

CREATE INDEX idx_calls_sweep ON calls (status, call_start_time) WHERE status = 'in_progress';

ALTER TABLE call_transcriptions
	ADD COLUMN event_id varchar(255),
	ADD CONSTRAINT uq_call_transcriptions_event_id UNIQUE (event_id);
