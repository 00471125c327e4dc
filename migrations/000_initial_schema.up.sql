-- 000_initial_schema: the pre-refactor schema, as the original service left it: a call is known
-- only by ElevenLabs' conversation_id (NOT NULL UNIQUE), there is no call_sid, and transcription
-- lines reference the call by conversation_id. Table names are unqualified: migrate sets
-- search_path to the target schema (DB_SCHEMA, default dev).

CREATE TABLE calls (
	id              bigserial PRIMARY KEY,
	conversation_id varchar(255) NOT NULL,
	driver_id       varchar(255),
	trip_id         varchar(255),
	status          varchar(32) NOT NULL DEFAULT 'in_progress',
	call_start_time timestamptz,
	call_end_time   timestamptz,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT uq_calls_conversation_id UNIQUE (conversation_id)
);

CREATE TABLE call_transcriptions (
	id              bigserial PRIMARY KEY,
	conversation_id varchar(255) NOT NULL,
	speaker         varchar(16) NOT NULL,
	message         text NOT NULL,
	sequence_number integer NOT NULL,
	created_at      timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT fk_call_transcriptions_conversation_id
		FOREIGN KEY (conversation_id) REFERENCES calls (conversation_id),
	CONSTRAINT uq_call_transcriptions_conversation_sequence
		UNIQUE (conversation_id, sequence_number)
);
