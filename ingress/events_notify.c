/* events_notify: notification payloads (migration 009) into events or line id ranges. */
#include "events_notify.h"

#include "store_events.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const events_call_types[] = {"call.created", "call.dialled", "call.completed",
                                                "call.failed"};

static bool events_call_type(const char *t)
{
	for (size_t i = 0; i < sizeof events_call_types / sizeof events_call_types[0]; i++)
		if (strcmp(t, events_call_types[i]) == 0)
			return true;
	return false;
}

/* LINES: "ids": [[lo, hi], ...], each lo <= hi, positive. */
static int events_note_ranges(json_t *ids, struct events_note *note, char *errstr,
                              size_t errstr_size)
{
	size_t n = json_array_size(ids), i;
	json_t *r;

	if (!json_is_array(ids) || n == 0 || n > EVENTS_NOTE_MAX_RANGES) {
		snprintf(errstr, errstr_size, "ids: not an array of 1 to %d ranges",
		         EVENTS_NOTE_MAX_RANGES);
		return -1;
	}
	note->lo = calloc(n, sizeof *note->lo);
	note->hi = calloc(n, sizeof *note->hi);
	if (note->lo == NULL || note->hi == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	json_array_foreach(ids, i, r)
	{
		json_int_t lo, hi;

		if (json_unpack(r, "[II!]", &lo, &hi) != 0 || lo < 1 || hi < lo) {
			snprintf(errstr, errstr_size, "ids[%zu]: not a range [first, last]", i);
			return -1;
		}
		note->lo[i] = lo;
		note->hi[i] = hi;
		note->nlines += (uint64_t)(hi - lo) + 1;
	}
	note->nranges = n;
	return 0;
}

int events_note_parse(const char *payload, const char *schema, struct events_note *note,
                      char *errstr, size_t errstr_size)
{
	json_error_t err;
	json_t *root = json_loads(payload, JSON_REJECT_DUPLICATES, &err);
	json_t *d = NULL, *ids = NULL;
	json_int_t n = 0;
	const char *s, *t;
	int rc = -1;

	memset(note, 0, sizeof *note);
	if (root == NULL) {
		snprintf(errstr, errstr_size, "not JSON: %s", err.text);
		goto out;
	}
	if (json_unpack_ex(root, &err, 0, "{s:s, s:s, s?o, s?o, s?I}", "s", &s, "t", &t, "d", &d,
	                   "ids", &ids, "n", &n) != 0) {
		snprintf(errstr, errstr_size, "%s", err.text);
		goto out;
	}
	if (strcmp(s, schema) != 0) {
		rc = 0; /* IGNORE */
		goto out;
	}
	if (strcmp(t, "lines") == 0) {
		note->kind = EVENTS_NOTE_LINES;
		rc = events_note_ranges(ids, note, errstr, errstr_size);
	} else if (strcmp(t, "bulk") == 0) {
		note->kind = EVENTS_NOTE_BULK;
		note->nlines = n > 0 ? (uint64_t)n : 0;
		rc = 0;
	} else if (events_call_type(t) && json_is_object(d)) {
		note->kind = EVENTS_NOTE_EVENT;
		snprintf(note->type, sizeof note->type, "%s", t);
		note->data = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
		rc = note->data != NULL ? 0 : -1;
		if (rc != 0)
			snprintf(errstr, errstr_size, "out of memory");
	} else {
		snprintf(errstr, errstr_size, "unknown type '%s' or no data", t);
	}
out:
	json_decref(root);
	return rc;
}

void events_note_clear(struct events_note *note)
{
	if (note == NULL)
		return;
	free(note->data);
	free(note->lo);
	free(note->hi);
	memset(note, 0, sizeof *note);
}

char *events_line_data(const struct store_event_line *line)
{
	json_t *d = json_pack("{s:s, s:i, s:s, s:s, s:s}", "call_sid", line->call_sid,
	                      "sequence_number", line->sequence_number, "speaker", line->speaker,
	                      "message", line->message, "created_at", line->created_at);
	char *text = d != NULL ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(d);
	return text;
}
