/* cfg_redact: cfg_redact_url, which hides passwords in URLs and libpq conninfo strings before
 * they reach a log line or --dump-config. */
#include "cfg.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* A bounded string builder for cfg_redact_url: always NUL-terminated, truncates silently. */
struct cfg_out {
	char *buf;
	size_t size, len;
};

static void cfg_out_put(struct cfg_out *o, const char *s, size_t n)
{
	if (o->size == 0)
		return;
	for (size_t i = 0; i < n && o->len + 1 < o->size; i++)
		o->buf[o->len++] = s[i];
	o->buf[o->len] = '\0';
}

/* Redacts "password=..." parameters of a URL query string starting at q (after '?'). */
static void cfg_redact_query(const char *q, struct cfg_out *o)
{
	while (*q != '\0') {
		size_t n = strcspn(q, "&#");
		const char *eq = memchr(q, '=', n);

		if (eq != NULL && (size_t)(eq - q) == 8 && strncasecmp(q, "password", 8) == 0) {
			cfg_out_put(o, q, 9);
			cfg_out_put(o, "***", 3);
		} else {
			cfg_out_put(o, q, n);
		}
		q += n;
		if (*q == '#') {
			cfg_out_put(o, q, strlen(q));
			return;
		}
		if (*q == '&')
			cfg_out_put(o, q++, 1);
	}
}

static void cfg_redact_uri(const char *url, const char *authority, struct cfg_out *o)
{
	size_t alen = strcspn(authority, "/?#");
	const char *at = NULL, *colon, *rest = authority + alen, *q;

	for (const char *p = authority; p < authority + alen; p++)
		if (*p == '@')
			at = p; /* the last '@' ends the userinfo */
	cfg_out_put(o, url, (size_t)(authority - url));
	colon = at != NULL ? memchr(authority, ':', (size_t)(at - authority)) : NULL;
	if (colon != NULL) {
		cfg_out_put(o, authority, (size_t)(colon - authority) + 1);
		cfg_out_put(o, "***", 3);
		cfg_out_put(o, at, (size_t)(rest - at));
	} else {
		cfg_out_put(o, authority, alen);
	}
	q = strchr(rest, '?');
	if (q == NULL || (strchr(rest, '#') != NULL && strchr(rest, '#') < q)) {
		cfg_out_put(o, rest, strlen(rest));
		return;
	}
	cfg_out_put(o, rest, (size_t)(q - rest) + 1);
	cfg_redact_query(q + 1, o);
}

/* libpq keyword/value conninfo: "host=x password='a b' user=y"; values may be quoted with
 * backslash escapes. Only the password value is replaced. */
static void cfg_redact_conninfo(const char *s, struct cfg_out *o)
{
	const char *p = s;

	while (*p != '\0') {
		const char *kbeg, *kend, *vbeg;

		while (isspace((unsigned char)*p))
			cfg_out_put(o, p++, 1);
		kbeg = p;
		while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
			p++;
		kend = p;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {
			cfg_out_put(o, kbeg, (size_t)(p - kbeg));
			continue;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		vbeg = p;
		if (*p == '\'') {
			for (p++; *p != '\0' && *p != '\''; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p == '\'')
				p++;
		} else {
			for (; *p != '\0' && !isspace((unsigned char)*p); p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
		}
		cfg_out_put(o, kbeg, (size_t)(vbeg - kbeg));
		if (kend - kbeg == 8 && strncasecmp(kbeg, "password", 8) == 0)
			cfg_out_put(o, "***", 3);
		else
			cfg_out_put(o, vbeg, (size_t)(p - vbeg));
	}
}

void cfg_redact_url(const char *url, char *out, size_t out_size)
{
	struct cfg_out o = {.buf = out, .size = out_size, .len = 0};
	const char *sep;

	if (out_size == 0)
		return;
	out[0] = '\0';
	if (url == NULL)
		return;
	sep = strstr(url, "://");
	if (sep != NULL && strcspn(url, "= ") > (size_t)(sep - url))
		cfg_redact_uri(url, sep + 3, &o);
	else if (strchr(url, '=') != NULL)
		cfg_redact_conninfo(url, &o);
	else
		cfg_out_put(&o, url, strlen(url));
}
