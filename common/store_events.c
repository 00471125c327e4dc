/* store_events: LISTEN for migration 009's notifications, and the lines they name. */
#include "store_events.h"

#include "db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static const char SQL_NAME[] = "SELECT pg_catalog.set_config('application_name', $1, false)";
static const char SQL_LISTEN[] = "LISTEN " STORE_EVENTS_CHANNEL;

/* Ranges as two arrays; the join walks the primary key. */
static const char SQL_LINES[] =
    "SELECT t.id, c.call_sid, t.sequence_number, t.speaker, t.message, "
    "to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
    "FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi) "
    "JOIN call_transcriptions t ON t.id BETWEEN r.lo AND r.hi "
    "JOIN calls c ON c.conversation_id = t.conversation_id "
    "ORDER BY t.conversation_id, t.sequence_number";

int store_events_listen(struct db *db, const char *application_name)
{
	const char *params[] = {application_name};
	PGresult *res = db_exec(db, SQL_NAME, 1, params);

	if (res == NULL)
		return -1;
	PQclear(res);
	return db_cmd(db, SQL_LISTEN, 0, NULL);
}

/* "{v0,v1,...}": an array literal of n integers (malloc'd), NULL on OOM. */
static char *store_events_array(const int64_t *v, size_t n)
{
	size_t cap = n * 21 + 3, len = 0;
	char *s = malloc(cap);

	if (s == NULL)
		return NULL;
	s[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%" PRId64, i > 0 ? "," : "", v[i]);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

int store_events_lines(struct db *db, const int64_t *lo, const int64_t *hi, size_t n,
                       store_event_line_cb *cb, void *opaque)
{
	char *los = store_events_array(lo, n);
	char *his = store_events_array(hi, n);
	PGresult *res = NULL;
	int rc = -1;

	if (los == NULL || his == NULL)
		goto out;
	{
		const char *params[] = {los, his};

		res = db_exec(db, SQL_LINES, 2, params);
	}
	if (res == NULL)
		goto out;
	rc = 0;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct store_event_line line = {
		    .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
		    .call_sid = PQgetvalue(res, i, 1),
		    .sequence_number = atoi(PQgetvalue(res, i, 2)),
		    .speaker = PQgetvalue(res, i, 3),
		    .message = PQgetvalue(res, i, 4),
		    .created_at = PQgetvalue(res, i, 5),
		};
		rc = cb(opaque, &line);
	}
out:
	PQclear(res);
	free(his);
	free(los);
	return rc;
}
