/* fault: the test-only fault injection of common/fault.h (built with CALLPIPE_FAULTS only). */
#include "fault.h"

#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_MAX 16

struct fault_track {
	char topic[160]; /* end of the full topic name; "" when the entry names none */
	int32_t partition;
	int64_t offset;
	long left; /* refusals still to come */
};

/* Test instrumentation, so process-wide: one table, parsed on first use. */
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fault_track fault_tracks[FAULT_MAX];
static size_t fault_ntracks;
static bool fault_parsed;

/* Parses one "[topic@]partition:offset:times" entry into t. Returns 0 or -1. */
static int fault_parse_one(const char *s, size_t len, struct fault_track *t)
{
	char buf[256];
	const char *at, *nums;
	long long partition, offset, times;
	int used = 0;

	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(t, 0, sizeof *t);
	at = strchr(buf, '@');
	nums = buf;
	if (at) {
		if ((size_t)(at - buf) >= sizeof t->topic)
			return -1;
		memcpy(t->topic, buf, (size_t)(at - buf));
		nums = at + 1;
	}
	if (sscanf(nums, "%lld:%lld:%lld%n", &partition, &offset, &times, &used) != 3 ||
	    nums[used] != '\0' || partition < 0 || offset < 0 || times < 0)
		return -1;
	t->partition = (int32_t)partition;
	t->offset = offset;
	t->left = (long)times;
	return 0;
}

static void fault_parse(void)
{
	const char *spec = getenv("CALLPIPE_FAULT_TRACK");

	fault_parsed = true;
	while (spec && *spec && fault_ntracks < FAULT_MAX) {
		size_t len = strcspn(spec, ",");

		if (fault_parse_one(spec, len, &fault_tracks[fault_ntracks]) == 0)
			fault_ntracks++;
		else
			log_error("fault: bad CALLPIPE_FAULT_TRACK entry", LOGS("spec", spec));
		spec += len;
		if (*spec == ',')
			spec++;
	}
}

/* True when the entry's topic matches topic (the end of the full name). */
static bool fault_topic_matches(const struct fault_track *t, const char *topic)
{
	size_t have, want = strlen(t->topic);

	if (!topic)
		return want == 0;
	have = strlen(topic);
	return have >= want && strcmp(topic + have - want, t->topic) == 0;
}

bool fault_track_refuse(const char *topic, int32_t partition, int64_t offset)
{
	bool refuse = false;
	long left = 0;

	pthread_mutex_lock(&fault_mu);
	if (!fault_parsed)
		fault_parse();
	for (size_t i = 0; i < fault_ntracks && !refuse; i++) {
		struct fault_track *t = &fault_tracks[i];

		if (t->partition == partition && t->offset == offset && t->left > 0 &&
		    fault_topic_matches(t, topic)) {
			left = --t->left;
			refuse = true;
		}
	}
	pthread_mutex_unlock(&fault_mu);
	if (refuse)
		log_warn("fault: offsets tracker refused a message",
		         LOGS("topic", topic ? topic : ""), LOGI("partition", partition),
		         LOGI("offset", offset), LOGI("refusals_left", left));
	return refuse;
}
