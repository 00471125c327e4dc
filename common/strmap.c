/* strmap: string-keyed open-addressing hash map (FNV-1a, linear probing, backward-shift delete). */
#include "strmap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strmap_slot {
	char *key; /* NULL = empty */
	void *value;
	uint64_t hash;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap; /* power of two */
	size_t count;
};

static uint64_t strmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct strmap *strmap_new(void)
{
	struct strmap *map = calloc(1, sizeof *map);

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

void strmap_destroy(struct strmap *map)
{
	if (!map)
		return;
	for (size_t i = 0; i < map->cap; i++)
		free(map->slots[i].key);
	free(map->slots);
	free(map);
}

/* Index of key's slot, or of the empty slot where it would go. */
static size_t strmap_find(const struct strmap *map, const char *key, uint64_t hash)
{
	size_t i = (size_t)hash & (map->cap - 1);

	while (map->slots[i].key &&
	       (map->slots[i].hash != hash || strcmp(map->slots[i].key, key) != 0))
		i = (i + 1) & (map->cap - 1);
	return i;
}

void *strmap_get(const struct strmap *map, const char *key)
{
	size_t i = strmap_find(map, key, strmap_hash(key));

	return map->slots[i].key ? map->slots[i].value : NULL;
}

static int strmap_grow(struct strmap *map)
{
	size_t cap = map->cap * 2;
	struct strmap_slot *slots = calloc(cap, sizeof *slots);
	struct strmap old = *map;

	if (!slots)
		return -1;
	map->slots = slots;
	map->cap = cap;
	for (size_t i = 0; i < old.cap; i++) {
		if (!old.slots[i].key)
			continue;
		map->slots[strmap_find(map, old.slots[i].key, old.slots[i].hash)] = old.slots[i];
	}
	free(old.slots);
	return 0;
}

int strmap_put(struct strmap *map, const char *key, void *value)
{
	uint64_t hash = strmap_hash(key);
	size_t i;

	if ((map->count + 1) * 4 > map->cap * 3 && strmap_grow(map) < 0)
		return -1;
	i = strmap_find(map, key, hash);
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

void *strmap_del(struct strmap *map, const char *key)
{
	size_t i = strmap_find(map, key, strmap_hash(key));
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

size_t strmap_count(const struct strmap *map)
{
	return map->count;
}

void strmap_each(const struct strmap *map, void (*fn)(void *opaque, const char *key, void *value),
                 void *opaque)
{
	for (size_t i = 0; i < map->cap; i++)
		if (map->slots[i].key)
			fn(opaque, map->slots[i].key, map->slots[i].value);
}

void strmap_clear(struct strmap *map, void (*free_value)(void *value))
{
	for (size_t i = 0; i < map->cap; i++) {
		if (!map->slots[i].key)
			continue;
		if (free_value)
			free_value(map->slots[i].value);
		free(map->slots[i].key);
		map->slots[i].key = NULL;
	}
	map->count = 0;
}
