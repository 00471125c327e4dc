-- 001_add_call_sid: our own call identifier, nullable for now so existing rows stay valid; 002
-- backfills it and 003 makes it NOT NULL and unique. Adding a nullable column takes a brief
-- lock and rewrites nothing.
ALTER TABLE calls ADD COLUMN call_sid varchar(255);
