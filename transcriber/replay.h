/* replay: `transcriber replay --from T [--to T]`: re-reads the webhook topics for a time window
 * through the engine in a private, never-committing consumer group, and prints a summary. */
#ifndef CALLPIPE_TRANSCRIBER_REPLAY_H
#define CALLPIPE_TRANSCRIBER_REPLAY_H

#include "app.h"

#include <stdio.h>

/* Replays app->conf->from .. to (default: now) and writes the summary to out. Returns 0, or -1
 * on failure (logged; the summary says how far it got). */
__attribute__((warn_unused_result)) int tr_replay_run(struct tr_app *app, FILE *out);

#endif
