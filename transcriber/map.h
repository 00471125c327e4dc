/* map: the transcriber's old names of common/strmap, kept only for batch.c (changed under
 * issue 19 meanwhile) until it calls strmap_* itself; nothing else uses them. */
#ifndef CALLPIPE_TRANSCRIBER_MAP_H
#define CALLPIPE_TRANSCRIBER_MAP_H

#include "strmap.h"

#define tr_map         strmap
#define tr_map_new     strmap_new
#define tr_map_destroy strmap_destroy
#define tr_map_get     strmap_get
#define tr_map_put     strmap_put

#endif
