/* test_dialer_refetch: a calls.requested message the dialer cannot take (its offsets tracker
 * refuses it, as when memory runs out: the dialer-faults build, CALLPIPE_FAULT_TRACK) is never
 * passed over. While it is refused, the calls before it are dialled and committed, the ones after
 * it are not even read, and the group's committed offset stays at it; then it is read again and
 * every call is dialled exactly once, and the commit moves past them all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dialer_it.h"

#include "kbus.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX   "drf."
#define CALLS    8
#define REFUSED  3 /* the offset (= index) of the message the tracker refuses */
#define REFUSALS 8 /* how many times; the dialer's pauses grow 100, 200, 400, 800 ms ... */

struct env {
	struct dit_stack st;
	struct dit_dialer dialer;
	char topic[256], group[200];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);

	/* one partition: the calls' offsets are their indexes */
	dit_stack_start(&e->st, "drefetch", PREFIX, 1, NULL);
	ts_broker_topic(&e->st.broker, KBUS_TOPIC_CALLS_REQUESTED, e->topic, sizeof e->topic);
	ts_broker_group(&e->st.broker, "dialer", e->group, sizeof e->group);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dit_dialer_stop(&e->dialer, SIGKILL, 5000);
	dit_stack_stop(&e->st);
	free(e);
	return 0;
}

/* Lines of the dialer's log containing needle. */
static int log_count(const struct env *e, const char *needle)
{
	FILE *fp = fopen(e->dialer.proc.log_path, "r");
	char line[4096];
	int n = 0;

	if (!fp)
		return 0;
	while (fgets(line, sizeof line, fp))
		n += strstr(line, needle) != NULL;
	fclose(fp);
	return n;
}

static int refusals(const struct env *e)
{
	return log_count(e, "fault: offsets tracker refused a message");
}

static int64_t committed(const struct env *e)
{
	return ts_kafka_committed(e->st.broker.bootstrap, e->group, e->topic, 0);
}

static void sid(int i, char *out, size_t size)
{
	snprintf(out, size, "EL_rf_%04d", i);
}

static bool dialled(const struct env *e, int i)
{
	struct store_call c;
	char s[32];

	sid(i, s, sizeof s);
	return dit_call(e->st.schema, s, &c) && c.has_conversation_id;
}

static void test_dialer_refetch_refused_message_is_read_again(void **state)
{
	struct env *e = *state;
	static const char *const env[] = {
	    "CALLPIPE_FAULT_TRACK=0:3:8", /* partition 0, offset REFUSED, REFUSALS times */
	    "DIALER_DB_RETRY_MAX_MS=1000",
	    NULL,
	};
	bool before_done = false;
	int checks = 0;
	char s[32];

	dit_dialer_start_bin(&e->dialer, "dialer-faults", &e->st.broker, PREFIX, e->st.schema,
	                     e->st.sim.url, env);
	dit_publish_many(&e->st.broker, PREFIX, "EL_rf_", CALLS);

	/* While the tracker refuses the message (a check counts only when the refusals went on
	 * through it): nothing at or after it is dialled, and the commit never passes it. */
	for (int waited = 0; refusals(e) < REFUSALS; waited += 50) {
		int before = refusals(e);
		int64_t at = committed(e);
		bool later = false;

		for (int i = REFUSED; i < CALLS; i++) {
			sid(i, s, sizeof s);
			later = later || dit_sim_requests(&e->st.sim, s) > 0;
		}
		if (before > 0 && refusals(e) < REFUSALS) {
			if (at > REFUSED)
				fail_msg("committed offset %lld passed the refused message %d",
				         (long long)at, REFUSED);
			assert_false(later);
			checks++;
			before_done = before_done || (at == REFUSED && dialled(e, 0) &&
			                              dialled(e, 1) && dialled(e, 2));
		}
		if (waited > 30000)
			fail_msg("only %d refusals after 30 s; log %s", refusals(e),
			         e->dialer.proc.log_path);
		ts_sleep_ms(50);
	}
	assert_true(checks >= 2); /* the refusals span about 4.5 s */
	/* the work taken before it went on during the pauses, and was committed up to it */
	assert_true(before_done);

	/* Read again: every call dialled exactly once, the commit past them all. */
	for (int i = 0; i < CALLS; i++) {
		sid(i, s, sizeof s);
		assert_true(dit_wait_call(e->st.schema, s, STORE_CALL_IN_PROGRESS, 20000));
		assert_int_equal(dit_sim_requests(&e->st.sim, s), 1);
	}
	for (int i = 0; i < 200 && committed(e) < CALLS; i++)
		ts_sleep_ms(50);
	assert_int_equal(committed(e), CALLS);
	assert_int_equal(refusals(e), REFUSALS);
	assert_int_equal(log_count(e, "reading it again after a pause"), REFUSALS);
	assert_int_equal(dit_metric(&e->dialer, "dialer_messages_total{result=\"dialled\"}"),
	                 CALLS);
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_refetch_refused_message_is_read_again),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
