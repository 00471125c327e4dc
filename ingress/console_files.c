/* console_files: the console's static files, by plain name, from one directory. */
#include "console_files.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONSOLE_FILES_MAX  (1024 * 1024)
#define CONSOLE_FILES_NAME 64

static const struct {
	const char *ext;
	const char *type;
} console_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
};

const char *console_files_type(const char *name)
{
	const char *dot = NULL;
	size_t n = 0;

	if (name == NULL || name[0] == '\0' || name[0] == '.' || name[0] == '-')
		return NULL;
	for (const char *p = name; *p != '\0'; p++, n++) {
		char c = *p;

		if (c == '.') {
			if (dot != NULL)
				return NULL;
			dot = p;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9') || c == '-' || c == '_')) {
			return NULL;
		}
	}
	if (dot == NULL || n > CONSOLE_FILES_NAME)
		return NULL;
	for (size_t i = 0; i < sizeof console_types / sizeof console_types[0]; i++)
		if (strcmp(dot + 1, console_types[i].ext) == 0)
			return console_types[i].type;
	return NULL;
}

static enum MHD_Result console_files_text(struct MHD_Connection *conn, unsigned status,
                                          const char *text)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_NO;

	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                            "text/plain; charset=utf-8") == MHD_YES &&
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES)
		ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Reads the regular file name of dir (no symlink followed for the last part) into *buf. Returns
 * 0, -1 when there is no such regular file, -2 when it cannot be read or is too large. */
static int console_files_read(const char *dir, const char *name, char **buf, size_t *len)
{
	struct stat st;
	int dfd, fd = -1, rc = -2;
	size_t got = 0;

	*buf = NULL;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	close(dfd);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? -1 : -2;
	if (fstat(fd, &st) != 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		rc = -1;
		goto out;
	}
	if (st.st_size > CONSOLE_FILES_MAX)
		goto out;
	*buf = malloc((size_t)st.st_size + 1);
	if (*buf == NULL)
		goto out;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, *buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	*len = got;
	rc = 0;
out:
	if (rc != 0) {
		free(*buf);
		*buf = NULL;
	}
	close(fd);
	return rc;
}

enum MHD_Result console_files_reply(struct MHD_Connection *conn, const char *dir, const char *name)
{
	const char *file = name[0] != '\0' ? name : "index.html";
	const char *type = console_files_type(file);
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (type == NULL)
		return console_files_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	rc = console_files_read(dir, file, &buf, &len);
	if (rc == -1)
		return console_files_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	if (rc != 0) {
		log_warn("console: cannot read a file", LOGS("dir", dir), LOGS("file", file));
		return console_files_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                          "cannot read the file\n");
	}
	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(buf);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
	    MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_FILES_CSP) ==
	        MHD_YES &&
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES &&
	    MHD_add_response_header(resp, "Cache-Control", "no-cache") == MHD_YES &&
	    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") == MHD_YES &&
	    MHD_add_response_header(resp, "X-Frame-Options", "DENY") == MHD_YES)
		ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}
