-- 006_transcription_source: where each transcription line was accepted, so the transcriber can
-- keep a conversation's lines in the ingress's order even when a line is written late.
--  call_transcriptions.source_partition  partition of webhooks.transcription the line came from
--  call_transcriptions.source_offset     its offset there (for a redriven line: the offset of
--                                        the original message, taken from the DLQ headers)
-- Both NULL for legacy rows and for lines the post-call reconciliation added from ElevenLabs'
-- final transcript. All lines of a call share one partition (the topic is keyed by call_sid),
-- so within a conversation the offsets order the lines as the ingress accepted them: a line
-- replayed or redriven into a gap is placed by its offset instead of being appended at the end
-- (docs/transcriber.md, "Ordering").
ALTER TABLE call_transcriptions
	ADD COLUMN source_partition integer,
	ADD COLUMN source_offset bigint;

-- The reconciliation's copies of final-transcript turns (event_id 'postcall:<conversation>:<n>'):
-- a per-turn line arriving after its copy is recognised through this small partial index
-- instead of reading the whole conversation.
CREATE INDEX idx_call_transcriptions_reconciled ON call_transcriptions (conversation_id)
	WHERE event_id LIKE 'postcall:%';
