/* console_files: the console page's static files, served from one directory: only plain names
 * with a known type (no path, no dot files, no traversal), regular files up to 1 MiB, with the
 * Content-Security-Policy of the contract (docs/console.md). */
#ifndef CALLPIPE_INGRESS_CONSOLE_FILES_H
#define CALLPIPE_INGRESS_CONSOLE_FILES_H

#include <microhttpd.h>
#include <stdbool.h>

#define CONSOLE_FILES_CSP                                                                 \
	"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " \
	"connect-src 'self'; frame-ancestors 'none'"

/* The Content-Type for name, or NULL when name is not one the console may serve: letters,
 * digits, '-', '_' and one '.' before a known extension (html, css, js, svg, png, ico). */
const char *console_files_type(const char *name);

/* Answers GET /console/<name> from dir ("" name: index.html): 200 with the file, 404 when the
 * name is refused or no such regular file exists, 500 when it cannot be read. */
enum MHD_Result console_files_reply(struct MHD_Connection *conn, const char *dir, const char *name);

#endif
