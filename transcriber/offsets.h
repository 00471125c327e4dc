/* offsets: the transcriber's old names of common/offtrack, kept only for round.c (changed under
 * issue 19 meanwhile) until it calls offtrack_* itself; nothing else uses them. */
#ifndef CALLPIPE_TRANSCRIBER_OFFSETS_H
#define CALLPIPE_TRANSCRIBER_OFFSETS_H

#include "offtrack.h"

#define tr_offsets_done     offtrack_done
#define tr_offsets_progress offtrack_last

#endif
