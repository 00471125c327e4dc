/* simconf: elevensim's settings: start-up options (cfg table) and the knobs tests adjust at run
 * time (PUT /sim/config), plus the deterministic per-call choice of behaviour. */
#ifndef CALLPIPE_ELEVENSIM_SIMCONF_H
#define CALLPIPE_ELEVENSIM_SIMCONF_H

#include "cfg.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Start-up options (cfg fills them; strings owned, sim_conf_free). Shares are text here and
 * parsed into struct sim_knobs. */
struct sim_options {
	char *listen, *url_file, *api_key, *webhook_secret, *tool_secret, *webhook_url, *log_level;
	char *share_429, *share_500, *share_503, *share_success_false, *share_hang;
	char *share_placed_502, *share_placed_504;
	char *share_race, *share_initiation_failure, *share_no_post_call;
	long long latency_ms, turns, turn_delay_ms, seed, retry_after_s, hang_ms;
	long long webhook_retries, webhook_backoff_ms, webhook_timeout_ms, webhook_threads;
};

/* What one outbound-call request is answered with. */
enum sim_answer {
	SIM_ANSWER_OK,
	SIM_ANSWER_429,
	SIM_ANSWER_500,
	SIM_ANSWER_502,
	SIM_ANSWER_503,
	SIM_ANSWER_504,
	SIM_ANSWER_400,
	SIM_ANSWER_422,
	SIM_ANSWER_SUCCESS_FALSE,
	SIM_ANSWER_HANG,
	SIM_ANSWER_PLACED_502, /* the call is placed, then the answer is a gateway's 502 */
	SIM_ANSWER_PLACED_504, /* the same with 504 */
};

/* How an accepted call plays. */
enum sim_mode {
	SIM_MODE_NORMAL,
	SIM_MODE_RACE,               /* first webhook before the API answers */
	SIM_MODE_INITIATION_FAILURE, /* answers success, then call_initiation_failure */
	SIM_MODE_NO_POST_CALL,       /* turns play, the post-call webhook is never sent */
};

#define SIM_SCRIPT_MAX 16

/* Knobs readable/settable at run time. */
struct sim_knobs {
	long latency_ms;
	double share_429, share_500, share_503, share_success_false, share_hang;
	double share_placed_502, share_placed_504;
	double share_race, share_initiation_failure, share_no_post_call;
	int turns;
	long turn_delay_ms;
	uint64_t seed;
	long retry_after_s, hang_ms;
	bool webhooks;
	char webhook_url[512];
	int webhook_retries;
	long webhook_backoff_ms, webhook_timeout_ms;
};

struct sim_conf;

const struct cfg_spec *sim_conf_spec(void);

/* Parses the options into a knob set. NULL + errstr on a bad value. Caller owns (sim_conf_free). */
struct sim_conf *sim_conf_new(const struct sim_options *opt, char *errstr, size_t errstr_size);
void sim_conf_free(struct sim_conf *c);

/* A consistent copy of the knobs. */
void sim_conf_get(struct sim_conf *c, struct sim_knobs *out);

/* Applies a PUT /sim/config object: any knob by name, plus "calls": {call_sid: {"answers":
 * ["429", "ok", ...], "mode": "race"}} scripts (null removes one). All or nothing. Returns 0, or
 * -1 with errstr naming the field. */
int sim_conf_update(struct sim_conf *c, const json_t *patch, char *errstr, size_t errstr_size);

/* The knobs and scripts as JSON (new reference). */
json_t *sim_conf_json(struct sim_conf *c);

/* The answer to request number n (0-based) for call_sid: the call's script if it has one for n,
 * else drawn from the shares with hash(seed, call_sid, n). */
enum sim_answer sim_conf_answer(struct sim_conf *c, const char *call_sid, int n);

/* The call's play mode: its script's mode, else drawn from the shares with hash(seed, call_sid). */
enum sim_mode sim_conf_mode(struct sim_conf *c, const char *call_sid);

const char *sim_answer_name(enum sim_answer a);
const char *sim_mode_name(enum sim_mode m);

/* Uniform in [0, 1) from (seed, s, n): the reproducible coin of the sim. */
double sim_hash01(uint64_t seed, const char *s, uint64_t n);

#endif
