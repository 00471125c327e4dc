-- 003_call_sid_constraints down: drops the indexes and the unique constraint and makes call_sid
-- nullable again. Values are kept.
DROP INDEX idx_calls_call_sid_status;
DROP INDEX idx_calls_call_sid;
ALTER TABLE calls DROP CONSTRAINT uq_calls_call_sid;
ALTER TABLE calls ALTER COLUMN call_sid DROP NOT NULL;
