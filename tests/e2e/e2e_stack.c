/* e2e_stack: starts and stops the whole pipeline as real processes for the end-to-end tests. */
#include "e2e.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <signal.h>

void e2e_env_add(struct e2e_env *env, const char *fmt, ...)
{
	va_list ap;
	char *item = NULL;
	int n;

	if (env->n >= E2E_MAX_ENV)
		fail_msg("e2e_env_add: more than %d entries", E2E_MAX_ENV);
	va_start(ap, fmt);
	n = vasprintf(&item, fmt, ap);
	va_end(ap);
	if (n < 0)
		fail_msg("e2e_env_add: out of memory");
	env->items[env->n++] = item;
	env->items[env->n] = NULL;
}

void e2e_env_addv(struct e2e_env *env, const char *const *items)
{
	for (; items && *items; items++)
		e2e_env_add(env, "%s", *items);
}

void e2e_env_free(struct e2e_env *env)
{
	for (int i = 0; i < env->n; i++)
		free(env->items[i]);
	env->n = 0;
	env->items[0] = NULL;
}

/* Random hex (not secret-grade: a test token). */
static void e2e_random_hex(char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	FILE *fp = fopen("/dev/urandom", "rb");
	size_t i;

	for (i = 0; i + 1 < size; i++) {
		int c = fp ? fgetc(fp) : rand();
		out[i] = hex[(unsigned)c & 15];
	}
	out[i] = '\0';
	if (fp)
		fclose(fp);
}

void e2e_stack_service_env(const struct e2e_stack *s, struct e2e_env *env)
{
	char group[256];

	e2e_env_add(env, "KAFKA_BROKERS=%s", s->broker.bootstrap);
	e2e_env_add(env, "KAFKA_TOPIC_PREFIX=%s", s->broker.prefix);
	/* On the shared Kafka broker the groups are the test's own too (the ingress ignores them).
	 */
	e2e_env_add(env, "DIALER_GROUP=%s",
	            ts_broker_group(&s->broker, "dialer", group, sizeof group));
	e2e_env_add(env, "TRANSCRIBER_GROUP=%s",
	            ts_broker_group(&s->broker, "transcriber", group, sizeof group));
	e2e_env_add(env, "DATABASE_URL=%s", ts_pg_url());
	e2e_env_add(env, "DB_SCHEMA=%s", s->schema);
	e2e_env_add(env, "INGRESS_API_TOKEN=%s", s->token);
	e2e_env_add(env, "ELEVENLABS_WEBHOOK_SECRET=%s", s->secret);
	/* per-turn lines go the agent tool's way: a call token from the dialer, and the tool
	 * secret, which elevensim sends too */
	e2e_env_add(env, "CALL_TOKEN_SECRET=ct-%s", s->secret);
	e2e_env_add(env, "INGRESS_TOOL_SECRET=tool-%s", s->secret);
	e2e_env_add(env, "ELEVENLABS_BASE_URL=%s", s->sim_url);
	e2e_env_add(env, "ELEVENLABS_API_KEY=%s", s->api_key);
	e2e_env_add(env, "ELEVENLABS_AGENT_ID=agent_e2e");
	e2e_env_add(env, "ELEVENLABS_PHONE_NUMBER_ID=phnum_e2e");
	e2e_env_add(env, "LOG_LEVEL=%s",
	            getenv("E2E_LOG_LEVEL") ? getenv("E2E_LOG_LEVEL") : "info");
}

/* Waits until url answers 200 while proc runs; false when it exited or timeout_ms passed. */
static bool e2e_wait_up(const struct ts_proc *proc, const char *url, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 250) {
		if (ts_wait_http_ok(url, 250))
			return true;
		if (!ts_proc_alive(proc))
			return false;
	}
	return false;
}

static struct e2e_worker *e2e_worker_get(struct e2e_stack *s, const char *kind, int i)
{
	bool dialer = strcmp(kind, "dialer") == 0;

	if (i < 0 || i >= E2E_MAX_WORKERS || (!dialer && strcmp(kind, "transcriber") != 0))
		fail_msg("e2e: no worker %s #%d", kind, i);
	return dialer ? &s->dialers[i] : &s->transcribers[i];
}

void e2e_worker_start(struct e2e_stack *s, const char *kind, int i)
{
	struct e2e_worker *w = e2e_worker_get(s, kind, i);
	struct e2e_env env = {0};
	char bin[512], url[128];
	const char *argv[2];

	if (w->running)
		fail_msg("e2e: %s #%d is already running", kind, i);
	if (!w->port)
		w->port = ts_free_port(); /* keep the port across restarts */
	e2e_stack_service_env(s, &env);
	e2e_env_add(&env, "HTTP_LISTEN=127.0.0.1:%u", w->port);
	e2e_env_addv(&env, s->opts.worker_env);
	argv[0] = ts_bin(kind, bin, sizeof bin);
	argv[1] = NULL;
	ts_proc_start(&w->proc, argv, (const char *const *)env.items);
	snprintf(w->proc.name, sizeof w->proc.name, "%s-%d.%d", kind, i + 1, w->starts);
	w->running = true;
	w->starts++;
	e2e_env_free(&env);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", w->port);
	if (!e2e_wait_up(&w->proc, url, 20000)) {
		e2e_stack_dump_logs(s, 20);
		fail_msg("e2e: %s #%d did not answer %s (log %s)", kind, i, url, w->proc.log_path);
	}
}

int e2e_worker_stop(struct e2e_stack *s, const char *kind, int i, int sig, int timeout_ms)
{
	struct e2e_worker *w = e2e_worker_get(s, kind, i);

	if (!w->running)
		return 0;
	w->running = false;
	return ts_proc_stop(&w->proc, sig, timeout_ms);
}

static void e2e_stack_start_sim(struct e2e_stack *s)
{
	struct e2e_env env = {0};
	const char *argv[40];
	char bin[512], listen[64], health[128];
	int argc = 0;

	snprintf(listen, sizeof listen, "127.0.0.1:%u", s->sim_port);
	argv[argc++] = ts_bin("elevensim", bin, sizeof bin);
	argv[argc++] = "--listen";
	argv[argc++] = listen;
	for (const char *const *a = s->opts.sim_args; a && *a; a++) {
		if (argc >= 38)
			fail_msg("e2e: too many elevensim arguments");
		argv[argc++] = *a;
	}
	argv[argc] = NULL;
	e2e_env_add(&env, "ELEVENSIM_WEBHOOK_URL=%s", s->ingress_url);
	e2e_env_add(&env, "ELEVENLABS_API_KEY=%s", s->api_key);
	e2e_env_add(&env, "ELEVENLABS_WEBHOOK_SECRET=%s", s->secret);
	e2e_env_add(&env, "INGRESS_TOOL_SECRET=tool-%s", s->secret);
	e2e_env_add(&env, "LOG_LEVEL=info");
	ts_proc_start(&s->sim, argv, (const char *const *)env.items);
	e2e_env_free(&env);
	snprintf(health, sizeof health, "%s/healthz", s->sim_url);
	if (!e2e_wait_up(&s->sim, health, 20000)) {
		e2e_stack_dump_logs(s, 20);
		fail_msg("e2e: elevensim did not answer %s (log %s)", health, s->sim.log_path);
	}
}

static void e2e_stack_start_ingress(struct e2e_stack *s)
{
	struct e2e_env env = {0};
	const char *argv[2];
	char bin[512], ready[128];

	e2e_stack_service_env(s, &env);
	e2e_env_add(&env, "HTTP_LISTEN=127.0.0.1:%u", s->ingress_port);
	e2e_env_addv(&env, s->opts.ingress_env);
	argv[0] = ts_bin("ingress", bin, sizeof bin);
	argv[1] = NULL;
	ts_proc_start(&s->ingress, argv, (const char *const *)env.items);
	e2e_env_free(&env);
	snprintf(ready, sizeof ready, "%s/readyz", s->ingress_url);
	if (!e2e_wait_up(&s->ingress, ready, 20000)) {
		e2e_stack_dump_logs(s, 20);
		fail_msg("e2e: ingress did not answer %s (log %s)", ready, s->ingress.log_path);
	}
}

void e2e_stack_start(struct e2e_stack *s, const struct e2e_opts *opts)
{
	memset(s, 0, sizeof *s);
	s->opts = *opts;
	if (!s->opts.partitions)
		s->opts.partitions = 6;
	s->ndialers = opts->ndialers ? opts->ndialers : 1;
	s->ntranscribers = opts->ntranscribers ? opts->ntranscribers : 1;
	if (s->ndialers > E2E_MAX_WORKERS || s->ntranscribers > E2E_MAX_WORKERS)
		fail_msg("e2e: at most %d workers of a kind", E2E_MAX_WORKERS);
	if (opts->pg_url && setenv("CALLPIPE_TEST_DATABASE_URL", opts->pg_url, 1))
		fail_msg("e2e: setenv failed");
	e2e_random_hex(s->token, 33);
	e2e_random_hex(s->secret, 41);
	snprintf(s->api_key, sizeof s->api_key, "sim-%.24s", s->secret + 8);

	ts_pg_schema_new(opts->name, true, s->schema, sizeof s->schema);
	s->up = true;
	if (opts->private_kafka) {
		if (!ts_broker_kafka_mode())
			fail_msg("e2e: a private Kafka broker needs CALLPIPE_TEST_BROKER=kafka");
		ts_broker_start_kafka_private(&s->broker, "", s->opts.partitions);
	} else {
		ts_broker_start(&s->broker, "", s->opts.partitions);
	}
	s->sim_port = ts_free_port();
	s->ingress_port = ts_free_port();
	while (s->ingress_port == s->sim_port)
		s->ingress_port = ts_free_port();
	snprintf(s->sim_url, sizeof s->sim_url, "http://127.0.0.1:%u", s->sim_port);
	snprintf(s->ingress_url, sizeof s->ingress_url, "http://127.0.0.1:%u", s->ingress_port);
	print_message("e2e %s: schema %s, broker %s, ingress %s, elevensim %s\n", opts->name,
	              s->schema, s->broker.bootstrap, s->ingress_url, s->sim_url);

	e2e_stack_start_ingress(s);
	e2e_stack_start_sim(s);
	for (int i = 0; i < s->ndialers; i++)
		e2e_worker_start(s, "dialer", i);
	for (int i = 0; i < s->ntranscribers; i++)
		e2e_worker_start(s, "transcriber", i);
}

void e2e_stack_stop(struct e2e_stack *s)
{
	int bad = 0;
	char what[256] = "";

	s->up = false;
	/* Workers first: they must drain and exit 0 on SIGTERM (design.md §7). */
	for (int i = 0; i < E2E_MAX_WORKERS; i++) {
		const char *kinds[] = {"dialer", "transcriber"};

		for (int k = 0; k < 2; k++) {
			struct e2e_worker *w = e2e_worker_get(s, kinds[k], i);
			int rc;

			if (!w->running)
				continue;
			rc = e2e_worker_stop(s, kinds[k], i, SIGTERM, 15000);
			if (rc != 0) {
				bad++;
				snprintf(what + strlen(what), sizeof what - strlen(what),
				         " %s-%d=%d", kinds[k], i + 1, rc);
			}
		}
	}
	if (s->ingress.pid > 0) {
		int rc = ts_proc_stop(&s->ingress, SIGTERM, 15000);

		if (rc != 0) {
			bad++;
			snprintf(what + strlen(what), sizeof what - strlen(what), " ingress=%d",
			         rc);
		}
	}
	if (s->sim.pid > 0)
		(void)ts_proc_stop(&s->sim, SIGTERM, 5000);
	ts_broker_stop(&s->broker);
	if (bad)
		e2e_stack_dump_logs(s, 15);
	else
		ts_pg_schema_drop(s->schema);
	if (bad)
		fail_msg("e2e: services did not exit 0 on SIGTERM:%s", what);
}

/* True when line (a sample) carries every filter string in its label set. */
static bool e2e_metric_match(const char *line, size_t nlen, const char *const *filters)
{
	const char *end = line[nlen] == '{' ? strchr(line + nlen, '}') : NULL;

	for (; filters && *filters; filters++) {
		const char *hit = strstr(line + nlen, *filters);

		if (!end || !hit || hit > end)
			return false;
	}
	return true;
}

void e2e_stack_abort(struct e2e_stack *s)
{
	if (!s || !s->up)
		return;
	s->up = false;
	fprintf(stderr, "e2e: aborting the stack; schema %s kept, logs:\n", s->schema);
	for (int i = 0; i < E2E_MAX_WORKERS; i++) {
		if (s->dialers[i].running)
			(void)e2e_worker_stop(s, "dialer", i, SIGKILL, 5000);
		if (s->transcribers[i].running)
			(void)e2e_worker_stop(s, "transcriber", i, SIGKILL, 5000);
		if (s->dialers[i].starts)
			fprintf(stderr, "  %s\n", s->dialers[i].proc.log_path);
		if (s->transcribers[i].starts)
			fprintf(stderr, "  %s\n", s->transcribers[i].proc.log_path);
	}
	if (s->ingress.pid > 0 && ts_proc_alive(&s->ingress))
		(void)ts_proc_stop(&s->ingress, SIGKILL, 5000);
	if (s->sim.pid > 0 && ts_proc_alive(&s->sim))
		(void)ts_proc_stop(&s->sim, SIGKILL, 5000);
	fprintf(stderr, "  %s\n  %s\n", s->ingress.log_path, s->sim.log_path);
	/* A devbroker or a private Kafka goes; on the shared Kafka the topics stay for a look. */
	if (s->broker.pid > 0 || s->broker.private_kafka)
		ts_broker_stop(&s->broker);
	else if (s->broker.kafka)
		fprintf(stderr, "  topics %s* kept on %s\n", s->broker.prefix, s->broker.bootstrap);
}

int e2e_setup(void **state)
{
	*state = calloc(1, sizeof(struct e2e_fixture));
	return *state ? 0 : -1;
}

int e2e_teardown(void **state)
{
	struct e2e_fixture *f = *state;

	e2e_stack_abort(&f->stack);
	if (f->pg_dir[0]) {
		char dir[300], lock[320], *slash;

		snprintf(dir, sizeof dir, "%s", f->pg_dir);
		e2e_private_pg(f, "stop");
		snprintf(lock, sizeof lock, "%s.lock", dir); /* scripts/pg's flock file */
		unlink(lock);
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			rmdir(dir);
		}
	}
	free(f);
	return 0;
}

static void e2e_pg_run(const char *cmd, const char *dir, const char *env_file, char **out)
{
	char script[512];
	const char *argv[] = {script,   cmd, "--dir", dir, env_file ? "--env-file" : NULL,
	                      env_file, NULL};
	int rc;

	snprintf(script, sizeof script, "%s/scripts/pg", ts_source_dir());
	rc = ts_run(argv, NULL, out, 120000);
	if (rc != 0)
		fail_msg("e2e: scripts/pg %s --dir %s exited %d", cmd, dir, rc);
}

void e2e_private_pg_start(struct e2e_fixture *f, char *url, size_t size)
{
	char tmpl[] = "/tmp/callpipe-e2e-pg.XXXXXX", envfile[300], *out = NULL, *eq;

	if (!mkdtemp(tmpl))
		fail_msg("e2e: mkdtemp failed");
	snprintf(f->pg_dir, sizeof f->pg_dir, "%s/pg", tmpl);
	snprintf(envfile, sizeof envfile, "%s/pg.env", tmpl);
	e2e_pg_run("start", f->pg_dir, envfile, &out);
	eq = out ? strchr(out, '=') : NULL;
	if (!eq)
		fail_msg("e2e: scripts/pg start printed no URL: %s", out ? out : "");
	eq[1 + strcspn(eq + 1, "\n")] = '\0';
	snprintf(url, size, "%s", eq + 1);
	free(out);
	unlink(envfile);
}

void e2e_private_pg(struct e2e_fixture *f, const char *cmd)
{
	if (!f->pg_dir[0])
		fail_msg("e2e: no private Postgres");
	e2e_pg_run(cmd, f->pg_dir, NULL, NULL);
	if (strcmp(cmd, "stop") == 0)
		f->pg_dir[0] = '\0';
}

double e2e_metric(const char *base_url, const char *name, const char *const *filters)
{
	struct ts_http_resp resp = {0};
	char url[256];
	size_t nlen = strlen(name);
	double sum = -1;

	snprintf(url, sizeof url, "%s/metrics", base_url);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	if (resp.status != 200 || !resp.body)
		goto out;
	for (char *line = resp.body; line && *line;) {
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		if (line[0] != '#' && strncmp(line, name, nlen) == 0 &&
		    (line[nlen] == '{' || line[nlen] == ' ') &&
		    e2e_metric_match(line, nlen, filters)) {
			const char *v = strrchr(line, ' ');

			if (v) {
				if (sum < 0)
					sum = 0;
				sum += strtod(v + 1, NULL);
			}
		}
		line = nl ? nl + 1 : NULL;
	}
out:
	ts_http_resp_free(&resp);
	return sum;
}

static void e2e_dump_one(const char *label, const char *path, int lines)
{
	FILE *fp;
	long size, pos;
	int seen = 0;

	if (!path || !*path || !(fp = fopen(path, "r")))
		return;
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	/* Walk back to the start of the last `lines` lines. */
	for (pos = size - 1; pos > 0; pos--) {
		fseek(fp, pos, SEEK_SET);
		if (fgetc(fp) == '\n' && pos != size - 1 && ++seen >= lines) {
			pos++;
			break;
		}
	}
	fseek(fp, pos < 0 ? 0 : pos, SEEK_SET);
	fprintf(stderr, "---- %s (%s), last %d lines ----\n", label, path, lines);
	for (int c; (c = fgetc(fp)) != EOF;)
		fputc(c, stderr);
	fclose(fp);
}

void e2e_stack_dump_logs(const struct e2e_stack *s, int lines)
{
	e2e_dump_one("ingress", s->ingress.log_path, lines);
	e2e_dump_one("elevensim", s->sim.log_path, lines);
	for (int i = 0; i < E2E_MAX_WORKERS; i++) {
		if (s->dialers[i].starts)
			e2e_dump_one(s->dialers[i].proc.name, s->dialers[i].proc.log_path, lines);
		if (s->transcribers[i].starts)
			e2e_dump_one(s->transcribers[i].proc.name, s->transcribers[i].proc.log_path,
			             lines);
	}
}
