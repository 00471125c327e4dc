/* shutdown: the signal flag (SIGINT/SIGTERM), second signal = _exit(1), SIGPIPE ignored. */
#include "shutdown.h"

#include "timeutil.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The only mutable globals of a service: written by the handler, read by everyone. */
static volatile sig_atomic_t shutdown_flag;
static volatile sig_atomic_t shutdown_signals;

#define SHUTDOWN_SLICE_MS 20

static void shutdown_on_signal(int signo)
{
	(void)signo;
	if (shutdown_signals) {
		/* The operator insists: no drain, exit now (async-signal-safe). */
		_exit(1);
	}
	shutdown_signals = 1;
	shutdown_flag = 1;
}

void shutdown_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = shutdown_on_signal;
	sigemptyset(&sa.sa_mask);
	/* Restart ordinary syscalls; sleeps and polls still return early with EINTR. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

bool shutdown_requested(void)
{
	return shutdown_flag != 0;
}

void shutdown_request(void)
{
	shutdown_flag = 1;
}

bool shutdown_sleep_ms(long ms)
{
	int64_t deadline = time_mono_ms() + (ms > 0 ? ms : 0);

	/* Small slices: a request from another thread is seen within SHUTDOWN_SLICE_MS, and a
	 * signal delivered to this thread interrupts nanosleep at once. */
	while (!shutdown_flag) {
		int64_t left = deadline - time_mono_ms();
		struct timespec ts;

		if (left <= 0)
			return false;
		if (left > SHUTDOWN_SLICE_MS)
			left = SHUTDOWN_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		nanosleep(&ts, NULL);
	}
	return true;
}
