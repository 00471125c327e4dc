/* strmap: a small string-keyed hash map of pointers (open addressing), e.g. the transcriber's
 * per-call state and elevensim's calls. Not thread-safe. */
#ifndef CALLPIPE_STRMAP_H
#define CALLPIPE_STRMAP_H

#include <stddef.h>

struct strmap;

/* An empty map. NULL when out of memory. strmap_destroy frees the map and its key copies, not
 * the values (NULL ok). */
struct strmap *strmap_new(void);
void strmap_destroy(struct strmap *map);

/* The value stored under key, or NULL. */
void *strmap_get(const struct strmap *map, const char *key);

/* Stores value (not NULL) under a copy of key, replacing any previous value. Returns 0 or -1
 * (out of memory). */
__attribute__((warn_unused_result)) int strmap_put(struct strmap *map, const char *key,
                                                   void *value);

/* Removes key; returns its value or NULL. */
void *strmap_del(struct strmap *map, const char *key);

size_t strmap_count(const struct strmap *map);

/* Calls fn for every entry (order unspecified). fn must not change the map. */
void strmap_each(const struct strmap *map, void (*fn)(void *opaque, const char *key, void *value),
                 void *opaque);

/* Removes every entry, passing each value to free_value (NULL: values are left alone). */
void strmap_clear(struct strmap *map, void (*free_value)(void *value));

#endif
