#!/usr/bin/env bash
# compose_check.sh: validates compose/ without Docker (CI cannot run containers here).
#
#   tests/e2e/compose_check.sh SOURCE_DIR BIN_DIR
#
# 1. `docker-compose config -q` accepts compose/docker-compose.yml with a temporary .env made
#    from compose/.env.example (and refuses it without one: the secrets are required).
# 2. Every environment variable compose sets for a callpipe service (ingress, dialer,
#    transcriber, migrate, elevensim) appears in that binary's `--help`, and each ENV line of
#    the image in at least one binary's: a misspelt name would otherwise be silently ignored.
# 3. The services run the binary they are named after, the workers publish no ports (so
#    `--scale` works), and the topics created are the ones kbus.h names.
# 4. The Dockerfile builds with scripts/deps --build and scripts/build, the same recipe CI uses
#    (.ci/run -> scripts/test -> scripts/build), and its final stage has no compiler and runs
#    as a non-root user.
set -euo pipefail

src=${1:?usage: compose_check.sh SOURCE_DIR BIN_DIR}
bin=${2:?usage: compose_check.sh SOURCE_DIR BIN_DIR}
compose="$src/compose/docker-compose.yml"
dockerfile="$src/compose/Dockerfile"
failures=0
fail() {
	echo "compose_check: FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() { echo "compose_check: ok: $*"; }

tmp=$(mktemp -d /tmp/compose-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

command -v docker-compose >/dev/null || {
	echo "compose_check: docker-compose is not installed (scripts/deps installs it)" >&2
	exit 1
}

# ---- 1. config validates with the example environment, and not without the secrets ----
cp "$src/compose/.env.example" "$tmp/.env"
if docker-compose --env-file "$tmp/.env" -f "$compose" config -q 2>"$tmp/config.err"; then
	ok "docker-compose config -q with .env.example"
else
	cat "$tmp/config.err" >&2
	fail "docker-compose config -q rejects the file with .env.example"
fi
docker-compose --env-file "$tmp/.env" -f "$compose" config >"$tmp/resolved.yml" 2>/dev/null || true

: >"$tmp/empty.env"
if env -u POSTGRES_PASSWORD -u INGRESS_API_TOKEN -u ELEVENLABS_WEBHOOK_SECRET \
	docker-compose --env-file "$tmp/empty.env" -f "$compose" config -q >/dev/null 2>&1; then
	fail "docker-compose config accepts an empty .env: required secrets are not enforced"
else
	ok "config refuses to run without the secrets set"
fi

# ---- 2./3. per-service environment and commands from the resolved config ----
python3 - "$tmp/resolved.yml" "$tmp" <<'EOF' || fail "could not read the resolved compose config"
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
out = sys.argv[2]
services = cfg.get("services", {})
for name in ("ingress", "dialer", "transcriber", "migrate", "elevensim"):
    svc = services.get(name)
    if svc is None:
        print(f"missing service {name}", file=sys.stderr)
        sys.exit(1)
    cmd = svc.get("command") or []
    if isinstance(cmd, str):
        cmd = cmd.split()
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    with open(f"{out}/{name}.cmd", "w") as f:
        f.write((cmd[0] if cmd else "") + "\n")
    with open(f"{out}/{name}.env", "w") as f:
        for k in sorted(env):
            f.write(k + "\n")
    with open(f"{out}/{name}.ports", "w") as f:
        f.write(str(len(svc.get("ports") or [])) + "\n")
    with open(f"{out}/{name}.container_name", "w") as f:
        f.write(str(svc.get("container_name", "")) + "\n")
topics = services.get("kafka-topics", {})
cmd = topics.get("command") or []
with open(f"{out}/kafka-topics.cmd", "w") as f:
    f.write("\n".join(cmd) if isinstance(cmd, list) else cmd)
EOF

# ENV lines of the runtime image apply to every service too.
image_env=$(awk '/^FROM /{stage++} stage>=2 && /^ENV /{for (i=2;i<=NF;i++){split($i,a,"="); print a[1]}}' "$dockerfile")

for svc in ingress dialer transcriber migrate elevensim; do
	[ -f "$tmp/$svc.cmd" ] || {
		fail "$svc: not in the resolved config"
		continue
	}
	cmd=$(cat "$tmp/$svc.cmd")
	if [ "$cmd" != "$svc" ]; then
		fail "$svc: runs '$cmd', expected the $svc binary"
	fi
	if [ ! -x "$bin/$svc" ]; then
		fail "$svc: binary $bin/$svc not built"
		continue
	fi
	# (leak checking off: under the ASan build this is about the names, not about --help's memory)
	help=$(ASAN_OPTIONS=detect_leaks=0 "$bin/$svc" --help 2>&1) || {
		fail "$svc --help exits non-zero"
		continue
	}
	known=0 unknown=0
	for var in $(cat "$tmp/$svc.env"); do
		if grep -qw -- "$var" <<<"$help"; then
			known=$((known + 1))
		else
			unknown=$((unknown + 1))
			fail "$svc: compose sets $var but '$svc --help' does not know it"
		fi
	done
	[ "$unknown" -eq 0 ] && ok "$svc: $known environment variables, all known to '$svc --help'"
done

# The image's ENV lines reach every container; each must be a setting of at least one binary.
for var in $image_env; do
	found=0
	for svc in ingress dialer transcriber migrate elevensim; do
		[ -x "$bin/$svc" ] && ASAN_OPTIONS=detect_leaks=0 "$bin/$svc" --help 2>&1 | grep -qw -- "$var" && found=1
	done
	[ "$found" = 1 ] && ok "image ENV $var is a known setting" ||
		fail "the Dockerfile sets ENV $var, which no binary's --help knows"
done

for svc in dialer transcriber; do
	[ -f "$tmp/$svc.ports" ] || continue
	[ "$(cat "$tmp/$svc.ports")" = 0 ] || fail "$svc publishes ports: --scale $svc=N would clash"
	[ -z "$(tr -d '\n' <"$tmp/$svc.container_name")" ] ||
		fail "$svc has a container_name: --scale $svc=N would clash"
done
ok "workers scale (no published ports, no container_name)"

kbus_h="$src/common/kbus.h"
for topic in $(sed -n 's/^#define KBUS_TOPIC_[A-Z_]* *"\(.*\)"/\1/p' "$kbus_h"); do
	grep -q -- "mk $topic " "$tmp/kafka-topics.cmd" ||
		fail "kafka-topics does not create $topic (kbus.h names it)"
	grep -q -- "$topic.dlq\|for base in .*$topic" "$tmp/kafka-topics.cmd" ||
		fail "kafka-topics does not create $topic.dlq"
done
ok "kafka-topics creates every topic in kbus.h and its .dlq"

# ---- 4. the Dockerfile uses CI's recipe and a clean runtime stage ----
grep -Eq '^RUN[[:space:]].*scripts/deps --build' "$dockerfile" ||
	fail "Dockerfile does not install packages with scripts/deps --build"
grep -Eq '^RUN[[:space:]].*scripts/build( |$)' "$dockerfile" ||
	fail "Dockerfile does not build with scripts/build"
if grep -Eq '^RUN[[:space:]].*(cmake|make|gcc|cc )' "$dockerfile"; then
	fail "Dockerfile builds with its own commands instead of scripts/build"
fi
grep -q 'scripts/test' "$src/.ci/run" || fail ".ci/run does not go through scripts/test"
grep -Eq '^[^#]*scripts/build ' "$src/scripts/test" || fail "scripts/test does not build with scripts/build"
runtime=$(awk '/^FROM /{stage++} stage>=2' "$dockerfile")
[ "$(grep -c '^FROM ' "$dockerfile")" -ge 2 ] || fail "Dockerfile is not multi-stage"
grep -q '^FROM debian:bookworm' "$dockerfile" || fail "Dockerfile is not based on Debian bookworm"
if grep -Eqw 'build-essential|gcc|clang|cmake|g\+\+|libc6-dev' <<<"$runtime"; then
	fail "the Dockerfile's final stage installs a compiler or build tool"
fi
user=$(grep -E '^USER ' <<<"$runtime" | tail -1 | awk '{print $2}')
[ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] || fail "the final stage does not run as a non-root user"
for b in ingress dialer transcriber migrate elevensim; do
	grep -q "bin/$b" <<<"$runtime" || fail "the final stage does not copy $b"
done
ok "Dockerfile: scripts/deps --build + scripts/build, multi-stage, no compiler, USER $user"

if [ "$failures" -ne 0 ]; then
	echo "compose_check: $failures problem(s)" >&2
	exit 1
fi
echo "compose_check: all good"
