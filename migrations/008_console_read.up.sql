-- 008_console_read: what the operations console's read APIs need to stay fast at millions of calls
-- (docs/console.md, "Performance"; bench/console measures them).
--  calls.dialled_at               when the call's conversation_id was stored (the dial answered,
--                                 or a post-call filled it): /stats/overview's dial latency is
--                                 dialled_at - created_at. NULL for calls stored before 008.
--  idx_calls_console_created      GET /calls unfiltered (newest first, keyset on (created_at, id))
--                                 and the since/until windows; its INCLUDE columns let
--                                 /stats/drivers and /stats/overview count a window from the
--                                 index alone (index-only scan, no heap visit per call).
--  idx_calls_console_status       GET /calls?status=, and the failed calls of a window
--  idx_calls_console_driver       GET /calls?driver_id=, and one driver's calls of a window
--                                 (/stats/drivers: medians and failure reasons of a page)
--  idx_calls_console_trip         GET /calls?trip_id=
-- No trigger and nothing on call_transcriptions: a call's line count and last line time are read
-- from the existing unique (conversation_id, sequence_number) index, about ten entries a call,
-- only for the calls of the page. The writers' cost is four more index entries per inserted
-- call and per update that is not HOT (the dialer's claim stays HOT: it changes no indexed
-- column).
ALTER TABLE calls ADD COLUMN dialled_at timestamptz;

CREATE INDEX idx_calls_console_created ON calls (created_at, id)
	INCLUDE (status, driver_id, dialled_at);
CREATE INDEX idx_calls_console_status ON calls (status, created_at, id);
CREATE INDEX idx_calls_console_driver ON calls (driver_id, created_at, id) INCLUDE (status);
CREATE INDEX idx_calls_console_trip ON calls (trip_id, created_at, id);
