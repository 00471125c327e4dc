#!/usr/bin/env python3
"""bench/e2e_watch.py: the clock of one bench/e2e pass, light enough not to compete with it.

   e2e_watch.py INGRESS_METRICS_URL TRANSCRIBER_METRICS_URL LINES WRK_PID ACKED0 STORED0

Polls both /metrics every 5 ms over kept-alive connections: the ingress's acknowledged
transcription webhooks (ingress_publish_latency_seconds_count) and the transcriber's stored lines
(transcriber_inserted_total), counted from ACKED0 and STORED0 (their values before wrk started:
a short pass can be over before this starts). The sending ends when LINES were acknowledged, or
when nothing more was for a second (wrk may drop a line: it builds a connection's next request
before it knows the connection is still open); then wrk gets SIGINT (it reports and exits). The
pass ends when as many lines are stored as were acknowledged.
Prints "acked t_first_ack t_last_ack t_stored" (seconds, the same clock as time.time()). Exits 1
when nothing is acknowledged within 30 s, or the stored count stops short of the acknowledged one
for 30 s (a line lost), or goes past it (a line stored twice)."""
import http.client
import os
import re
import signal
import sys
import time
from urllib.parse import urlparse

ACKED = re.compile(rb'^ingress_publish_latency_seconds_count\{topic="webhooks\.transcription"\} (\d+)',
                   re.M)
STORED = re.compile(rb"^transcriber_inserted_total (\d+)", re.M)


class Metrics:
    def __init__(self, url, pattern):
        u = urlparse(url)
        self.host, self.port, self.path, self.pattern = u.hostname, u.port, u.path, pattern
        self.conn = None

    def value(self):
        for _ in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                self.conn.request("GET", self.path)
                m = self.pattern.search(self.conn.getresponse().read())
                return int(m.group(1)) if m else 0
            except (OSError, http.client.HTTPException):
                self.conn = None
        raise SystemExit("e2e_watch: cannot read " + self.path)


def main():
    ingress, transcriber = Metrics(sys.argv[1], ACKED), Metrics(sys.argv[2], STORED)
    lines, wrk = int(sys.argv[3]), int(sys.argv[4])
    a0, s0 = int(sys.argv[5]), int(sys.argv[6])
    if wrk <= 1:
        raise SystemExit("e2e_watch: WRK_PID must be wrk's pid")
    acked, first, last = 0, None, time.time()
    stored, stored_at = 0, last  # stored_at: when the stored count last grew
    start = last
    trace, next_trace = os.getenv("E2E_TRACE"), 0

    def look_stored():
        nonlocal stored, stored_at
        n = transcriber.value() - s0
        if n > stored:
            stored, stored_at = n, time.time()

    while True:
        n = ingress.value() - a0
        t = time.time()
        look_stored()
        if trace and t >= next_trace:
            print(f"trace {t:.3f} acked {n} stored {stored}", file=sys.stderr)
            next_trace = t + 0.1
        if n > acked:
            acked, last = n, t
            first = first or t
        if acked >= lines or (first and t - last > 1.0):
            break
        if not first and t - start > 30:
            os.kill(wrk, signal.SIGINT)
            print("0 0 0 0 nothing acknowledged in 30 s")
            return 1
        time.sleep(0.005)
    try:
        os.kill(wrk, signal.SIGINT)
    except ProcessLookupError:
        pass
    while stored < acked:
        if time.time() - stored_at > 30:
            print(f"{acked} {first} {last} 0 only {stored} of {acked} acknowledged lines stored")
            return 1
        time.sleep(0.005)
        look_stored()
    done = stored_at
    time.sleep(0.5)  # a line stored twice would show as more
    look_stored()
    if stored != acked:
        print(f"{acked} {first} {last} 0 {stored} lines stored for {acked} acknowledged")
        return 1
    print(f"{acked} {first} {last} {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
