/* redrive: `transcriber redrive [--reason R]`: moves dead-lettered messages back to their source
 * topic once each (a consumer group on the dead-letter topics commits after each produce). */
#ifndef CALLPIPE_TRANSCRIBER_REDRIVE_H
#define CALLPIPE_TRANSCRIBER_REDRIVE_H

#include "app.h"

#include <stdio.h>

/* Redrives what the dead-letter topics hold now and writes a summary to out. Returns 0, or -1
 * on failure (logged). */
__attribute__((warn_unused_result)) int tr_redrive_run(struct tr_app *app, FILE *out);

#endif
