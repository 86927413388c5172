#!/usr/bin/env bash
# Soak test, run by hand (not in CI): the daemon with all three KV tiers
# (a small device arena, host memory, a RocksDB disk tier that survives
# restarts) under mixed load for DURATION seconds: `strata bench serve`
# (chat, shared-prefix and agent workloads, open-loop arrivals), streams cut
# short by deadlines (cancels), sessions, and a restart every CYCLE seconds,
# alternately by SIGTERM (must drain and exit 0) and SIGKILL (the disk tier
# must reopen). After every start the same greedy prompts must give exactly
# the text a cold daemon (empty caches) gave; the log must hold no error
# line; the RSS of each run is sampled and its growth after warm-up reported.
#
#   bash tests/soak/soak.sh [DURATION=300] [CYCLE=60]
# Needs build/bin/strata (scripts/build.sh). Prints its figures; exits 1 on a
# failed check.
set -uo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-300}"
CYCLE="${2:-60}"
STRATA=build/bin/strata
WORK="$(mktemp -d /tmp/strata_soak_XXXXXX)"
trap 'kill "${DAEMON_PID:-0}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
failures=0
fail() { echo "soak: FAIL: $*" >&2; failures=$((failures + 1)); }

cat >"$WORK/config.yaml" <<YAML
server:
  listen: "127.0.0.1:0"
  drain_timeout: 30s
metrics:
  listen: ""
engine:
  backend: cpu
  threads: 1
cache:
  device_bytes: 8MiB
  host_bytes: 32MiB
  disk_path: $WORK/kv
  disk_bytes: 256MiB
scheduler:
  max_waiting: 0
logging:
  level: info
  format: json
YAML

# The ~20M-parameter random-weight bench model (4k context, fixed seed: the
# same weights on every start), so prompts are token ids.
MODEL_ARGS=(--random-weights --model-config bench/configs/llama-20m-4k.json)
ids() { local out=""; for i in $(seq 0 $(($2 - 1))); do out+="$((3 + ($1 * 97 + i * 13) % 30000)),"; done; echo "${out%,}"; }
PROMPTS=("$(ids 1 40)" "$(ids 2 70)" "$(ids 3 100)")

# Starts the daemon; sets DAEMON_PID and ADDRESS.
start_daemon() {
  local log="$WORK/daemon.$1.log"
  "$STRATA" serve --config "$WORK/config.yaml" "${MODEL_ARGS[@]}" 2>"$log" &
  DAEMON_PID=$!
  ADDRESS=""
  for _ in $(seq 1 600); do
    ADDRESS="$(grep -o '"event":"listening","grpc":"[^"]*"' "$log" | head -n1 | sed 's/.*"grpc":"//; s/"$//')"
    [[ -n "$ADDRESS" ]] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "daemon $1 did not start: $(tail -n 5 "$log")"
  exit 1
}

# The greedy continuations of PROMPTS, one line each.
reference_outputs() {
  for prompt in "${PROMPTS[@]}"; do
    "$STRATA" client --server "$ADDRESS" --token-ids "$prompt" --max-tokens 48 --temperature 0 \
      --unary 2>&1 | grep -v "^usage\|time_to_first\|ttft" | tr '\n' ' '
    echo
  done
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Cold reference: empty caches.
start_daemon cold
reference_outputs >"$WORK/cold.txt"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
rm -rf "$WORK/kv"
echo "soak: cold reference:"; cat "$WORK/cold.txt"

end=$((SECONDS + DURATION))
run=0
while ((SECONDS < end)); do
  run=$((run + 1))
  start_daemon "$run"
  reference_outputs >"$WORK/run$run.txt"
  cmp -s "$WORK/cold.txt" "$WORK/run$run.txt" || fail "run $run: outputs differ from the cold run"
  cycle_end=$((SECONDS + CYCLE))
  # Mixed load until the cycle ends.
  (
    seed=$((run * 1000))
    while ((SECONDS < cycle_end)); do
      seed=$((seed + 1))
      timeout $((cycle_end - SECONDS + 1)) "$STRATA" bench serve --server "$ADDRESS" \
        --workload all --rate 8 --scale 0.05 --seed "$seed" >>"$WORK/bench.$run.out" 2>&1
    done
  ) &
  load_pid=$!
  samples=()
  i=0
  while ((SECONDS < cycle_end)); do
    i=$((i + 1))
    # A stream cut short by its deadline (a cancel), and a session turn.
    "$STRATA" client --server "$ADDRESS" --token-ids "${PROMPTS[$((i % 3))]}" --max-tokens 300 \
      --ignore-eos --timeout-ms 150 >/dev/null 2>&1
    "$STRATA" client --server "$ADDRESS" --token-ids "${PROMPTS[$((i % 3))]},$((i % 500 + 3))" \
      --session "s$((i % 4))" --max-tokens 8 >/dev/null 2>&1 || fail "run $run: session call failed"
    samples+=("$(rss_kb "$DAEMON_PID")")
    sleep 1
  done
  wait "$load_pid" 2>/dev/null
  reference_outputs >"$WORK/run$run.after.txt"
  cmp -s "$WORK/cold.txt" "$WORK/run$run.after.txt" || fail "run $run: outputs after load differ"
  first=${samples[$(( ${#samples[@]} / 4 ))]:-0}
  last=${samples[$(( ${#samples[@]} - 1 ))]:-0}
  echo "soak: run $run: rss after warm-up ${first} kB, at end ${last} kB, samples ${#samples[@]}"
  if ((last > first + first / 5 + 20480)); then fail "run $run: RSS grew from $first to $last kB"; fi
  if ((run % 2 == 1)); then
    kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; code=$?
    ((code == 0)) || fail "run $run: exit code $code after SIGTERM"
    grep -q '"event":"stopped","drained":true' "$WORK/daemon.$run.log" || fail "run $run: not drained"
  else
    kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
  fi
  errors=$(grep -c '"level":"error"' "$WORK/daemon.$run.log")
  ((errors == 0)) || fail "run $run: $errors error lines: $(grep '"level":"error"' "$WORK/daemon.$run.log" | head -n 3)"
  jq_ok=$(python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$WORK/daemon.$run.log" 2>&1) ||
    fail "run $run: log is not JSON lines: $jq_ok"
  echo "soak: run $run load: $(grep -cE '^(chat|shared_prefix|agents) ' "$WORK/bench.$run.out")" \
    "workload passes, requests and errors per workload:" \
    "$(awk '/^(chat|shared_prefix|agents) / {r[$1]+=$2; e[$1]+=$3} END {for (w in r) printf "%s %d/%d ", w, r[w], e[w]}' "$WORK/bench.$run.out")"
  if awk '/^(chat|shared_prefix|agents) / && $3 > 0 {bad=1} END {exit !bad}' "$WORK/bench.$run.out"; then
    fail "run $run: bench serve reported errors"
  fi
done
echo "soak: $run runs in ${DURATION}s, $failures failed checks"
((failures == 0))
