/* tsupport: paths, the per-binary scratch directory, child processes (they die with the test),
 * free ports and waiting (brokers: ts_broker.c). */
#include "tsupport.h"
#include "ts_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *ts_bin(const char *name, char *buf, size_t size)
{
	const char *dir = getenv("CALLPIPE_BIN_DIR");

	if (!dir || !*dir)
		fail_msg("CALLPIPE_BIN_DIR is not set (run the test through ctest)");
	if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
		fail_msg("ts_bin: path too long");
	if (access(buf, X_OK) != 0)
		fail_msg("binary %s is missing (build it first)", buf);
	return buf;
}

const char *ts_source_dir(void)
{
	const char *dir = getenv("CALLPIPE_SOURCE_DIR");

	if (!dir || !*dir)
		fail_msg("CALLPIPE_SOURCE_DIR is not set (run the test through ctest)");
	return dir;
}

const char *ts_tmpdir(void)
{
	static char dir[PATH_MAX];
	const char *base = getenv("CALLPIPE_TESTENV_DIR");
	char parent[PATH_MAX];

	if (dir[0])
		return dir;
	if (base && *base) {
		snprintf(parent, sizeof parent, "%s/runs", base);
		mkdir(base, 0755);
		mkdir(parent, 0755);
	} else {
		snprintf(parent, sizeof parent, "/tmp");
	}
	if (snprintf(dir, sizeof dir, "%s/%s-XXXXXX", parent, program_invocation_short_name) >=
	    (int)sizeof dir) {
		dir[0] = '\0';
		fail_msg("scratch directory path too long");
	}
	if (!mkdtemp(dir)) {
		int e = errno;
		dir[0] = '\0';
		fail_msg("cannot create a scratch directory under %s: %s", parent, strerror(e));
	}
	fprintf(stderr, "[tsupport] logs and scratch files of this run: %s\n", dir);
	return dir;
}

void ts_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

long long ts_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool ts_wait_until(bool (*cond)(void *opaque), void *opaque, int timeout_ms)
{
	long long deadline = ts_now_ms() + timeout_ms;
	bool ok;

	while (!(ok = cond(opaque)) && ts_now_ms() < deadline)
		ts_sleep_ms(50);
	return ok;
}

/* The low end of the kernel's ephemeral port range (32768 when it cannot be read). */
static unsigned ts_ephemeral_low(void)
{
	FILE *fp = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	unsigned lo = 0;

	if (fp) {
		if (fscanf(fp, "%u", &lo) != 1)
			lo = 0;
		fclose(fp);
	}
	return lo > 11024 && lo <= 65535 ? lo : 32768;
}

/* True when nothing holds 127.0.0.1:port (a bind without SO_REUSEADDR succeeds). */
static bool ts_port_free(unsigned port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                          .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		fail_msg("ts_free_port: socket: %s", strerror(errno));
	ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
	close(fd);
	return ok;
}

static unsigned ts_port_seed; /* rand_r state, seeded on first use (test processes only) */

unsigned ts_free_port(void)
{
	unsigned lo = ts_ephemeral_low();

	if (ts_port_seed == 0)
		ts_port_seed = ((unsigned)getpid() * 2654435761u) ^ (unsigned)ts_now_ms() ^ 1u;
	for (int i = 0; i < 500; i++) {
		unsigned port = 10000 + (unsigned)rand_r(&ts_port_seed) % (lo - 10000);
		if (ts_port_free(port))
			return port;
	}
	fail_msg("ts_free_port: no free port below %u after 500 tries", lo);
	return 0;
}

bool ts_file_contains(const char *path, const char *needle)
{
	static char buf[1 << 20];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp)
		return false;
	n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* In the child: die with the parent, apply "KEY=VALUE" entries, exec. Never returns. */
static void ts_child_exec(const char *const *argv, const char *const *env, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the parent died before prctl took effect */
		_exit(127);
	for (size_t i = 0; env && env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		char key[256];

		if (!eq || (size_t)(eq - env[i]) >= sizeof key)
			continue;
		memcpy(key, env[i], (size_t)(eq - env[i]));
		key[eq - env[i]] = '\0';
		setenv(key, eq + 1, 1);
	}
	execv(argv[0], (char *const *)argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

void ts_proc_start(struct ts_proc *p, const char *const *argv, const char *const *env)
{
	static unsigned seq;
	const char *base = strrchr(argv[0], '/');
	pid_t parent = getpid();
	int fd;

	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", base ? base + 1 : argv[0]);
	snprintf(p->log_path, sizeof p->log_path, "%s/%s-%u.log", ts_tmpdir(), p->name, ++seq);
	fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_msg("cannot create %s: %s", p->log_path, strerror(errno));
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (p->pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		ts_child_exec(argv, env, parent);
	}
	close(fd);
}

/* Waits for pid up to timeout_ms; returns the ts_proc_stop-style status or -2 on timeout. */
static int ts_reap(pid_t pid, int timeout_ms)
{
	long long deadline = ts_now_ms() + timeout_ms;

	for (;;) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0 && errno != EINTR)
			return -1;
		if (ts_now_ms() >= deadline)
			return -2;
		ts_sleep_ms(10);
	}
}

int ts_proc_stop(struct ts_proc *p, int sig, int timeout_ms)
{
	int rc;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, sig);
	rc = ts_reap(p->pid, timeout_ms);
	if (rc == -2) {
		fprintf(stderr,
		        "[tsupport] %s (pid %d) ignored signal %d for %d ms: killed; log %s\n",
		        p->name, (int)p->pid, sig, timeout_ms, p->log_path);
		kill(p->pid, SIGKILL);
		ts_reap(p->pid, 5000);
		rc = -1;
	}
	p->pid = 0;
	return rc;
}

bool ts_proc_alive(const struct ts_proc *p)
{
	siginfo_t info = {0};

	if (p->pid <= 0)
		return false;
	/* WNOWAIT: look without reaping, so ts_proc_stop still gets the status. */
	if (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return false;
	return info.si_pid == 0;
}

static int ts_run_capture(const char *const *argv, const char *const *env, char **out,
                          int timeout_ms, bool with_stderr)
{
	long long deadline = ts_now_ms() + timeout_ms;
	pid_t parent = getpid(), pid;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fds[2], rc;

	if (out)
		*out = NULL;
	if (pipe2(fds, O_CLOEXEC) != 0)
		fail_msg("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(fds[1], 1);
		if (with_stderr)
			dup2(fds[1], 2);
		ts_child_exec(argv, env, parent);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		long long left = deadline - ts_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			break;
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (!buf)
				fail_msg("out of memory");
		}
		n = read(fds[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fds[0]);
	rc = ts_reap(pid, (int)(deadline > ts_now_ms() ? deadline - ts_now_ms() : 0));
	if (rc == -2) {
		fprintf(stderr, "[tsupport] %s did not finish within %d ms: killed\n", argv[0],
		        timeout_ms);
		kill(pid, SIGKILL);
		ts_reap(pid, 5000);
		rc = -1;
	}
	if (buf)
		buf[len] = '\0';
	if (out)
		*out = buf;
	else
		free(buf);
	return rc;
}

int ts_run(const char *const *argv, const char *const *env, char **out, int timeout_ms)
{
	return ts_run_capture(argv, env, out, timeout_ms, false);
}

int ts_run_all(const char *const *argv, const char *const *env, char **out, int timeout_ms)
{
	return ts_run_capture(argv, env, out, timeout_ms, true);
}

bool ts_wait_http_ok(const char *url, int timeout_ms)
{
	long long deadline = ts_now_ms() + timeout_ms;
	char err[256];

	for (;;) {
		if (ts_http_try("GET", url, NULL, NULL, err, sizeof err) == 200)
			return true;
		if (ts_now_ms() >= deadline)
			return false;
		ts_sleep_ms(50);
	}
}
