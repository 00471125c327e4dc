-- 009_console_events: the console's live events (GET /events, docs/console.md "Live events").
-- AFTER triggers announce committed changes with pg_notify on channel callpipe_events. A
-- trigger runs inside the writer's own transaction, so this is "the workers notify in the same
-- transaction that changes the row" without a line of worker code: Postgres delivers a
-- notification only when that transaction commits (never for a rolled-back one), and delivers
-- them in commit order. Each payload is one JSON object
--   {"s": <schema>, "t": <type>, "d": <the event's data>}     (calls)
--   {"s": <schema>, "t": "lines", "ids": [[first, last], ...]} (call_transcriptions)
-- "s" lets the ingress ignore other schemas of the same database (one channel for all, since
-- a channel name is limited to 63 bytes and a schema name may use them all).
--
--  calls INSERT   statement level (transition table): call.created per row, plus call.dialled /
--                 call.completed / call.failed when the row is inserted in that state; a
--                 statement of more than 1000 rows (a bulk load) sends one {"t": "bulk", "n": n}
--                 instead of one notification per row.
--  calls UPDATE   row level, only when conversation_id goes NULL -> set (call.dialled) or the
--                 status changes to completed / failed (call.completed / call.failed); the WHEN
--                 clause skips every other update (the dialer's claim, the sweeper's lease)
--                 before the function is even called.
--  call_transcriptions INSERT   statement level (transition table): ONE notification per
--                 statement listing the new ids as ranges (the transcriber inserts ~500 lines
--                 per statement; a payload is limited to 8000 bytes, so the ingress reads the
--                 lines themselves), chunked by 150 ranges. Nothing when no row was inserted.
--                 A statement's ids are normally one run: min/max/count tell, without sorting.
-- Texts in payloads are bounded: call_sid, driver_id, trip_id and conversation_id are
-- varchar(255); failure_reason is cut to 500 characters.

CREATE FUNCTION callpipe_events_call_final(c calls, s text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE c.status
		WHEN 'completed' THEN json_build_object('s', s, 't', 'call.completed',
			'd', json_build_object('call_sid', c.call_sid, 'status', c.status,
				'call_end_time', to_char(c.call_end_time AT TIME ZONE 'UTC',
					'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))::text
		WHEN 'failed' THEN json_build_object('s', s, 't', 'call.failed',
			'd', json_build_object('call_sid', c.call_sid, 'status', c.status,
				'failure_reason', left(c.failure_reason, 500),
				'call_end_time', to_char(c.call_end_time AT TIME ZONE 'UTC',
					'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))::text
	END
$$;

CREATE FUNCTION callpipe_events_call_dialled(c calls, s text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('s', s, 't', 'call.dialled',
		'd', json_build_object('call_sid', c.call_sid,
			'conversation_id', c.conversation_id))::text
$$;

CREATE FUNCTION callpipe_events_calls_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
	c calls;
BEGIN
	SELECT count(*) INTO n FROM new_calls;
	IF n > 1000 THEN
		PERFORM pg_notify('callpipe_events', json_build_object('s', TG_TABLE_SCHEMA,
			't', 'bulk', 'n', n)::text);
		RETURN NULL;
	END IF;
	FOR c IN SELECT * FROM new_calls ORDER BY id LOOP
		PERFORM pg_notify('callpipe_events', json_build_object('s', TG_TABLE_SCHEMA,
			't', 'call.created',
			'd', json_build_object('call_sid', c.call_sid, 'driver_id', c.driver_id,
				'trip_id', c.trip_id, 'status', c.status,
				'created_at', to_char(c.created_at AT TIME ZONE 'UTC',
					'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))::text);
		IF c.conversation_id IS NOT NULL THEN
			PERFORM pg_notify('callpipe_events', callpipe_events_call_dialled(c, TG_TABLE_SCHEMA));
		END IF;
		IF c.status IN ('completed', 'failed') THEN
			PERFORM pg_notify('callpipe_events', callpipe_events_call_final(c, TG_TABLE_SCHEMA));
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;

CREATE FUNCTION callpipe_events_call_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.conversation_id IS NULL AND NEW.conversation_id IS NOT NULL THEN
		PERFORM pg_notify('callpipe_events', callpipe_events_call_dialled(NEW, TG_TABLE_SCHEMA));
	END IF;
	IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('completed', 'failed') THEN
		PERFORM pg_notify('callpipe_events', callpipe_events_call_final(NEW, TG_TABLE_SCHEMA));
	END IF;
	RETURN NULL;
END
$$;

CREATE FUNCTION callpipe_events_lines_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	lo bigint;
	hi bigint;
	n bigint;
	payload text;
BEGIN
	SELECT min(id), max(id), count(*) INTO lo, hi, n FROM new_lines;
	IF n = 0 THEN
		RETURN NULL;
	END IF;
	-- the usual case: the statement's ids are one run (one aggregate, no sort)
	IF hi - lo + 1 = n THEN
		PERFORM pg_notify('callpipe_events', json_build_object('s', TG_TABLE_SCHEMA,
			't', 'lines', 'ids', json_build_array(json_build_array(lo, hi)))::text);
		RETURN NULL;
	END IF;
	-- another writer's nextval interleaved: gaps and islands, consecutive ids form a range
	FOR payload IN
		SELECT json_build_object('s', TG_TABLE_SCHEMA, 't', 'lines',
			'ids', json_agg(json_build_array(r.lo, r.hi) ORDER BY r.lo))::text
		FROM (SELECT r.lo, r.hi, (row_number() OVER (ORDER BY r.lo) - 1) / 150 AS chunk
		      FROM (SELECT min(id) AS lo, max(id) AS hi
		            FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS island
		                  FROM new_lines) i
		            GROUP BY island) r) r
		GROUP BY r.chunk ORDER BY r.chunk
	LOOP
		PERFORM pg_notify('callpipe_events', payload);
	END LOOP;
	RETURN NULL;
END
$$;

CREATE TRIGGER trg_calls_events_insert AFTER INSERT ON calls
	REFERENCING NEW TABLE AS new_calls
	FOR EACH STATEMENT EXECUTE FUNCTION callpipe_events_calls_inserted();

CREATE TRIGGER trg_calls_events_update AFTER UPDATE ON calls
	FOR EACH ROW
	WHEN ((OLD.conversation_id IS NULL AND NEW.conversation_id IS NOT NULL)
	      OR (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('completed', 'failed')))
	EXECUTE FUNCTION callpipe_events_call_updated();

CREATE TRIGGER trg_call_transcriptions_events AFTER INSERT ON call_transcriptions
	REFERENCING NEW TABLE AS new_lines
	FOR EACH STATEMENT EXECUTE FUNCTION callpipe_events_lines_inserted();
