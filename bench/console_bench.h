/* console_bench: the halves of bench/console's helper (console_load.c: the data;
 * console_helper.c: the measurements). */
#ifndef CALLPIPE_BENCH_CONSOLE_BENCH_H
#define CALLPIPE_BENCH_CONSOLE_BENCH_H

struct db;

struct console_bench_load {
	long calls;
	long drivers;
	int lines; /* per call with a conversation */
	int days;  /* the calls span the last days */
};

/* COPYs the calls and their lines into db's schema. 0 or -1 (printed). */
int console_bench_load(struct db *db, const struct console_bench_load *o);

#endif
