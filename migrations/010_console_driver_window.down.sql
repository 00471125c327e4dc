-- 010_console_driver_window down: the rolling per-driver rollup, its triggers and functions.
-- Nothing is lost: the rollup is derived from calls (/stats/drivers then aggregates every window).
DROP TRIGGER calls_console_window_truncate ON calls;
DROP TRIGGER calls_console_window_upd ON calls;
DROP TRIGGER calls_console_window_del ON calls;
DROP TRIGGER calls_console_window_ins ON calls;
DROP FUNCTION console_driver_window_advance();
DROP FUNCTION console_driver_window_truncate();
DROP FUNCTION console_driver_window_trigger();
DROP FUNCTION console_driver_window_apply(varchar, timestamptz, varchar, int);
DROP TABLE console_driver_window;
DROP TABLE console_driver_window_state;
DROP FUNCTION console_driver_window_rate(bigint, bigint);
