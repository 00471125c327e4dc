/* metrics: a registry of counters, gauges and histograms with labels, rendered as Prometheus text.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX_LABELS 8
#define METRICS_MAX_BOUNDS 32

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric {
	struct metric *next;
	struct family *fam;
	size_t nlabels;
	char *keys[METRICS_MAX_LABELS], *values[METRICS_MAX_LABELS];
	_Atomic uint64_t bits; /* counter/gauge value: a double's bits, updated by CAS */
	/* histogram: guarded by lock so buckets, sum and count are always consistent */
	pthread_mutex_t lock;
	uint64_t buckets[METRICS_MAX_BOUNDS]; /* non-cumulative counts per bound */
	uint64_t count;
	double sum;
};

struct family {
	struct family *next;
	char *name, *help;
	enum metric_kind kind;
	double bounds[METRICS_MAX_BOUNDS];
	size_t nbounds;
	struct metric *series, **series_tail;
};

struct metrics {
	pthread_mutex_t lock; /* guards the lists; values are updated without it */
	struct family *families, **families_tail;
};

const double metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_latency_nbuckets =
    sizeof metrics_latency_buckets / sizeof metrics_latency_buckets[0];

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof *m);

	if (m == NULL)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->families_tail = &m->families;
	return m;
}

static void metric_free(struct metric *s)
{
	for (size_t i = 0; i < s->nlabels; i++) {
		free(s->keys[i]);
		free(s->values[i]);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void family_free(struct family *f)
{
	struct metric *s, *next;

	for (s = f->series; s != NULL; s = next) {
		next = s->next;
		metric_free(s);
	}
	free(f->name);
	free(f->help);
	free(f);
}

void metrics_destroy(struct metrics *m)
{
	struct family *f, *next;

	if (m == NULL)
		return;
	for (f = m->families; f != NULL; f = next) {
		next = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* Prometheus names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names the same without ':'. */
static bool metrics_name_ok(const char *s, bool label)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          (!label && c == ':') || (p != s && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

static struct family *family_find_locked(struct metrics *m, const char *name)
{
	for (struct family *f = m->families; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* Collects the NULL-terminated "key", "value" varargs. Returns the pair count or -1. */
static int metrics_collect_labels(va_list ap, const char **keys, const char **values)
{
	int n = 0;
	const char *k;

	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		if (n == METRICS_MAX_LABELS || v == NULL || !metrics_name_ok(k, true) ||
		    strcmp(k, "le") == 0)
			return -1;
		keys[n] = k;
		values[n] = v;
		n++;
	}
	return n;
}

static struct metric *series_find_locked(struct family *f, const char **keys, const char **values,
                                         size_t n)
{
	for (struct metric *s = f->series; s != NULL; s = s->next) {
		bool same = s->nlabels == n;

		for (size_t i = 0; same && i < n; i++)
			same = strcmp(s->keys[i], keys[i]) == 0 &&
			       strcmp(s->values[i], values[i]) == 0;
		if (same)
			return s;
	}
	return NULL;
}

static struct metric *series_new(struct family *f, const char **keys, const char **values, size_t n)
{
	struct metric *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->fam = f;
	for (size_t i = 0; i < n; i++) {
		s->keys[i] = strdup(keys[i]);
		s->values[i] = strdup(values[i]);
		s->nlabels = i + 1;
		if (s->keys[i] == NULL || s->values[i] == NULL) {
			metric_free(s);
			return NULL;
		}
	}
	return s;
}

static struct metric *metrics_get(struct metrics *m, enum metric_kind kind, const char *name,
                                  const char *help, const double *bounds, size_t nbounds,
                                  va_list ap)
{
	const char *keys[METRICS_MAX_LABELS], *values[METRICS_MAX_LABELS];
	struct family *f;
	struct metric *s = NULL;
	int n = metrics_collect_labels(ap, keys, values);

	if (m == NULL || n < 0 || !metrics_name_ok(name, false) || nbounds > METRICS_MAX_BOUNDS)
		return NULL;
	for (size_t i = 1; i < nbounds; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return NULL;
	pthread_mutex_lock(&m->lock);
	f = family_find_locked(m, name);
	if (f != NULL) {
		if (f->kind != kind || f->nbounds != nbounds ||
		    (nbounds > 0 && memcmp(f->bounds, bounds, nbounds * sizeof *bounds) != 0))
			goto out; /* a clash: same name, another kind or other buckets */
		s = series_find_locked(f, keys, values, (size_t)n);
		if (s != NULL)
			goto out;
	} else {
		f = calloc(1, sizeof *f);
		if (f == NULL)
			goto out;
		f->name = strdup(name);
		f->help = strdup(help != NULL ? help : "");
		if (f->name == NULL || f->help == NULL) {
			family_free(f);
			goto out;
		}
		f->kind = kind;
		f->nbounds = nbounds;
		if (nbounds > 0)
			memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
		f->series_tail = &f->series;
		*m->families_tail = f;
		m->families_tail = &f->next;
	}
	s = series_new(f, keys, values, (size_t)n);
	if (s != NULL) {
		*f->series_tail = s;
		f->series_tail = &s->next;
	}
out:
	pthread_mutex_unlock(&m->lock);
	return s;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help, ...)
{
	struct metric *s;
	va_list ap;

	va_start(ap, help);
	s = metrics_get(m, METRIC_COUNTER, name, help, NULL, 0, ap);
	va_end(ap);
	return s;
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help, ...)
{
	struct metric *s;
	va_list ap;

	va_start(ap, help);
	s = metrics_get(m, METRIC_GAUGE, name, help, NULL, 0, ap);
	va_end(ap);
	return s;
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const double *bounds, size_t nbounds, ...)
{
	struct metric *s;
	va_list ap;

	if (bounds == NULL && nbounds > 0)
		return NULL;
	va_start(ap, nbounds);
	s = metrics_get(m, METRIC_HISTOGRAM, name, help, bounds, nbounds, ap);
	va_end(ap);
	return s;
}

static double bits_to_double(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, sizeof d);
	return d;
}

static uint64_t double_to_bits(double d)
{
	uint64_t bits;

	memcpy(&bits, &d, sizeof bits);
	return bits;
}

void metric_add(struct metric *c, double v)
{
	uint64_t old;

	if (c == NULL || c->fam->kind == METRIC_HISTOGRAM || isnan(v))
		return;
	if (c->fam->kind == METRIC_COUNTER && v < 0)
		return; /* counters only go up */
	old = atomic_load(&c->bits);
	while (
	    !atomic_compare_exchange_weak(&c->bits, &old, double_to_bits(bits_to_double(old) + v)))
		;
}

void metric_inc(struct metric *c)
{
	metric_add(c, 1);
}

void metric_set(struct metric *g, double v)
{
	if (g == NULL || g->fam->kind != METRIC_GAUGE)
		return;
	atomic_store(&g->bits, double_to_bits(v));
}

void metric_observe(struct metric *h, double v)
{
	if (h == NULL || h->fam->kind != METRIC_HISTOGRAM || isnan(v))
		return;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->fam->nbounds; i++) {
		if (v <= h->fam->bounds[i]) {
			h->buckets[i]++;
			break;
		}
	}
	h->count++;
	h->sum += v;
	pthread_mutex_unlock(&h->lock);
}

double metric_value(const struct metric *c)
{
	double v;

	if (c == NULL)
		return 0;
	if (c->fam->kind != METRIC_HISTOGRAM)
		return bits_to_double(atomic_load(&((struct metric *)c)->bits));
	pthread_mutex_lock(&((struct metric *)c)->lock);
	v = (double)c->count;
	pthread_mutex_unlock(&((struct metric *)c)->lock);
	return v;
}

/* Prometheus float text: shortest form that reads back exactly, +Inf/-Inf/NaN spelled out. */
static void metrics_put_double(FILE *fp, double v)
{
	char buf[40];

	if (isnan(v)) {
		fputs("NaN", fp);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", fp);
		return;
	}
	/* the range first: casting 1e21 to long long is undefined behaviour */
	if (fabs(v) < 1e15 && v == (double)(long long)v) {
		/* Integral values (most counters) print plainly: "1000000", not "1e+06". */
		fprintf(fp, "%lld", (long long)v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, fp);
}

/* Escapes a HELP text (backslash, newline) or a label value (also the double quote). */
static void metrics_put_escaped(FILE *fp, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", fp);
		else if (*s == '\n')
			fputs("\\n", fp);
		else if (quote && *s == '"')
			fputs("\\\"", fp);
		else
			fputc(*s, fp);
	}
}

/* name{k="v",...,le="x"} with an optional le; nothing when there are no labels at all. */
static void metrics_put_series(FILE *fp, const char *name, const char *suffix,
                               const struct metric *s, const double *le)
{
	fputs(name, fp);
	fputs(suffix, fp);
	if (s->nlabels == 0 && le == NULL)
		return;
	fputc('{', fp);
	for (size_t i = 0; i < s->nlabels; i++) {
		fprintf(fp, "%s%s=\"", i > 0 ? "," : "", s->keys[i]);
		metrics_put_escaped(fp, s->values[i], true);
		fputc('"', fp);
	}
	if (le != NULL) {
		fprintf(fp, "%sle=\"", s->nlabels > 0 ? "," : "");
		metrics_put_double(fp, *le);
		fputc('"', fp);
	}
	fputc('}', fp);
}

static void metrics_put_histogram(FILE *fp, const struct family *f, struct metric *s)
{
	uint64_t buckets[METRICS_MAX_BOUNDS], count, cumulative = 0;
	double sum, inf = INFINITY;

	pthread_mutex_lock(&s->lock);
	memcpy(buckets, s->buckets, sizeof buckets);
	count = s->count;
	sum = s->sum;
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < f->nbounds; i++) {
		cumulative += buckets[i];
		metrics_put_series(fp, f->name, "_bucket", s, &f->bounds[i]);
		fprintf(fp, " %llu\n", (unsigned long long)cumulative);
	}
	metrics_put_series(fp, f->name, "_bucket", s, &inf);
	fprintf(fp, " %llu\n", (unsigned long long)count);
	metrics_put_series(fp, f->name, "_sum", s, NULL);
	fputc(' ', fp);
	metrics_put_double(fp, sum);
	fputc('\n', fp);
	metrics_put_series(fp, f->name, "_count", s, NULL);
	fprintf(fp, " %llu\n", (unsigned long long)count);
}

char *metrics_render(struct metrics *m)
{
	static const char *const kinds[] = {"counter", "gauge", "histogram"};
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (fp == NULL)
		return NULL;
	if (m != NULL) {
		pthread_mutex_lock(&m->lock);
		for (struct family *f = m->families; f != NULL; f = f->next) {
			fprintf(fp, "# HELP %s ", f->name);
			metrics_put_escaped(fp, f->help, false);
			fprintf(fp, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
			for (struct metric *s = f->series; s != NULL; s = s->next) {
				if (f->kind == METRIC_HISTOGRAM) {
					metrics_put_histogram(fp, f, s);
					continue;
				}
				metrics_put_series(fp, f->name, "", s, NULL);
				fputc(' ', fp);
				metrics_put_double(fp, metric_value(s));
				fputc('\n', fp);
			}
		}
		pthread_mutex_unlock(&m->lock);
	}
	if (fclose(fp) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
