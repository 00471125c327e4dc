/* map: string-keyed open-addressing hash map (FNV-1a, linear probing, backward-shift delete). */
#include "map.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct tr_map_slot {
	char *key; /* NULL = empty */
	void *value;
	uint64_t hash;
};

struct tr_map {
	struct tr_map_slot *slots;
	size_t cap; /* power of two */
	size_t count;
};

static uint64_t tr_map_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct tr_map *tr_map_new(void)
{
	struct tr_map *map = calloc(1, sizeof *map);

	if (!map)
		return NULL;
	map->cap = 16;
	map->slots = calloc(map->cap, sizeof *map->slots);
	if (!map->slots) {
		free(map);
		return NULL;
	}
	return map;
}

void tr_map_destroy(struct tr_map *map)
{
	if (!map)
		return;
	for (size_t i = 0; i < map->cap; i++)
		free(map->slots[i].key);
	free(map->slots);
	free(map);
}

/* Index of key's slot, or of the empty slot where it would go. */
static size_t tr_map_find(const struct tr_map *map, const char *key, uint64_t hash)
{
	size_t i = (size_t)hash & (map->cap - 1);

	while (map->slots[i].key &&
	       (map->slots[i].hash != hash || strcmp(map->slots[i].key, key) != 0))
		i = (i + 1) & (map->cap - 1);
	return i;
}

void *tr_map_get(const struct tr_map *map, const char *key)
{
	size_t i = tr_map_find(map, key, tr_map_hash(key));

	return map->slots[i].key ? map->slots[i].value : NULL;
}

static int tr_map_grow(struct tr_map *map)
{
	size_t cap = map->cap * 2;
	struct tr_map_slot *slots = calloc(cap, sizeof *slots);
	struct tr_map old = *map;

	if (!slots)
		return -1;
	map->slots = slots;
	map->cap = cap;
	for (size_t i = 0; i < old.cap; i++) {
		if (!old.slots[i].key)
			continue;
		map->slots[tr_map_find(map, old.slots[i].key, old.slots[i].hash)] = old.slots[i];
	}
	free(old.slots);
	return 0;
}

int tr_map_put(struct tr_map *map, const char *key, void *value)
{
	uint64_t hash = tr_map_hash(key);
	size_t i;

	if ((map->count + 1) * 4 > map->cap * 3 && tr_map_grow(map) < 0)
		return -1;
	i = tr_map_find(map, key, hash);
	if (!map->slots[i].key) {
		char *copy = strdup(key);

		if (!copy)
			return -1;
		map->slots[i].key = copy;
		map->slots[i].hash = hash;
		map->count++;
	}
	map->slots[i].value = value;
	return 0;
}

void *tr_map_del(struct tr_map *map, const char *key)
{
	size_t i = tr_map_find(map, key, tr_map_hash(key));
	size_t j = i;
	void *value;

	if (!map->slots[i].key)
		return NULL;
	value = map->slots[i].value;
	free(map->slots[i].key);
	map->slots[i].key = NULL;
	map->count--;
	/* Backward-shift: move later entries of the probe run into the hole when their home slot
	 * does not lie cyclically in (hole, entry]. */
	for (;;) {
		size_t home;

		j = (j + 1) & (map->cap - 1);
		if (!map->slots[j].key)
			break;
		home = (size_t)map->slots[j].hash & (map->cap - 1);
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			map->slots[i] = map->slots[j];
			map->slots[j].key = NULL;
			i = j;
		}
	}
	return value;
}

size_t tr_map_count(const struct tr_map *map)
{
	return map->count;
}

void tr_map_each(const struct tr_map *map, void (*fn)(void *opaque, const char *key, void *value),
                 void *opaque)
{
	for (size_t i = 0; i < map->cap; i++)
		if (map->slots[i].key)
			fn(opaque, map->slots[i].key, map->slots[i].value);
}
