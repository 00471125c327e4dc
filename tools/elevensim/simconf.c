/* simconf: elevensim's run-time knobs, per-call scripts and the seeded coin (the start-up option
 * table: simopts.c). */
#include "simconf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim_conf {
	pthread_mutex_t mu;
	struct sim_knobs k;
	json_t *scripts; /* call_sid -> {answers: [names], mode: name} */
};

static const char *const sim_answer_names[] = {
    [SIM_ANSWER_OK] = "ok",
    [SIM_ANSWER_429] = "429",
    [SIM_ANSWER_500] = "500",
    [SIM_ANSWER_502] = "502",
    [SIM_ANSWER_503] = "503",
    [SIM_ANSWER_504] = "504",
    [SIM_ANSWER_400] = "400",
    [SIM_ANSWER_422] = "422",
    [SIM_ANSWER_SUCCESS_FALSE] = "success_false",
    [SIM_ANSWER_HANG] = "hang",
    [SIM_ANSWER_PLACED_502] = "placed_502",
    [SIM_ANSWER_PLACED_504] = "placed_504",
};
#define SIM_NANSWERS (sizeof sim_answer_names / sizeof sim_answer_names[0])

static const char *const sim_mode_names[] = {
    [SIM_MODE_NORMAL] = "normal",
    [SIM_MODE_RACE] = "race",
    [SIM_MODE_INITIATION_FAILURE] = "initiation_failure",
    [SIM_MODE_NO_POST_CALL] = "no_post_call",
};
#define SIM_NMODES (sizeof sim_mode_names / sizeof sim_mode_names[0])

const char *sim_answer_name(enum sim_answer a)
{
	return (size_t)a < SIM_NANSWERS ? sim_answer_names[a] : "?";
}

const char *sim_mode_name(enum sim_mode m)
{
	return (size_t)m < SIM_NMODES ? sim_mode_names[m] : "?";
}

static int sim_lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

double sim_hash01(uint64_t seed, const char *s, uint64_t n)
{
	uint64_t h = 1469598103934665603ULL ^ seed;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h ^= n + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
	/* splitmix64 finaliser */
	h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ULL;
	h = (h ^ (h >> 27)) * 0x94D049BB133111EBULL;
	h ^= h >> 31;
	return (double)(h >> 11) / 9007199254740992.0; /* 2^53 */
}

/* The answer shares together (at most 1; the rest is answered ok). */
static double sim_answer_shares(const struct sim_knobs *k)
{
	return k->share_429 + k->share_500 + k->share_503 + k->share_success_false + k->share_hang +
	       k->share_placed_502 + k->share_placed_504;
}

static int sim_parse_share(const char *name, const char *s, double *out, char *errstr,
                           size_t errstr_size)
{
	char *end;
	double v = strtod(s ? s : "", &end);

	if (!s || !*s || *end || !isfinite(v) || v < 0 || v > 1) {
		snprintf(errstr, errstr_size, "%s: '%s' is not a share between 0 and 1", name,
		         s ? s : "");
		return -1;
	}
	*out = v;
	return 0;
}

struct sim_conf *sim_conf_new(const struct sim_options *o, char *errstr, size_t errstr_size)
{
	struct sim_conf *c = calloc(1, sizeof *c);
	struct sim_knobs *k;
	double sum;

	if (!c || !(c->scripts = json_object())) {
		snprintf(errstr, errstr_size, "out of memory");
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	k = &c->k;
	if (sim_parse_share("429-share", o->share_429, &k->share_429, errstr, errstr_size) ||
	    sim_parse_share("500-share", o->share_500, &k->share_500, errstr, errstr_size) ||
	    sim_parse_share("503-share", o->share_503, &k->share_503, errstr, errstr_size) ||
	    sim_parse_share("fail-share", o->share_success_false, &k->share_success_false, errstr,
	                    errstr_size) ||
	    sim_parse_share("hang-share", o->share_hang, &k->share_hang, errstr, errstr_size) ||
	    sim_parse_share("placed-502-share", o->share_placed_502, &k->share_placed_502, errstr,
	                    errstr_size) ||
	    sim_parse_share("placed-504-share", o->share_placed_504, &k->share_placed_504, errstr,
	                    errstr_size) ||
	    sim_parse_share("race-share", o->share_race, &k->share_race, errstr, errstr_size) ||
	    sim_parse_share("initiation-failure-share", o->share_initiation_failure,
	                    &k->share_initiation_failure, errstr, errstr_size) ||
	    sim_parse_share("no-post-call-share", o->share_no_post_call, &k->share_no_post_call,
	                    errstr, errstr_size))
		goto fail;
	sum = sim_answer_shares(k);
	if (sum > 1.0 + 1e-9) {
		snprintf(errstr, errstr_size, "the answer shares add up to %.3f (> 1)", sum);
		goto fail;
	}
	sum = k->share_race + k->share_initiation_failure + k->share_no_post_call;
	if (sum > 1.0 + 1e-9) {
		snprintf(errstr, errstr_size, "the mode shares add up to %.3f (> 1)", sum);
		goto fail;
	}
	k->latency_ms = (long)o->latency_ms;
	k->turns = (int)o->turns;
	k->turn_delay_ms = (long)o->turn_delay_ms;
	k->seed = (uint64_t)o->seed;
	k->retry_after_s = (long)o->retry_after_s;
	k->hang_ms = (long)o->hang_ms;
	k->webhooks = o->webhook_url && *o->webhook_url;
	snprintf(k->webhook_url, sizeof k->webhook_url, "%s", o->webhook_url ? o->webhook_url : "");
	k->webhook_retries = (int)o->webhook_retries;
	k->webhook_backoff_ms = (long)o->webhook_backoff_ms;
	k->webhook_timeout_ms = (long)o->webhook_timeout_ms;
	return c;
fail:
	sim_conf_free(c);
	return NULL;
}

void sim_conf_free(struct sim_conf *c)
{
	if (!c)
		return;
	json_decref(c->scripts);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void sim_conf_get(struct sim_conf *c, struct sim_knobs *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->k;
	pthread_mutex_unlock(&c->mu);
}

enum sim_knob_type { KNOB_LONG, KNOB_INT, KNOB_SHARE, KNOB_BOOL, KNOB_URL, KNOB_SEED };

struct sim_knob_def {
	const char *name;
	enum sim_knob_type type;
	size_t offset;
	long long min, max;
};

#define KNOB(name, type, field, lo, hi)                               \
	{                                                             \
		name, type, offsetof(struct sim_knobs, field), lo, hi \
	}
static const struct sim_knob_def sim_knob_defs[] = {
    KNOB("latency_ms", KNOB_LONG, latency_ms, 0, 3600000),
    KNOB("429_share", KNOB_SHARE, share_429, 0, 0),
    KNOB("500_share", KNOB_SHARE, share_500, 0, 0),
    KNOB("503_share", KNOB_SHARE, share_503, 0, 0),
    KNOB("fail_share", KNOB_SHARE, share_success_false, 0, 0),
    KNOB("hang_share", KNOB_SHARE, share_hang, 0, 0),
    KNOB("placed_502_share", KNOB_SHARE, share_placed_502, 0, 0),
    KNOB("placed_504_share", KNOB_SHARE, share_placed_504, 0, 0),
    KNOB("race_share", KNOB_SHARE, share_race, 0, 0),
    KNOB("initiation_failure_share", KNOB_SHARE, share_initiation_failure, 0, 0),
    KNOB("no_post_call_share", KNOB_SHARE, share_no_post_call, 0, 0),
    KNOB("turns", KNOB_INT, turns, 0, 1000),
    KNOB("turn_delay_ms", KNOB_LONG, turn_delay_ms, 0, 3600000),
    KNOB("seed", KNOB_SEED, seed, 0, 0),
    KNOB("retry_after_s", KNOB_LONG, retry_after_s, 0, 3600),
    KNOB("hang_ms", KNOB_LONG, hang_ms, 0, 86400000),
    KNOB("webhooks", KNOB_BOOL, webhooks, 0, 0),
    KNOB("webhook_url", KNOB_URL, webhook_url, 0, 0),
    KNOB("webhook_retries", KNOB_INT, webhook_retries, 0, 100),
    KNOB("webhook_backoff_ms", KNOB_LONG, webhook_backoff_ms, 0, 3600000),
    KNOB("webhook_timeout_ms", KNOB_LONG, webhook_timeout_ms, 10, 600000),
};
#define SIM_NKNOBS (sizeof sim_knob_defs / sizeof sim_knob_defs[0])

static int sim_knob_set(struct sim_knobs *k, const struct sim_knob_def *d, const json_t *v,
                        char *errstr, size_t errstr_size)
{
	char *field = (char *)k + d->offset;

	switch (d->type) {
	case KNOB_LONG:
	case KNOB_INT:
		if (!json_is_integer(v) || json_integer_value(v) < d->min ||
		    json_integer_value(v) > d->max)
			goto bad;
		if (d->type == KNOB_LONG)
			*(long *)(void *)field = (long)json_integer_value(v);
		else
			*(int *)(void *)field = (int)json_integer_value(v);
		return 0;
	case KNOB_SEED:
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			goto bad;
		*(uint64_t *)(void *)field = (uint64_t)json_integer_value(v);
		return 0;
	case KNOB_SHARE:
		if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
			goto bad;
		*(double *)(void *)field = json_number_value(v);
		return 0;
	case KNOB_BOOL:
		if (!json_is_boolean(v))
			goto bad;
		*(bool *)(void *)field = json_is_true(v);
		return 0;
	case KNOB_URL:
		if (!json_is_string(v) || json_string_length(v) >= sizeof k->webhook_url)
			goto bad;
		snprintf(k->webhook_url, sizeof k->webhook_url, "%s", json_string_value(v));
		return 0;
	}
bad:
	snprintf(errstr, errstr_size, "field '%s' has a bad type or is out of range", d->name);
	return -1;
}

/* Validates one script {answers: [...], mode: "..."}. */
static int sim_script_check(const char *sid, const json_t *s, char *errstr, size_t errstr_size)
{
	const json_t *answers = json_object_get(s, "answers");
	const json_t *mode = json_object_get(s, "mode");
	size_t i;
	json_t *a;

	if (!json_is_object(s))
		goto bad;
	if (answers && (!json_is_array(answers) || json_array_size(answers) > SIM_SCRIPT_MAX))
		goto bad;
	json_array_foreach(answers, i, a)
	{
		if (sim_lookup(sim_answer_names, SIM_NANSWERS, json_string_value(a)) < 0)
			goto bad;
	}
	if (mode && sim_lookup(sim_mode_names, SIM_NMODES, json_string_value(mode)) < 0)
		goto bad;
	return 0;
bad:
	snprintf(errstr, errstr_size,
	         "calls.%s: expected {\"answers\": [ok|429|500|502|503|504|400|422|success_false|"
	         "hang|placed_502|placed_504, ...] (at most %d), \"mode\": "
	         "normal|race|initiation_failure|no_post_call}",
	         sid, SIM_SCRIPT_MAX);
	return -1;
}

int sim_conf_update(struct sim_conf *c, const json_t *patch, char *errstr, size_t errstr_size)
{
	struct sim_knobs k;
	const char *key, *sid;
	json_t *v, *s;
	const json_t *calls = NULL;
	double sum;

	if (!json_is_object(patch)) {
		snprintf(errstr, errstr_size, "body must be a JSON object");
		return -1;
	}
	pthread_mutex_lock(&c->mu);
	k = c->k;
	pthread_mutex_unlock(&c->mu);
	json_object_foreach((json_t *)patch, key, v)
	{
		size_t i;

		if (strcmp(key, "calls") == 0) {
			if (!json_is_object(v)) {
				snprintf(errstr, errstr_size, "field 'calls' must be an object");
				return -1;
			}
			json_object_foreach(v, sid, s)
			{
				if (!json_is_null(s) &&
				    sim_script_check(sid, s, errstr, errstr_size))
					return -1;
			}
			calls = v;
			continue;
		}
		for (i = 0; i < SIM_NKNOBS; i++)
			if (strcmp(key, sim_knob_defs[i].name) == 0)
				break;
		if (i == SIM_NKNOBS) {
			snprintf(errstr, errstr_size, "unknown field '%s'", key);
			return -1;
		}
		if (sim_knob_set(&k, &sim_knob_defs[i], v, errstr, errstr_size))
			return -1;
	}
	sum = sim_answer_shares(&k);
	if (sum > 1.0 + 1e-9 ||
	    k.share_race + k.share_initiation_failure + k.share_no_post_call > 1.0 + 1e-9) {
		snprintf(errstr, errstr_size, "shares add up to more than 1");
		return -1;
	}
	pthread_mutex_lock(&c->mu);
	c->k = k;
	json_object_foreach((json_t *)calls, sid, s)
	{
		if (json_is_null(s))
			json_object_del(c->scripts, sid);
		else
			json_object_set(c->scripts, sid, s);
	}
	pthread_mutex_unlock(&c->mu);
	return 0;
}

json_t *sim_conf_json(struct sim_conf *c)
{
	json_t *root = json_object();
	struct sim_knobs k;

	if (!root)
		return NULL;
	pthread_mutex_lock(&c->mu);
	k = c->k;
	json_object_set_new(root, "calls", json_deep_copy(c->scripts));
	pthread_mutex_unlock(&c->mu);
	for (size_t i = 0; i < SIM_NKNOBS; i++) {
		const struct sim_knob_def *d = &sim_knob_defs[i];
		const char *field = (const char *)&k + d->offset;
		json_t *v = NULL;

		switch (d->type) {
		case KNOB_LONG:
			v = json_integer(*(const long *)(const void *)field);
			break;
		case KNOB_INT:
			v = json_integer(*(const int *)(const void *)field);
			break;
		case KNOB_SEED:
			v = json_integer((json_int_t) * (const uint64_t *)(const void *)field);
			break;
		case KNOB_SHARE:
			v = json_real(*(const double *)(const void *)field);
			break;
		case KNOB_BOOL:
			v = json_boolean(*(const bool *)(const void *)field);
			break;
		case KNOB_URL:
			v = json_string(k.webhook_url);
			break;
		}
		json_object_set_new(root, d->name, v);
	}
	return root;
}

/* The script of call_sid (borrowed under c->mu), or NULL. */
static const json_t *sim_script(struct sim_conf *c, const char *call_sid)
{
	return json_object_get(c->scripts, call_sid);
}

enum sim_answer sim_conf_answer(struct sim_conf *c, const char *call_sid, int n)
{
	const json_t *answers;
	struct sim_knobs k;
	double u, acc = 0;
	int scripted = -1;

	pthread_mutex_lock(&c->mu);
	answers = json_object_get(sim_script(c, call_sid), "answers");
	if (n >= 0 && (size_t)n < json_array_size(answers))
		scripted = sim_lookup(sim_answer_names, SIM_NANSWERS,
		                      json_string_value(json_array_get(answers, (size_t)n)));
	k = c->k;
	pthread_mutex_unlock(&c->mu);
	if (scripted >= 0)
		return (enum sim_answer)scripted;
	u = sim_hash01(k.seed, call_sid, (uint64_t)n);
	if (u < (acc += k.share_429))
		return SIM_ANSWER_429;
	if (u < (acc += k.share_500))
		return SIM_ANSWER_500;
	if (u < (acc += k.share_503))
		return SIM_ANSWER_503;
	if (u < (acc += k.share_success_false))
		return SIM_ANSWER_SUCCESS_FALSE;
	if (u < (acc += k.share_hang))
		return SIM_ANSWER_HANG;
	if (u < (acc += k.share_placed_502))
		return SIM_ANSWER_PLACED_502;
	if (u < (acc += k.share_placed_504))
		return SIM_ANSWER_PLACED_504;
	return SIM_ANSWER_OK;
}

enum sim_mode sim_conf_mode(struct sim_conf *c, const char *call_sid)
{
	struct sim_knobs k;
	double u, acc = 0;
	int scripted;

	pthread_mutex_lock(&c->mu);
	scripted = sim_lookup(sim_mode_names, SIM_NMODES,
	                      json_string_value(json_object_get(sim_script(c, call_sid), "mode")));
	k = c->k;
	pthread_mutex_unlock(&c->mu);
	if (scripted >= 0)
		return (enum sim_mode)scripted;
	u = sim_hash01(k.seed, call_sid, UINT64_MAX);
	if (u < (acc += k.share_race))
		return SIM_MODE_RACE;
	if (u < (acc += k.share_initiation_failure))
		return SIM_MODE_INITIATION_FAILURE;
	if (u < (acc += k.share_no_post_call))
		return SIM_MODE_NO_POST_CALL;
	return SIM_MODE_NORMAL;
}
