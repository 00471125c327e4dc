-- 006_transcription_source down: drops the source position of transcription lines. Later
-- replays then append lines at the end of their conversation instead of placing them.
DROP INDEX idx_call_transcriptions_reconciled;

ALTER TABLE call_transcriptions
	DROP COLUMN source_offset,
	DROP COLUMN source_partition;
