#!/usr/bin/env bash
# Builds the Strata image (deploy/Dockerfile) with podman and checks it end to
# end:
#   1. the image: its size, a non-root user, no compilers or test tools;
#   2. two containers serving, healthy over gRPC;
#   3. HAProxy with the shipped deploy/haproxy/haproxy.cfg (its addresses
#      rewritten to this host's free ports) in front of them: every session's
#      requests land on one daemon (session affinity on x-session-id), and a
#      repeated prompt finds its KV cached there;
#   4. each daemon's /metrics: counts the requests it served, passes
#      `promtool check metrics`;
#   5. SIGTERM (podman stop) drains each daemon, and it exits 0.
#
# Needs root (podman without a user namespace set-up) and a network to the
# Debian mirror (apt-get and debootstrap); no image registry: the base image
# is made with debootstrap unless --base names one that exists. Installs
# podman, buildah, runc, debootstrap, haproxy, curl and prometheus (promtool)
# when missing. Containers use the host network, so no bridge is needed.
#
# Usage: deploy/test-image.sh [--base IMAGE] [--tag TAG] [--no-build]
#   --base IMAGE  Debian 12 base of both stages (default
#                 localhost/strata-base:bookworm, made here when absent)
#   --tag TAG     the image to build and test (default localhost/strata:test)
#   --no-build    test TAG as it is
set -euo pipefail

base=localhost/strata-base:bookworm
tag=localhost/strata:test
build=1
while (($#)); do
  case $1 in
    --base) base=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [--base IMAGE] [--tag TAG] [--no-build]" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /var/tmp/strata-image-test.XXXXXX)
suffix=$$
containers=("strata-test-1-$suffix" "strata-test-2-$suffix")
haproxy_pid=""

log() { echo "test-image: $*"; }
fail() { echo "test-image: FAIL: $*" >&2; exit 1; }

# podman as these machines need it: runc, cgroupfs, and no default ulimits
# (the sandbox refuses to raise them).
cat > "$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []
EOF
export CONTAINERS_CONF="$work/containers.conf"
pm() { podman --runtime runc --cgroup-manager=cgroupfs "$@"; }

cleanup() {
  local rc=$?
  [[ -n "$haproxy_pid" ]] && kill "$haproxy_pid" 2>/dev/null && wait "$haproxy_pid" 2>/dev/null
  for c in "${containers[@]}"; do pm rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

install_tools() {
  local missing=()
  for tool in podman:podman buildah:buildah runc:runc debootstrap:debootstrap haproxy:haproxy \
              curl:curl promtool:prometheus python3:python3; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

make_base() {
  if pm image exists "$base"; then return; fi
  [[ "$base" == localhost/* ]] || fail "base image $base is absent (no registry to pull from here)"
  log "making $base with debootstrap --variant=minbase bookworm"
  nice -n 10 debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian \
    > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  # As the official debian:12 image: no package lists or caches.
  rm -rf "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb \
    "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -c . | pm import --quiet - "$base" >/dev/null
  rm -rf "$work/rootfs"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# strata_request_success_total summed over finish reasons, from /metrics.
served() {
  curl -fsS "http://127.0.0.1:$1/metrics" |
    awk '/^strata_request_success_total\{/ {n += $2} END {print n + 0}'
}

client() { pm exec "${containers[0]}" /usr/local/bin/strata client "$@"; }

install_tools
make_base

if ((build)); then
  log "building $tag from $base (nice; the builder compiles the whole daemon)"
  start=$(date +%s)
  nice -n 10 podman --runtime runc --cgroup-manager=cgroupfs build --network=host \
    --ignorefile "$repo/deploy/Dockerfile.dockerignore" -f "$repo/deploy/Dockerfile" \
    --build-arg BASE_IMAGE="$base" -t "$tag" "$repo" > "$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log"; fail "podman build"; }
  log "built in $(($(date +%s) - start)) s"
fi

# 1. The image.
size=$(pm image inspect --format '{{.Size}}' "$tag")
base_size=$(pm image inspect --format '{{.Size}}' "$base" 2>/dev/null || echo 0)
log "image $tag: $((size / 1000000)) MB (base $((base_size / 1000000)) MB)"
user=$(pm run --rm --network=host --entrypoint /usr/bin/id "$tag" -u)
[[ "$user" != 0 ]] || fail "the image runs as root"
log "runs as uid $user"
tools=$(pm run --rm --network=host --entrypoint /bin/sh "$tag" -c \
  'for t in gcc g++ cc c++ cmake ninja nvcc make promtool haproxy git; do command -v $t; done; ls /src 2>/dev/null' || true)
[[ -z "$tools" ]] || fail "the runtime image carries build or test tools: $tools"
log "no compilers, build or test tools, no sources"

# 2. Two daemons.
grpc=("$(free_port)" "$(free_port)")
metrics=("$(free_port)" "$(free_port)")
front=$(free_port)
# The second runs as deploy/kubernetes/strata.yaml does: read-only root
# file system, the disk tier on a volume owned by the image's user.
mkdir -p "$work/kv"
chown 10001:10001 "$work/kv"
extra=(
  ""
  "--read-only -v $work/kv:/var/lib/strata/kv"
)
tier=(
  ""
  "--set cache.disk_path=/var/lib/strata/kv --set cache.disk_bytes=64MiB"
)
for i in 0 1; do
  # shellcheck disable=SC2086  # the extra options are words
  pm run -d --name "${containers[$i]}" --network=host ${extra[$i]} "$tag" \
    --set "server.listen=127.0.0.1:${grpc[$i]}" --set "metrics.listen=127.0.0.1:${metrics[$i]}" \
    --set server.drain_timeout=10s ${tier[$i]} > /dev/null
done
for i in 0 1; do
  ok=0
  for _ in $(seq 300); do
    if [[ "$(client --server "127.0.0.1:${grpc[$i]}" --health 2>/dev/null)" == SERVING ]]; then
      ok=1; break
    fi
    sleep 0.2
  done
  ((ok)) || { pm logs "${containers[$i]}" | tail -20; fail "daemon $((i + 1)) never became healthy"; }
  log "daemon $((i + 1)): gRPC 127.0.0.1:${grpc[$i]} SERVING, /metrics 127.0.0.1:${metrics[$i]}"
done

# 3. HAProxy, the shipped config with this host's addresses.
sed -e "s|bind 0.0.0.0:50051|bind 127.0.0.1:$front|" \
    -e "s|server strata1 strata-1:50051|server strata1 127.0.0.1:${grpc[0]}|" \
    -e "s|server strata2 strata-2:50051|server strata2 127.0.0.1:${grpc[1]}|" \
    "$repo/deploy/haproxy/haproxy.cfg" > "$work/haproxy.cfg"
for want in "bind 127.0.0.1:$front" "127.0.0.1:${grpc[0]}" "127.0.0.1:${grpc[1]}"; do
  grep -q "$want" "$work/haproxy.cfg" || fail "haproxy.cfg changed shape: no '$want' after rewriting"
done
haproxy -c -f "$work/haproxy.cfg" > /dev/null || fail "haproxy -c rejects the config"
haproxy -db -f "$work/haproxy.cfg" > "$work/haproxy.log" 2>&1 &
haproxy_pid=$!
ok=0
for _ in $(seq 100); do
  if [[ "$(client --server "127.0.0.1:$front" --health 2>/dev/null)" == SERVING ]]; then ok=1; break; fi
  sleep 0.2
done
((ok)) || { cat "$work/haproxy.log"; fail "no health answer through HAProxy"; }
log "HAProxy on 127.0.0.1:$front: health SERVING through it"

prompt="A lighthouse keeper wrote a letter every evening to the ships that passed in the night, and"
on=(0 0)
for session in alpha bravo charlie delta echo foxtrot; do
  before=("$(served "${metrics[0]}")" "$(served "${metrics[1]}")")
  for turn in 1 2; do
    out=$(client --server "127.0.0.1:$front" --session "$session" --prompt "$prompt $session" \
      --max-tokens 4 --seed "$turn" 2>&1) || fail "request through HAProxy failed: $out"
    cached=$(sed -n 's/.*cached_prompt_tokens=\([0-9]*\).*/\1/p' <<< "$out")
  done
  # Both turns finished somewhere: wait for their count, then see where.
  for _ in $(seq 100); do
    total=$(($(served "${metrics[0]}") - before[0] + $(served "${metrics[1]}") - before[1]))
    ((total >= 2)) && break
    sleep 0.1
  done
  d0=$(($(served "${metrics[0]}") - before[0]))
  d1=$(($(served "${metrics[1]}") - before[1]))
  if ((d0 == 2 && d1 == 0)); then where=1; elif ((d0 == 0 && d1 == 2)); then where=2; else
    fail "session $session split across daemons: $d0 on daemon 1, $d1 on daemon 2"
  fi
  on[$((where - 1))]=$((on[where - 1] + 1))
  ((cached > 0)) || fail "session $session's second turn found no cached prompt tokens"
  log "session $session: both turns on daemon $where; second turn reused $cached cached prompt tokens"
done
log "sessions per daemon: ${on[0]} and ${on[1]}"
((on[0] > 0 && on[1] > 0)) || fail "all sessions went to one daemon: HAProxy did not balance"

# 4. /metrics.
for i in 0 1; do
  curl -fsS "http://127.0.0.1:${metrics[$i]}/metrics" > "$work/metrics-$i.txt"
  promtool check metrics < "$work/metrics-$i.txt" > "$work/promtool-$i.txt" 2>&1 ||
    { cat "$work/promtool-$i.txt"; fail "promtool rejects daemon $((i + 1))'s /metrics"; }
  grep -q '^strata_prompt_tokens_by_source_total{source="device_hit"}' "$work/metrics-$i.txt" ||
    fail "daemon $((i + 1))'s /metrics lacks strata_prompt_tokens_by_source_total"
  log "daemon $((i + 1)) /metrics: $(grep -c '^strata_' "$work/metrics-$i.txt") strata_ samples, $(served "${metrics[$i]}") requests served, promtool clean"
done

# 5. SIGTERM: drain, exit 0; the disk tier's RocksDB is on the volume.
kill "$haproxy_pid" && wait "$haproxy_pid" 2>/dev/null || true
haproxy_pid=""
for c in "${containers[@]}"; do
  pm stop -t 30 "$c" > /dev/null
  code=$(pm inspect --format '{{.State.ExitCode}}' "$c")
  [[ "$code" == 0 ]] || { pm logs "$c" | tail -20; fail "$c exited $code after SIGTERM"; }
  drained=$(pm logs "$c" 2>&1 | grep -c 'drain' || true)
  log "$c: SIGTERM -> exit 0 ($drained drain log lines)"
done
[[ -n "$(ls -A "$work/kv")" ]] || fail "the disk tier wrote nothing to its volume"
log "disk tier volume: $(du -sh "$work/kv" | cut -f1) written by uid $(stat -c %u "$work/kv")"
log "PASS"
