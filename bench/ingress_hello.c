/* ingress_hello: the baseline of bench/ingress: a bare libmicrohttpd server with the ingress's
 * threading (poll, internal thread pool, suspend/resume allowed: the same MHD flags as
 * ingress/server.c) that reads each request body and answers a small JSON 200, doing nothing
 * else. Usage: ingress-bench-hello PORT [THREADS]. Runs until SIGTERM/SIGINT. */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t hello_stop;

static void hello_on_signal(int sig)
{
	(void)sig;
	hello_stop = 1;
}

static enum MHD_Result hello_access(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
	static const char body[] = "{\"status\":\"ok\"}";
	static int started;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	if (*req_cls == NULL) {
		*req_cls = &started; /* headers in: wait for the body */
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0; /* consume the body */
		return MHD_YES;
	}
	resp =
	    MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") ==
	    MHD_NO) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

int main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;

	if (argc < 2) {
		fprintf(stderr, "usage: ingress-bench-hello PORT [THREADS]\n");
		return 2;
	}
	signal(SIGTERM, hello_on_signal);
	signal(SIGINT, hello_on_signal);
	signal(SIGPIPE, SIG_IGN);
	d = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME,
	                     (uint16_t)atoi(argv[1]), NULL, NULL, hello_access, NULL,
	                     MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
	                     10u, MHD_OPTION_CONNECTION_LIMIT, 4096u,
	                     MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "ingress-bench-hello: cannot listen on port %s\n", argv[1]);
		return 1;
	}
	while (!hello_stop)
		pause();
	MHD_stop_daemon(d);
	return 0;
}
