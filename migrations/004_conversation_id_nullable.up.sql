-- 004_conversation_id_nullable: a call row is now created before ElevenLabs is dialled, so it
-- has no conversation_id yet (and never gets one when the dial fails). The unique constraint
-- stays: NULLs do not collide, set values stay unique.
ALTER TABLE calls ALTER COLUMN conversation_id DROP NOT NULL;
