#!/usr/bin/env bash
# Installs dependencies, builds, and runs the daemon on the embedded default
# model: `strata serve` starts, one request goes through `strata client` to
# show it answering, and the daemon keeps serving until Ctrl-C (which drains
# it: requests in flight finish, then it exits 0).
#
# Arguments go to `strata serve`, e.g.
#   scripts/run.sh --config configs/examples/rag-server.yaml
#   scripts/run.sh --set server.listen=0.0.0.0:50051 --set logging.format=json
# Without arguments it serves on 127.0.0.1:50051 (gRPC) and 127.0.0.1:9400
# (/metrics) with a 256 MiB KV cache.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh

log="$(mktemp -t strata-serve.XXXXXX)"
trap 'rm -f "$log"' EXIT
# The daemon's log goes to the terminal and to $log, where its bound address is read.
build/bin/strata serve "$@" 2> >(tee "$log" >&2) &
pid=$!
# Ctrl-C reaches this script; the daemon (a background job) gets SIGTERM from it.
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM

address=""
for _ in $(seq 1200); do
  address="$(sed -n -E 's/.*(event=listening|"event":"listening").*grpc=?"?:?"?([0-9.]+:[0-9]+).*/\2/p' "$log" | head -n1)"
  [[ -n "$address" ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -n "$address" ]]; then
  echo "run.sh: strata serves on $address; one request:" >&2
  build/bin/strata client --server "$address" --prompt "Once upon a time" --max-tokens 60 \
    --session demo || true
  echo "run.sh: ask it more with: build/bin/strata client --server $address --prompt TEXT" >&2
  echo "run.sh: Ctrl-C stops the daemon" >&2
fi

# `wait` returns early when the trap runs; wait again until the daemon is gone.
while :; do
  if wait "$pid"; then status=0; else status=$?; fi
  kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
