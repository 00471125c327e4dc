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
#    `--scale` works), and every variable .env.example sets is used by the compose file.
# 4. Kafka: compose, the topic definition and the scripts agree. The broker image is
#    apache/kafka:<the version tools/kafka/pom.xml pins> (= `scripts/kafka version`; no Java is
#    started); topic auto-creation is off in compose and in scripts/kafka; the topics job runs
#    the callpipe image's `topics create` and the ingress and workers wait for it; `topics list`
#    prints exactly the topics kbus.h names and their .dlq, with kbus_topics.h's partition
#    counts; compose passes no partition counts of its own (with .env.example the job plans
#    exactly what the definition's defaults plan).
# 5. The Dockerfile builds with scripts/deps --build and scripts/build, the same recipe CI uses
#    (.ci/run -> scripts/test -> scripts/build), and its final stage has no compiler, copies
#    every binary compose runs and runs as a non-root user.
#
# Needs docker-compose (config only: no Docker engine), python3-yaml and the built binaries; no
# network.
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
for name in ("ingress", "dialer", "transcriber", "migrate", "elevensim", "topics"):
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
    with open(f"{out}/{name}.image", "w") as f:
        f.write(str(svc.get("image", "")) + "\n")
# The topics job: its whole command line, its environment with values, its image.
topics = services.get("topics", {})
cmd = topics.get("command") or []
if isinstance(cmd, str):
    cmd = cmd.split()
with open(f"{out}/topics.argv", "w") as f:
    f.write("".join(a + "\n" for a in cmd))
env = topics.get("environment") or {}
if isinstance(env, list):
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
with open(f"{out}/topics.envvals", "w") as f:
    for k in sorted(env):
        f.write(f"{k}={'' if env[k] is None else env[k]}\n")
# Every image of Apache Kafka in the file (the broker, and any tool job that uses the image).
with open(f"{out}/kafka.images", "w") as f:
    for name, svc in sorted(services.items()):
        img = str(svc.get("image", ""))
        if img.split(":")[0] in ("apache/kafka", "apache/kafka-native"):
            f.write(f"{name} {img}\n")
kenv = services.get("kafka", {}).get("environment") or {}
if isinstance(kenv, list):
    kenv = dict(e.split("=", 1) if "=" in e else (e, "") for e in kenv)
with open(f"{out}/kafka.autocreate", "w") as f:
    f.write(str(kenv.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "")).lower() + "\n")
# Who waits for the topics job to have finished.
with open(f"{out}/topics.waiters", "w") as f:
    for name, svc in sorted(services.items()):
        dep = svc.get("depends_on") or {}
        if isinstance(dep, dict) and \
                (dep.get("topics") or {}).get("condition") == "service_completed_successfully":
            f.write(name + "\n")
EOF

# ENV lines of the runtime image apply to every service too.
image_env=$(awk '/^FROM /{stage++} stage>=2 && /^ENV /{for (i=2;i<=NF;i++){split($i,a,"="); print a[1]}}' "$dockerfile")

for svc in ingress dialer transcriber migrate elevensim topics; do
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
	for svc in ingress dialer transcriber migrate elevensim topics; do
		# the help is read whole first: with pipefail, `--help | grep -q` fails whenever grep
		# stops reading before a long help is written (SIGPIPE), so a known name was missed
		[ -x "$bin/$svc" ] || continue
		help=$(ASAN_OPTIONS=detect_leaks=0 "$bin/$svc" --help 2>&1 || true)
		grep -qw -- "$var" <<<"$help" && found=1
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

# Every variable .env.example sets is one the compose file reads (a renamed or dropped setting
# would otherwise linger in everyone's .env, silently doing nothing).
unused=0
for var in $(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$src/compose/.env.example"); do
	if ! grep -Eq '\$\{?'"$var"'([^A-Za-z0-9_]|$)' "$compose"; then
		fail ".env.example sets $var, which docker-compose.yml never reads"
		unused=$((unused + 1))
	fi
done
[ "$unused" -eq 0 ] && ok "every variable of .env.example is used by docker-compose.yml"

# ---- 4. Kafka: compose, the topic definition (common/kbus_topics.h, `topics`) and the scripts ----
# (ok lines only when nothing in their block failed: `before` is the count at the block's start)
pom="$src/tools/kafka/pom.xml"
pom_version=$(python3 -c '
import sys, xml.etree.ElementTree as ET
ns = {"m": "http://maven.apache.org/POM/4.0.0"}
v = ET.parse(sys.argv[1]).getroot().find("m:properties/m:kafka.version", ns)
print(v.text.strip() if v is not None and v.text else "")' "$pom" 2>/dev/null) || pom_version=""
script_version=$(env -u KAFKA_VERSION bash "$src/scripts/kafka" version 2>/dev/null) || script_version=""
if [ -z "$pom_version" ]; then
	fail "no <kafka.version> in $pom"
elif [ "$script_version" != "$pom_version" ]; then
	fail "scripts/kafka version says '$script_version', tools/kafka/pom.xml pins '$pom_version'"
else
	ok "the pinned Kafka is $pom_version (tools/kafka/pom.xml, scripts/kafka version)"
fi
if [ ! -s "$tmp/kafka.images" ]; then
	fail "no service runs an apache/kafka image"
elif [ -n "$pom_version" ]; then
	bad=0
	while read -r svc img; do
		if [ "$img" != "apache/kafka:$pom_version" ]; then
			fail "$svc runs $img, but the pinned Kafka is $pom_version (apache/kafka:$pom_version)"
			bad=$((bad + 1))
		fi
	done <"$tmp/kafka.images"
	[ "$bad" -eq 0 ] && ok "compose runs apache/kafka:$pom_version ($(cut -d' ' -f1 "$tmp/kafka.images" | paste -sd, -))"
fi

before=$failures
[ "$(cat "$tmp/kafka.autocreate" 2>/dev/null)" = false ] ||
	fail "the kafka service does not set KAFKA_AUTO_CREATE_TOPICS_ENABLE: \"false\""
grep -Eq '^[[:space:]]*auto\.create\.topics\.enable=false' "$src/scripts/kafka" ||
	fail "scripts/kafka does not start its broker with auto.create.topics.enable=false"
grep -Eq '/topics"?[[:space:]]+create' "$src/scripts/kafka" ||
	fail "scripts/kafka --topics does not create the topics with the topics binary"
[ "$failures" -eq "$before" ] &&
	ok "topic auto-creation is off (compose, scripts/kafka); scripts/kafka creates topics with 'topics create'"

# The topics job runs `topics create` in the callpipe image, and everything that uses the topics
# waits for it.
before=$failures
if [ "$(paste -sd' ' "$tmp/topics.argv" 2>/dev/null)" != "topics create" ]; then
	fail "the topics job runs '$(paste -sd' ' "$tmp/topics.argv" 2>/dev/null)', expected 'topics create'"
fi
[ -s "$tmp/ingress.image" ] && cmp -s "$tmp/topics.image" "$tmp/ingress.image" ||
	fail "the topics job does not run the callpipe image (the one the ingress runs)"
for svc in ingress dialer transcriber; do
	grep -qx "$svc" "$tmp/topics.waiters" 2>/dev/null ||
		fail "$svc does not wait for the topics job (depends_on topics: service_completed_successfully)"
done
[ "$failures" -eq "$before" ] &&
	ok "the topics job runs 'topics create' in the callpipe image; ingress, dialer, transcriber wait for it"

# `topics list` (no broker) prints exactly kbus.h's topics and their .dlq, with kbus_topics.h's
# partition counts, and honours the prefix.
list() { env -i PATH="$PATH" ASAN_OPTIONS=detect_leaks=0 "$@" "$bin/topics" list; }
kbus_h="$src/common/kbus.h"
topics_h="$src/common/kbus_topics.h"
parts=$(sed -n 's/^#define KBUS_TOPICS_PARTITIONS *\([0-9][0-9]*\).*/\1/p' "$topics_h")
dlq_parts=$(sed -n 's/^#define KBUS_TOPICS_DLQ_PARTITIONS *\([0-9][0-9]*\).*/\1/p' "$topics_h")
[ -n "$parts" ] && [ -n "$dlq_parts" ] ||
	fail "no KBUS_TOPICS_PARTITIONS / KBUS_TOPICS_DLQ_PARTITIONS in $topics_h"
: >"$tmp/topics.expected"
for topic in $(sed -n 's/^#define KBUS_TOPIC_[A-Z_]* *"\(.*\)"/\1/p' "$kbus_h"); do
	echo "$topic $parts" >>"$tmp/topics.expected"
	echo "$topic.dlq $dlq_parts" >>"$tmp/topics.expected"
done
[ "$(wc -l <"$tmp/topics.expected")" -eq 6 ] ||
	fail "kbus.h names $(($(wc -l <"$tmp/topics.expected") / 2)) topics, 3 expected"
if [ ! -x "$bin/topics" ]; then
	fail "binary $bin/topics not built"
elif ! list >"$tmp/topics.list" 2>"$tmp/topics.err"; then
	cat "$tmp/topics.err" >&2
	fail "'topics list' exits non-zero"
else
	if diff <(sort "$tmp/topics.expected") <(sort "$tmp/topics.list") >"$tmp/topics.diff"; then
		ok "topics list: the 6 topics kbus.h names, $parts partitions each and $dlq_parts per .dlq (kbus_topics.h)"
	else
		sed 's/^/  /' "$tmp/topics.diff" >&2
		fail "'topics list' differs from kbus.h's topics and kbus_topics.h's partitions (< expected, > listed)"
	fi
	list KAFKA_TOPIC_PREFIX=check. >"$tmp/topics.prefixed" 2>/dev/null || true
	if [ -s "$tmp/topics.list" ] && diff <(sed 's/^/check./' "$tmp/topics.list") "$tmp/topics.prefixed" >/dev/null; then
		ok "topics list puts KAFKA_TOPIC_PREFIX before every name"
	else
		fail "'topics list' with KAFKA_TOPIC_PREFIX=check. does not prefix every topic"
	fi
	# What the compose job plans with .env.example (its environment and flags, `list` for
	# `create`) is exactly what the definition's defaults plan under the same prefix.
	prefix=$(sed -n 's/^KAFKA_TOPIC_PREFIX=//p' "$tmp/topics.envvals")
	mapfile -t job_env <"$tmp/topics.envvals"
	mapfile -t job_args < <(sed '1d; /^create$/d' "$tmp/topics.argv")
	if ! env -i PATH="$PATH" ASAN_OPTIONS=detect_leaks=0 "${job_env[@]}" \
		"$bin/topics" "${job_args[@]}" list >"$tmp/topics.job" 2>"$tmp/topics.err"; then
		cat "$tmp/topics.err" >&2
		fail "the topics job's settings are refused by 'topics list'"
	elif ! list KAFKA_TOPIC_PREFIX="$prefix" | diff - "$tmp/topics.job" >"$tmp/topics.diff"; then
		sed 's/^/  /' "$tmp/topics.diff" >&2
		fail "the compose topics job sets partition counts of its own (< definition, > compose)"
	else
		ok "the compose topics job plans the definition's partitions ($(grep -c . "$tmp/topics.job") topics)"
	fi
fi

# ---- 5. the Dockerfile uses CI's recipe and a clean runtime stage ----
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
for b in ingress dialer transcriber migrate elevensim topics; do
	grep -q "bin/$b\b" <<<"$runtime" || fail "the final stage does not copy $b"
done
ok "Dockerfile: scripts/deps --build + scripts/build, multi-stage, no compiler, USER $user"

if [ "$failures" -ne 0 ]; then
	echo "compose_check: $failures problem(s)" >&2
	exit 1
fi
echo "compose_check: all good"
