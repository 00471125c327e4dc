-- 001_add_call_sid down: drops call_sid and every value in it (backfilled or not).
ALTER TABLE calls DROP COLUMN call_sid;
