#!/usr/bin/env bash
# ops_demo.sh: the worked examples of docs/operations.md, run for real on a throwaway stack
# (private Postgres, devbroker, elevensim, ingress, dialer, transcriber). Prints every command
# it runs ("$ ...") with its output, so the guide's examples can be regenerated.
#
#   tests/e2e/ops_demo.sh [--build-dir DIR]      (default build/ci; run scripts/build first)
#
# 1. three calls go through; 2. a "restore from backup" loses the lines written after T1 and
# `transcriber replay --from T1` puts exactly those back; 3. webhooks for a call the database
# does not know are dead-lettered (unknown_call_sid), inspected with kcat, and redriven after
# the row is restored. Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
build=build/ci
[ "${1:-}" = --build-dir ] && build=$2
bin="$root/$build/bin"
[ -x "$bin/transcriber" ] || {
	echo "ops_demo: no binaries in $bin (scripts/build --build-dir $build)" >&2
	exit 2
}

tmp=$(mktemp -d /tmp/callpipe-ops.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	scripts/pg stop --dir "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=scripts/lib/ports.sh
. "$root/scripts/lib/ports.sh"
wait_http() {
	for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "ops_demo: $1 did not answer" >&2
	return 1
}
show() { # prints the command (binaries by their name), then runs it
	local shown=("${1##*/}" "${@:2}")
	printf '$ %s\n' "${shown[*]}"
	"$@"
}
showsql() { # prints the query as a psql command, then runs it
	printf '$ psql -c "%s"\n' "$1"
	sql "$1"
}
sql() { scripts/pg psql --dir "$tmp/pg" -q -X -v ON_ERROR_STOP=1 -c "set search_path = dev" -c "$1"; }
sqlv() { scripts/pg psql --dir "$tmp/pg" -q -X -tA -v ON_ERROR_STOP=1 -c "set search_path = dev" -c "$1"; }
sign() { # body -> header value
	local t
	t=$(date +%s)
	printf 't=%s,v0=%s' "$t" "$(printf '%s.%s' "$t" "$1" | openssl dgst -sha256 -hmac "$secret" | awk '{print $NF}')"
}

# ---- the stack ----
scripts/pg start --dir "$tmp/pg" --env-file "$tmp/pg.env" >/dev/null
. "$tmp/pg.env"
token=ops-demo-token-0123456789
secret=ops-demo-webhook-secret-0123456789
export DATABASE_URL=$CALLPIPE_TEST_DATABASE_URL DB_SCHEMA=dev LOG_LEVEL=warn
export INGRESS_API_TOKEN=$token ELEVENLABS_WEBHOOK_SECRET=$secret
export ELEVENLABS_API_KEY=sim-key ELEVENLABS_AGENT_ID=agent_sim ELEVENLABS_PHONE_NUMBER_ID=phnum_sim
export KAFKA_SESSION_TIMEOUT_MS=6000 TRANSCRIBER_UNKNOWN_RETRY_MAX_MS=3000
"$bin/migrate" up >/dev/null 2>&1
"$bin/devbroker" --bootstrap-file "$tmp/bootstrap" --control-file "$tmp/control" >"$tmp/devbroker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$tmp/bootstrap" ] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat "$tmp/bootstrap")
ingress="http://127.0.0.1:$(ports_pick)"
sim="http://127.0.0.1:$(ports_pick)"
ELEVENSIM_WEBHOOK_URL=$ingress "$bin/elevensim" --listen "${sim#http://}" --turns 6 \
	--turn-delay-ms 300 --latency-ms 100 >"$tmp/elevensim.log" 2>&1 &
pids+=($!)
export ELEVENLABS_BASE_URL=$sim
HTTP_LISTEN=${ingress#http://} "$bin/ingress" >"$tmp/ingress.log" 2>&1 &
pids+=($!)
HTTP_LISTEN=127.0.0.1:$(ports_pick) "$bin/dialer" >"$tmp/dialer.log" 2>&1 &
pids+=($!)
tport=$(ports_pick)
HTTP_LISTEN=127.0.0.1:$tport "$bin/transcriber" >"$tmp/transcriber.log" 2>&1 &
pids+=($!)
wait_http "$sim/healthz"
wait_http "$ingress/readyz"
wait_http "http://127.0.0.1:$tport/healthz"

post_calls() { # timestamp driverId...
	local ts=$1 drivers="" d
	shift
	for d in "$@"; do
		drivers+="${drivers:+,}{\"driverId\":\"$d\",\"driverName\":\"Driver $d\",\"phoneNumber\":\"212-555-$d\"}"
	done
	curl -sS -X POST "$ingress/driver_data/call-elevenlabs" -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/json' \
		-d "{\"callType\":\"check_in\",\"timestamp\":\"$ts\",\"drivers\":[$drivers]}" >/dev/null
}
wait_done() { # n calls not in_progress
	for _ in $(seq 1 300); do
		[ "$(sqlv "select count(*) from calls where status <> 'in_progress'")" -ge "$1" ] && return 0
		sleep 0.2
	done
	echo "ops_demo: calls did not finish" >&2
	return 1
}

echo "## 1. three calls"
post_calls 2025-11-21T10:00:00Z 4101 4102 4103
wait_done 3
sleep 1
# The "backup" was taken mid-call: just before the first fourth line was written.
t1=$(sqlv "select to_char(min(created_at) at time zone 'UTC' - interval '1 ms', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') from call_transcriptions where sequence_number = 4")
showsql "select call_sid, status, (select count(*) from call_transcriptions t where t.conversation_id = c.conversation_id) as lines from calls c order by call_sid"

echo "## 2. restore from a backup taken at $t1, then replay"
sql "delete from call_transcriptions where created_at >= '$t1';
     update calls set status = 'in_progress', call_end_time = null where call_end_time >= '$t1'" >/dev/null
showsql "select call_sid, status, (select count(*) from call_transcriptions t where t.conversation_id = c.conversation_id) as lines from calls c order by call_sid"
show "$bin/transcriber" replay --from "$t1" 2>/dev/null
showsql "select call_sid, status, (select string_agg(sequence_number || ':' || left(message, 12), ' | ' order by sequence_number) from call_transcriptions t where t.conversation_id = c.conversation_id) as lines from calls c where call_sid like 'EL_4101%'"
# The window starts at the broker timestamps (when the ingress accepted a webhook), which run
# ahead of the database's created_at by the pipeline's lag: start a minute earlier.
t0=$(date -u -d "${t1%Z} UTC - 60 seconds" +%Y-%m-%dT%H:%M:%S.%3NZ)
show "$bin/transcriber" replay --from "$t0" 2>/dev/null
showsql "select call_sid, status, (select string_agg(sequence_number || ':' || left(message, 12), ' | ' order by sequence_number) from call_transcriptions t where t.conversation_id = c.conversation_id) as lines from calls c where call_sid like 'EL_4101%'"
showsql "select call_sid, status, (select count(*) from call_transcriptions t where t.conversation_id = c.conversation_id) as lines from calls c order by call_sid"
show "$bin/transcriber" replay --from 1970-01-01T00:00:00Z 2>/dev/null

echo "## 3. dead letters and redrive"
for i in 1 2; do
	body="{\"call_sid\":\"EL_4999_2025-11-21T09:00:00Z\",\"speaker\":\"user\",\"message\":\"legacy line $i\"}"
	curl -sS -o /dev/null -X POST "$ingress/webhooks/elevenlabs/transcription" \
		-H "ElevenLabs-Signature: $(sign "$body")" -H 'Content-Type: application/json' -d "$body"
done
sleep 6 # TRANSCRIBER_UNKNOWN_RETRY_MAX_MS=3000 in this demo (default 30 s)
show kcat -b "$KAFKA_BROKERS" -C -t webhooks.transcription.dlq -e -q \
	-f 'key=%k partition=%p offset=%o headers=%h\nvalue=%s\n'
show curl -sS "http://127.0.0.1:$tport/metrics" -o "$tmp/metrics"
grep -E '^transcriber_(dead_lettered|inserted)_total' "$tmp/metrics"
showsql "insert into calls (call_sid, conversation_id, driver_id, status) values ('EL_4999_2025-11-21T09:00:00Z', 'conv_legacy_4999', '4999', 'in_progress')"
show "$bin/transcriber" redrive --reason unknown_call_sid 2>/dev/null
sleep 2
showsql "select sequence_number, speaker, message from call_transcriptions where conversation_id = 'conv_legacy_4999' order by sequence_number"
show "$bin/transcriber" redrive --reason unknown_call_sid 2>/dev/null
