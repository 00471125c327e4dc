/* test_shutdown: the signal flag, early wake-up of shutdown_sleep_ms, second signal, SIGPIPE. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "shutdown.h"
#include "timeutil.h"

/* Each case runs in a child process: the flag is process-wide and cannot be reset. */
static int run_child(void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void child_first_signal_sets_flag(void)
{
	int64_t t0;

	shutdown_install();
	if (shutdown_requested())
		_exit(10);
	/* A plain sleep runs to its end. */
	t0 = time_mono_ms();
	if (shutdown_sleep_ms(60) || time_mono_ms() - t0 < 60)
		_exit(11);
	raise(SIGTERM);
	if (!shutdown_requested())
		_exit(12);
	/* Once requested, sleeps return at once. */
	t0 = time_mono_ms();
	if (!shutdown_sleep_ms(5000) || time_mono_ms() - t0 > 100)
		_exit(13);
}

static void child_second_signal_exits(void)
{
	shutdown_install();
	raise(SIGINT);
	if (!shutdown_requested())
		_exit(20);
	raise(SIGTERM); /* the second signal: _exit(1) inside the handler */
	_exit(21);
}

static void child_request_is_not_a_signal(void)
{
	shutdown_install();
	shutdown_request();
	if (!shutdown_requested())
		_exit(30);
	/* A code request is not the first signal: the next signal drains, it does not kill. */
	raise(SIGTERM);
	_exit(0);
}

static void child_sigpipe_ignored(void)
{
	int fds[2];

	shutdown_install();
	if (pipe(fds) < 0)
		_exit(40);
	close(fds[0]);
	if (write(fds[1], "x", 1) != -1)
		_exit(41);
	_exit(0); /* still alive: the write failed with EPIPE instead of killing us */
}

static void *request_later(void *arg)
{
	(void)arg;
	usleep(100 * 1000);
	shutdown_request();
	return NULL;
}

static void child_sleep_wakes_on_request(void)
{
	pthread_t t;
	int64_t t0;
	bool woke;

	shutdown_install();
	pthread_create(&t, NULL, request_later, NULL);
	t0 = time_mono_ms();
	woke = shutdown_sleep_ms(10000);
	pthread_join(t, NULL);
	if (!woke || time_mono_ms() - t0 > 1000)
		_exit(50);
}

static void test_shutdown_first_signal(void **state)
{
	(void)state;
	assert_int_equal(run_child(child_first_signal_sets_flag), 0);
}

static void test_shutdown_second_signal(void **state)
{
	(void)state;
	assert_int_equal(run_child(child_second_signal_exits), 1);
}

static void test_shutdown_request(void **state)
{
	(void)state;
	assert_int_equal(run_child(child_request_is_not_a_signal), 0);
}

static void test_shutdown_sigpipe(void **state)
{
	(void)state;
	assert_int_equal(run_child(child_sigpipe_ignored), 0);
}

static void test_shutdown_sleep_wakes(void **state)
{
	(void)state;
	assert_int_equal(run_child(child_sleep_wakes_on_request), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shutdown_first_signal),
	    cmocka_unit_test(test_shutdown_second_signal),
	    cmocka_unit_test(test_shutdown_request),
	    cmocka_unit_test(test_shutdown_sigpipe),
	    cmocka_unit_test(test_shutdown_sleep_wakes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
