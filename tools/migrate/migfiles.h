/* migfiles: the migrations directory: NNN_name.up.sql / NNN_name.down.sql pairs, in version
 * order, with the SHA-256 of each up file. */
#ifndef CALLPIPE_MIGRATE_MIGFILES_H
#define CALLPIPE_MIGRATE_MIGFILES_H

#include <stddef.h>

struct mig_file {
	int version;
	char name[128];    /* the part after "NNN_", e.g. "add_call_sid" */
	char label[160];   /* file stem, e.g. "001_add_call_sid" */
	char *up_path;     /* owned */
	char *down_path;   /* owned */
	char checksum[65]; /* hex SHA-256 of the up file */
};

struct mig_set {
	struct mig_file *files; /* sorted by version; owned */
	size_t n;
};

/* Reads dir. Every *.sql file must be NNN_name.up.sql or NNN_name.down.sql, each version must
 * have exactly one up and one down file with the same name. Returns 0, or -1 with errstr naming
 * the offending file. Free with mig_set_free (also after failure). */
__attribute__((warn_unused_result)) int mig_scan(const char *dir, struct mig_set *set, char *errstr,
                                                 size_t errstr_size);
void mig_set_free(struct mig_set *set);

/* The file of version, or NULL. Borrowed from set. */
const struct mig_file *mig_find(const struct mig_set *set, int version);

/* Reads a whole file into a malloc'd NUL-terminated string (caller frees); NULL with errstr. */
char *mig_read(const char *path, size_t *len, char *errstr, size_t errstr_size);

/* Hex SHA-256 of data into out (65 bytes). Returns 0 or -1. */
__attribute__((warn_unused_result)) int mig_sha256_hex(const void *data, size_t len, char out[65]);

#endif
