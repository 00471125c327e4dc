-- 000_initial_schema down: drops both tables (and every row in them).
DROP TABLE call_transcriptions;
DROP TABLE calls;
