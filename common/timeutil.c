/* timeutil: wall and monotonic clocks, and ISO-8601 (RFC 3339) formatting and parsing in UTC. */
#include "timeutil.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

int64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int time_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int ret = -1;

	if (pthread_condattr_init(&ca))
		return -1;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cv, &ca) == 0)
		ret = 0;
	pthread_condattr_destroy(&ca);
	return ret;
}

struct timespec time_mono_deadline(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int time_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms)
{
	struct timespec deadline = time_mono_deadline(ms);

	return pthread_cond_timedwait(cv, mu, &deadline);
}

int time_secs_to_ms(double secs, int64_t *ms)
{
	/* NaN fails both comparisons; +-inf and 1e300 fail one */
	if (!(secs >= 0.0 && secs <= (double)TIME_UNIX_MAX_S))
		return -1;
	*ms = (int64_t)(secs * 1000.0);
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse: a day count back to year, month, day. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void time_format_iso_ms(int64_t ms, char *buf, size_t size)
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int64_t msec = ms - secs * 1000;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t sod = secs - days * 86400;
	int64_t y;
	unsigned m, d;

	if (size == 0)
		return;
	civil_from_days(days, &y, &m, &d);
	if (y >= 0 && y <= 9999 && size >= sizeof "0000-00-00T00:00:00.000Z") {
		/* the common case by hand: this stamps every webhook, and snprintf costs more than
		 * everything else here together */
		unsigned v[] = {(unsigned)y,
		                m,
		                d,
		                (unsigned)(sod / 3600),
		                (unsigned)(sod / 60 % 60),
		                (unsigned)(sod % 60),
		                (unsigned)msec};
		static const unsigned width[] = {4, 2, 2, 2, 2, 2, 3};
		static const char sep[] = "--T::.Z";
		char *p = buf;

		for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
			for (unsigned w = width[i]; w > 0; w--, v[i] /= 10)
				p[w - 1] = (char)('0' + v[i] % 10);
			p += width[i];
			*p++ = sep[i];
		}
		*p = '\0';
		return;
	}
	snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
	         (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)msec);
}

/* Reads exactly n digits at *p into *out and advances *p. */
static bool read_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Parses the zone suffix ("Z", "+hh:mm", "-hhmm", or nothing = UTC) into seconds east of UTC. */
static bool parse_zone(const char *p, int *offset_s)
{
	int sign, hh, mm;

	*offset_s = 0;
	if (*p == '\0')
		return true;
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return true;
	if (*p != '+' && *p != '-')
		return false;
	sign = *p == '-' ? -1 : 1;
	p++;
	if (!read_digits(&p, 2, &hh))
		return false;
	if (*p == ':')
		p++;
	if (!read_digits(&p, 2, &mm) || *p != '\0' || hh > 23 || mm > 59)
		return false;
	*offset_s = sign * (hh * 3600 + mm * 60);
	return true;
}

int time_parse_iso_ms(const char *s, int64_t *ms)
{
	const char *p = s;
	int y, mo, d, hh = 0, mi = 0, ss = 0, frac_ms = 0, offset_s = 0;

	if (s == NULL)
		return -1;
	if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) || *p++ != '-' ||
	    !read_digits(&p, 2, &d))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	if (*p != '\0') {
		if (*p != 'T' && *p != 't' && *p != ' ')
			return -1;
		p++;
		if (!read_digits(&p, 2, &hh) || *p++ != ':' || !read_digits(&p, 2, &mi) ||
		    *p++ != ':' || !read_digits(&p, 2, &ss))
			return -1;
		/* 60 is a leap second: counted as the last second of the minute. */
		if (hh > 23 || mi > 59 || ss > 60)
			return -1;
		if (ss == 60)
			ss = 59;
		if (*p == '.' || *p == ',') {
			int ndigits = 0;

			p++;
			while (isdigit((unsigned char)*p)) {
				if (ndigits < 3)
					frac_ms = frac_ms * 10 + (*p - '0');
				ndigits++;
				p++;
			}
			if (ndigits == 0)
				return -1;
			for (int i = ndigits; i < 3; i++)
				frac_ms *= 10;
		}
		if (!parse_zone(p, &offset_s))
			return -1;
	}
	*ms = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + hh * 3600 + mi * 60 + ss -
	       offset_s) *
	          1000 +
	      frac_ms;
	return 0;
}
