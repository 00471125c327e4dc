-- 009_console_events down: no more live events (GET /events then only pings).
DROP TRIGGER trg_call_transcriptions_events ON call_transcriptions;
DROP TRIGGER trg_calls_events_update ON calls;
DROP TRIGGER trg_calls_events_insert ON calls;
DROP FUNCTION callpipe_events_lines_inserted();
DROP FUNCTION callpipe_events_call_updated();
DROP FUNCTION callpipe_events_calls_inserted();
DROP FUNCTION callpipe_events_call_dialled(calls, text);
DROP FUNCTION callpipe_events_call_final(calls, text);
