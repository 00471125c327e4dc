-- 004_conversation_id_nullable down: conversation_id NOT NULL again. Every call created since 004
-- that never got a conversation (failed dials, dials in flight) blocks this, so it refuses with
-- the number of such rows and the two ways to clean them up (see docs/migrations.md), instead of
-- failing half-way or deleting audit rows on its own. Those rows cannot have transcription lines
-- (the foreign key needs a conversation_id), so deleting them loses only the call audit trail.
DO $$
DECLARE
	blocking bigint;
BEGIN
	SELECT count(*) INTO blocking FROM calls WHERE conversation_id IS NULL;
	IF blocking > 0 THEN
		RAISE EXCEPTION '004 down refused: % calls in schema % have conversation_id NULL and would violate NOT NULL', blocking, current_schema()
			USING DETAIL = 'These are calls created by the dialer that never received a conversation_id (failed or in-flight dials).',
			      HINT = format('Stop the dialer and transcriber, then either delete them: DELETE FROM %I.calls WHERE conversation_id IS NULL; or keep them as audit rows with a placeholder: UPDATE %I.calls SET conversation_id = ''none:'' || call_sid WHERE conversation_id IS NULL; then run migrate down again.', current_schema(), current_schema());
	END IF;
END
$$;

ALTER TABLE calls ALTER COLUMN conversation_id SET NOT NULL;
