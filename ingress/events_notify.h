/* events_notify: migration 009's notification payloads, read: which event a notification is, or
 * which transcription lines it names; and the data of a line.stored event. Pure (jansson). */
#ifndef CALLPIPE_INGRESS_EVENTS_NOTIFY_H
#define CALLPIPE_INGRESS_EVENTS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct store_event_line;

enum events_note_kind {
	EVENTS_NOTE_IGNORE = 0, /* another schema's */
	EVENTS_NOTE_EVENT,      /* a call event: type and data are set */
	EVENTS_NOTE_LINES,      /* lines to read: the id ranges are set */
	EVENTS_NOTE_BULK,       /* too many rows to announce one by one (nlines: how many) */
};

/* Most id ranges one notification may name (the trigger sends at most 150). */
#define EVENTS_NOTE_MAX_RANGES 1000

struct events_note {
	enum events_note_kind kind;
	char type[24]; /* EVENT: "call.created", "call.dialled", "call.completed", "call.failed" */
	char *data;    /* EVENT: the event's data, compact one-line JSON (owned) */
	int64_t *lo;   /* LINES: ranges [lo[i], hi[i]] (owned) */
	int64_t *hi;
	size_t nranges;
	uint64_t nlines; /* LINES: ids the ranges cover; BULK: rows changed */
};

/* Reads payload; notifications of other schemas than schema are IGNORE. Returns 0, or -1 with
 * errstr for a payload that is not one of migration 009's (or out of memory). The caller
 * clears *note with events_note_clear in every case. */
__attribute__((warn_unused_result)) int events_note_parse(const char *payload, const char *schema,
                                                          struct events_note *note, char *errstr,
                                                          size_t errstr_size);
void events_note_clear(struct events_note *note);

/* {"call_sid","sequence_number","speaker","message","created_at"}: compact JSON text of a
 * line.stored event (malloc'd; NULL on OOM). */
char *events_line_data(const struct store_event_line *line);

#endif
