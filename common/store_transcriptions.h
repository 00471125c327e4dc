/* store_transcriptions: every query on the call_transcriptions table. Same conventions as
 * store_calls.h: a connected struct db, parameterised SQL, 0 or -1 with db_errclass(db). */
#ifndef CALLPIPE_STORE_TRANSCRIPTIONS_H
#define CALLPIPE_STORE_TRANSCRIPTIONS_H

#include <stdint.h>

struct db;

/* One stored line, as handed to the list callback. Strings are borrowed for the call only. */
struct store_line {
	int64_t id;
	int sequence_number;
	const char *speaker;
	const char *message;
	const char *event_id;   /* NULL for legacy rows */
	const char *created_at; /* ISO-8601 UTC */
};

typedef int store_line_cb(void *opaque, const struct store_line *line);

/* Calls cb for each line of conversation_id in sequence order; a non-zero return from cb stops
 * the walk and is returned. Returns 0, or -1 on a database error. */
__attribute__((warn_unused_result)) int store_transcription_list(struct db *db,
                                                                 const char *conversation_id,
                                                                 store_line_cb *cb, void *opaque);

#endif
