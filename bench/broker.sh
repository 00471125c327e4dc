# bench/broker.sh: sourced by bench/ingress, bench/transcriber and bench/dialer (not run on its
# own). The broker a benchmark runs on, chosen with --broker:
#   devbroker  librdkafka's mock cluster (bin/devbroker), in memory; the default
#   kafka      a throwaway Apache Kafka broker (scripts/kafka: the pinned version, KRaft, loopback,
#              auto-creation off, one JVM) with callpipe's topics made by bin/topics
# The caller sets broker (devbroker|kafka), bin, tmp and a pids array (its cleanup TERMs pids in
# reverse order, then calls broker_stop); broker_start sets broker_addr and broker_pid.

broker_check() { # the value of --broker
  case "$1" in
    devbroker|kafka) ;;
    *) echo "bench: --broker must be devbroker or kafka, not '$1'" >&2; exit 2 ;;
  esac
}

broker_start() { # partitions of calls.requested and webhooks.* (the .dlq topics get 1)
  local i
  case "$broker" in
    devbroker)
      "$bin/devbroker" --partitions "$1" --bootstrap-file "$tmp/bootstrap" >"$tmp/devbroker.log" 2>&1 &
      broker_pid=$!
      pids+=("$broker_pid")
      for i in $(seq 1 200); do [ -s "$tmp/bootstrap" ] && break; sleep 0.1; done
      [ -s "$tmp/bootstrap" ] || { echo "bench: the devbroker gave no bootstrap address" >&2; exit 1; }
      broker_addr=$(cat "$tmp/bootstrap")
      ;;
    kafka)
      if ! scripts/kafka start --dir "$tmp/kafka" --env-file "$tmp/kafka.env" >/dev/null; then
        echo "bench: scripts/kafka start failed; the end of its server.log:" >&2
        tail -n 20 "$tmp/kafka/server.log" >&2 2>/dev/null || true
        exit 1
      fi
      broker_pid=$(cat "$tmp/kafka/pid")
      broker_addr=$(sed -n 's/^KAFKA_BROKERS=//p' "$tmp/kafka.env")
      "$bin/topics" create --kafka-brokers "$broker_addr" --partitions "$1" >"$tmp/topics.log" 2>&1 ||
        { cat "$tmp/topics.log" >&2; echo "bench: topics create failed" >&2; exit 1; }
      ;;
  esac
}

broker_stop() { # after the services have stopped; the devbroker went with pids
  local p
  [ "$broker" = kafka ] && [ -d "$tmp/kafka" ] || return 0
  p=$(cat "$tmp/kafka/pid" 2>/dev/null || true)
  scripts/kafka stop --dir "$tmp/kafka" >/dev/null 2>&1 || true
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -KILL "$p" 2>/dev/null || true
    echo "bench: the Kafka broker (pid $p) outlived scripts/kafka stop: killed" >&2
  fi
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # a process's user + system, in clock ticks
box_ticks() { # the whole machine, in clock ticks: busy (user, nice, system, irq, softirq) and total
  awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6 + $9 }' /proc/stat
}
