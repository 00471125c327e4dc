/* map: a small string-keyed hash map (open addressing) for the transcriber's per-call state. */
#ifndef CALLPIPE_TRANSCRIBER_MAP_H
#define CALLPIPE_TRANSCRIBER_MAP_H

#include <stddef.h>

struct tr_map;

/* An empty map. NULL when out of memory. tr_map_destroy frees the map and its key copies, not
 * the values (NULL ok). */
struct tr_map *tr_map_new(void);
void tr_map_destroy(struct tr_map *map);

/* The value stored under key, or NULL. */
void *tr_map_get(const struct tr_map *map, const char *key);

/* Stores value (not NULL) under a copy of key, replacing any previous value. Returns 0 or -1
 * (out of memory). */
__attribute__((warn_unused_result)) int tr_map_put(struct tr_map *map, const char *key,
                                                   void *value);

/* Removes key; returns its value or NULL. */
void *tr_map_del(struct tr_map *map, const char *key);

size_t tr_map_count(const struct tr_map *map);

/* Calls fn for every entry (order unspecified). fn must not change the map. */
void tr_map_each(const struct tr_map *map, void (*fn)(void *opaque, const char *key, void *value),
                 void *opaque);

#endif
