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

/* The workers' writes per call (console_writes.c), the fastest of rounds passes each: us[0] with
 * 008's indexes and 010's triggers, us[1] without the triggers, us[2] without either. 0 or -1. */
int console_bench_writes(struct db *db, long calls, int rounds, double us[3]);

#endif
