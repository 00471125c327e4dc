/* migfiles: scans the migrations directory into sorted, checksummed up/down pairs. */
#include "migfiles.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mig_dir { MIG_UP, MIG_DOWN };

/* Splits "NNN_name.up.sql" into version, name and direction. Returns 0, or -1 if the name does
 * not follow the pattern. */
static int mig_parse_name(const char *fname, int *version, char *name, size_t name_size,
                          enum mig_dir *dir)
{
	const char *p = fname, *us, *suffix;
	size_t len = strlen(fname), nlen;
	long v = 0;

	if (len > 7 && strcmp(fname + len - 7, ".up.sql") == 0) {
		*dir = MIG_UP;
		suffix = fname + len - 7;
	} else if (len > 9 && strcmp(fname + len - 9, ".down.sql") == 0) {
		*dir = MIG_DOWN;
		suffix = fname + len - 9;
	} else {
		return -1;
	}
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (*p - '0');
		if (v > 999999)
			return -1;
	}
	if (p == fname || *p != '_')
		return -1;
	us = p + 1;
	nlen = (size_t)(suffix - us);
	if (nlen == 0 || nlen >= name_size)
		return -1;
	for (const char *q = us; q < suffix; q++)
		if (!(isalnum((unsigned char)*q) || *q == '_' || *q == '-'))
			return -1;
	memcpy(name, us, nlen);
	name[nlen] = '\0';
	*version = (int)v;
	return 0;
}

static int mig_cmp(const void *a, const void *b)
{
	const struct mig_file *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

char *mig_read(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL, *grown;
	size_t cap = 0, n = 0, r;

	if (!fp) {
		snprintf(errstr, errstr_size, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 16384;
			grown = realloc(buf, cap);
			if (!grown) {
				snprintf(errstr, errstr_size, "out of memory reading %s", path);
				free(buf);
				buf = NULL;
				goto out;
			}
			buf = grown;
		}
		r = fread(buf + n, 1, cap - n - 1, fp);
		n += r;
	} while (r > 0);
	if (ferror(fp)) {
		snprintf(errstr, errstr_size, "cannot read %s", path);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
out:
	fclose(fp);
	return buf;
}

int mig_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Returns the entry for version, appending a new one when absent; NULL on allocation failure. */
static struct mig_file *mig_slot(struct mig_set *set, int version, size_t *cap)
{
	struct mig_file *grown;

	for (size_t i = 0; i < set->n; i++)
		if (set->files[i].version == version)
			return &set->files[i];
	if (set->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		grown = realloc(set->files, *cap * sizeof *grown);
		if (!grown)
			return NULL;
		set->files = grown;
	}
	memset(&set->files[set->n], 0, sizeof set->files[0]);
	set->files[set->n].version = version;
	return &set->files[set->n++];
}

/* Adds one parsed file to set. Returns 0, or -1 with errstr. */
static int mig_add(struct mig_set *set, size_t *cap, const char *dir, const char *fname,
                   int version, const char *name, enum mig_dir kind, char *errstr,
                   size_t errstr_size)
{
	struct mig_file *f = mig_slot(set, version, cap);
	char **slot;

	if (!f) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if (f->name[0] && strcmp(f->name, name) != 0) {
		snprintf(errstr, errstr_size,
		         "%s: version %03d is already used by %03d_%s (one name per version)",
		         fname, version, version, f->name);
		return -1;
	}
	slot = kind == MIG_UP ? &f->up_path : &f->down_path;
	if (*slot) {
		snprintf(errstr, errstr_size, "%s: duplicate %s migration for version %03d", fname,
		         kind == MIG_UP ? "up" : "down", version);
		return -1;
	}
	snprintf(f->name, sizeof f->name, "%s", name);
	snprintf(f->label, sizeof f->label, "%03d_%s", version, name);
	if (asprintf(slot, "%s/%s", dir, fname) < 0) {
		*slot = NULL;
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	return 0;
}

/* Checks pairs and computes the up checksums. Returns 0, or -1 with errstr. */
static int mig_finish(struct mig_set *set, char *errstr, size_t errstr_size)
{
	qsort(set->files, set->n, sizeof set->files[0], mig_cmp);
	for (size_t i = 0; i < set->n; i++) {
		struct mig_file *f = &set->files[i];
		size_t len = 0;
		char *sql;
		int rc;

		if (!f->up_path || !f->down_path) {
			snprintf(errstr, errstr_size,
			         "%s: missing %s.%s.sql (every migration needs both)", f->label,
			         f->label, f->up_path ? "down" : "up");
			return -1;
		}
		sql = mig_read(f->up_path, &len, errstr, errstr_size);
		if (!sql)
			return -1;
		rc = mig_sha256_hex(sql, len, f->checksum);
		free(sql);
		if (rc < 0) {
			snprintf(errstr, errstr_size, "%s: SHA-256 failed", f->up_path);
			return -1;
		}
	}
	return 0;
}

int mig_scan(const char *dir, struct mig_set *set, char *errstr, size_t errstr_size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;
	int rc = -1;

	memset(set, 0, sizeof *set);
	if (!d) {
		snprintf(errstr, errstr_size, "cannot open migrations directory %s: %s", dir,
		         strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		const char *fname = de->d_name;
		size_t len = strlen(fname);
		char name[128];
		enum mig_dir kind;
		int version;

		if (len < 4 || strcmp(fname + len - 4, ".sql") != 0)
			continue; /* README and the like */
		if (mig_parse_name(fname, &version, name, sizeof name, &kind) < 0) {
			snprintf(errstr, errstr_size,
			         "%s/%s: not a migration name (want NNN_name.up.sql or "
			         "NNN_name.down.sql)",
			         dir, fname);
			goto out;
		}
		if (mig_add(set, &cap, dir, fname, version, name, kind, errstr, errstr_size) < 0)
			goto out;
	}
	rc = mig_finish(set, errstr, errstr_size);
out:
	closedir(d);
	return rc;
}

const struct mig_file *mig_find(const struct mig_set *set, int version)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->files[i].version == version)
			return &set->files[i];
	return NULL;
}

void mig_set_free(struct mig_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		free(set->files[i].up_path);
		free(set->files[i].down_path);
	}
	free(set->files);
	memset(set, 0, sizeof *set);
}
