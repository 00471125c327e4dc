/* store_events: the queries behind the console's live events (migration 009): listening on the
 * channel the triggers notify, and reading the transcription lines a notification names. Same
 * conventions as store_calls.h: a struct db, parameterised SQL, 0 or -1 with db_errclass(db). */
#ifndef CALLPIPE_STORE_EVENTS_H
#define CALLPIPE_STORE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* The channel migration 009's triggers notify. */
#define STORE_EVENTS_CHANNEL "callpipe_events"

/* Names the session application_name (shown in pg_stat_activity; an operator can find the
 * listener there) and LISTENs on STORE_EVENTS_CHANNEL. Outside a transaction. Returns 0 or -1. */
__attribute__((warn_unused_result)) int store_events_listen(struct db *db,
                                                            const char *application_name);

/* One line, as handed to the callback. Strings are borrowed for the call only. */
struct store_event_line {
	int64_t id;
	const char *call_sid;
	int sequence_number;
	const char *speaker;
	const char *message;
	const char *created_at; /* ISO-8601 UTC */
};

typedef int store_event_line_cb(void *opaque, const struct store_event_line *line);

/* Calls cb for each stored line whose id is in one of the n ranges [lo[i], hi[i]], with its
 * call's call_sid, ordered by conversation then sequence number. A non-zero return from cb stops
 * the walk and is returned. Lines deleted since are skipped. Returns 0, or -1 on a database
 * error (or out of memory). */
__attribute__((warn_unused_result)) int store_events_lines(struct db *db, const int64_t *lo,
                                                           const int64_t *hi, size_t n,
                                                           store_event_line_cb *cb, void *opaque);

#endif
