/* ingress_hello: the baseline of bench/ingress: a bare libmicrohttpd server with the ingress's
 * threading (one poll daemon per thread, each on its own SO_REUSEPORT socket, suspend/resume
 * allowed: the same MHD flags as ingress/server.c) that reads each request body and answers a
 * small JSON 200, doing nothing else. Usage: ingress-bench-hello PORT [THREADS]. Runs until
 * SIGTERM/SIGINT. */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HELLO_MAX_THREADS 64

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
	struct MHD_Daemon *d[HELLO_MAX_THREADS] = {NULL};
	unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
	uint16_t port;
	int ret = 0;

	if (argc < 2 || threads < 1 || threads > HELLO_MAX_THREADS) {
		fprintf(stderr, "usage: ingress-bench-hello PORT [THREADS (1-%d)]\n",
		        HELLO_MAX_THREADS);
		return 2;
	}
	signal(SIGTERM, hello_on_signal);
	signal(SIGINT, hello_on_signal);
	signal(SIGPIPE, SIG_IGN);
	port = (uint16_t)atoi(argv[1]);
	/* like the ingress: one single-threaded daemon per thread, each with its own listening
	 * socket on the same port (SO_REUSEPORT) */
	for (unsigned i = 0; i < threads; i++) {
		d[i] = MHD_start_daemon(
		    MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, port, NULL, NULL,
		    hello_access, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
		    MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT,
		    4096u / threads, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
		if (d[i] == NULL) {
			fprintf(stderr, "ingress-bench-hello: cannot listen on port %s\n", argv[1]);
			ret = 1;
			goto out;
		}
	}
	while (!hello_stop)
		pause();
out:
	for (unsigned i = 0; i < threads; i++)
		if (d[i] != NULL)
			MHD_stop_daemon(d[i]);
	return ret;
}
