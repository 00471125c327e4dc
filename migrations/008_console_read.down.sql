-- 008_console_read down: the console's indexes and calls.dialled_at (its values are lost; the
-- console's dial latency then has nothing to measure).
DROP INDEX idx_calls_console_trip;
DROP INDEX idx_calls_console_driver;
DROP INDEX idx_calls_console_status;
DROP INDEX idx_calls_console_created;
ALTER TABLE calls DROP COLUMN dialled_at;
