#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in
# build-fuzz/, then runs each for SECONDS (default 10): every input in
# tests/fuzz/corpus/<target>/ (seeds and the crashes found so far, kept as
# regression cases) is replayed first, then the fuzzer explores, keeping new
# inputs in build-fuzz/corpus/<target>/. Exits non-zero on the first crash,
# leaving the input in build-fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz.sh             # 10 s per target
#   bash scripts/fuzz.sh 600         # longer, by hand
#   bash scripts/fuzz.sh 60 tokenizer_encode   # one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(safetensors model_config config_yaml tokenizer_load tokenizer_encode
           request_conversion disk_format)
fi

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
cmake --build build-fuzz --parallel "$(nproc)" --target "${targets[@]}"

for target in "${targets[@]}"; do
  seeds="tests/fuzz/corpus/${target}"
  work="build-fuzz/corpus/${target}"
  artifacts="build-fuzz/artifacts/${target}/"
  mkdir -p "$seeds" "$work" "$artifacts"
  echo "fuzz: ${target} for ${seconds}s"
  # -rss_limit_mb and -timeout turn runaway memory or time into findings.
  "build-fuzz/${target}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "$seeds" \
    2>"build-fuzz/${target}.log" || {
    tail -n 60 "build-fuzz/${target}.log"
    echo "fuzz: ${target} FAILED; the input is in ${artifacts}" >&2
    exit 1
  }
  grep -E "stat::number_of_executed_units|INITED|DONE" "build-fuzz/${target}.log" | tail -n 2
done
echo "fuzz: all ${#targets[@]} targets passed"
