#!/usr/bin/env bash
# The CUDA backend's checks and benchmarks on a GPU machine.
#
# This workplace's device machines have nvcc, CMake and ninja but none of
# Strata's Debian build dependencies (abseil, gRPC, RocksDB, oneDNN, ...)
# and no network, so the build happens here and travels:
#
#   bash bench/cuda/run_on_device.sh pack [BUILD_DIR]   # here, once per change
#       configures BUILD_DIR (default build-device) for sm_90a, builds
#       `strata` and every test labelled gpu (tests/kernels, tests/engine/cuda),
#       and packs them with the shared libraries they need into
#       BUILD_DIR/pack/strata-device.tar.xz
#   device run, carrying BUILD_DIR/pack:
#       bash bench/cuda/run_on_device.sh run [BUILD_DIR]
#       runs the gpu tests (what `ctest -L gpu` runs), then the benchmarks,
#       and writes logs and bench.json under $OUT (or ./device-out).
#   device run, carrying BUILD_DIR/pack, CacheBlend only (a short session):
#       bash bench/cuda/run_on_device.sh blend [BUILD_DIR]
#       runs the CacheBlend tests (kernels/blend.h against engine/cpu/kv_blend.h,
#       prefill attention with per-query positions, the backend's blend steps
#       against the CPU backend's) with their full output, no benchmark.
#
# On a GPU machine with the build dependencies installed, the same checks are:
#   cmake -S . -B build -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a && ninja -C build
#   ctest --test-dir build -L gpu --output-on-failure
#   build/bin/strata bench engine --backend cuda --random-weights \
#       --config bench/configs/llama-3.1-8b.json --contexts 1024,2048,8192 \
#       --batches 1,8,32,128 --out bench-cuda.json
set -euo pipefail
cd "$(dirname "$0")/../.."
mode="${1:-}"
build="${2:-build-device}"
pack="$build/pack"

gpu_tests() {
  ninja -C "$build" -t targets all | sed -n 's/^\(\(kernels\|engine_cuda\)_[a-z0-9_]*_test\): .*/\1/p' |
    sort -u
}

do_pack() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DSTRATA_CUDA=ON >/dev/null
  mapfile -t tests < <(gpu_tests)
  # -j2: the shared build machine has two cores.
  ninja -C "$build" -j2 strata "${tests[@]}"
  rm -rf "$pack" && mkdir -p "$pack/stage/bin" "$pack/stage/tests" "$pack/stage/lib"
  cp "$build/bin/strata" "$pack/stage/bin/"
  for t in "${tests[@]}"; do cp "$build/tests/$t" "$pack/stage/tests/"; done
  strip --strip-unneeded "$pack"/stage/bin/* "$pack"/stage/tests/*
  # Every shared library they load except the C library's own and CUDA's
  # (the device has the toolkit, matching driver 13.0).
  for f in "$pack"/stage/bin/* "$pack"/stage/tests/*; do ldd "$f"; done |
    awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so|/libcu(blas|blasLt|dart)\.so' |
    while read -r lib; do cp -L "$lib" "$pack/stage/lib/"; done
  tar -C "$pack/stage" -cf - . | xz -T2 -6 >"$pack/strata-device.tar.xz"
  rm -rf "$pack/stage"
  du -h "$pack/strata-device.tar.xz"
}

unpack() {
  mkdir -p "$out" "$root"
  tar -C "$root" -xJf "$pack/strata-device.tar.xz"
  # Test binaries name the fixtures by the absolute path they were built at.
  if [ ! -e /work/main ]; then mkdir -p /work && ln -s "$PWD" /work/main; fi
  local cuda_lib
  cuda_lib="$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")/../lib64"
  export LD_LIBRARY_PATH="$root/lib:$cuda_lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem \
    --format=csv 2>&1 | tee "$out/gpu.txt" || true
}

do_blend() {
  local out="${OUT:-$PWD/device-out}" root="/tmp/strata-device" failed=0
  unpack
  : >"$out/tests.txt"
  for name in kernels_blend_test kernels_attention_prefill_test engine_cuda_blend_layout_test \
    engine_cuda_blend_validation_test engine_cuda_step_layout_test engine_cuda_blend_backend_test; do
    if "$root/tests/$name" >"$out/$name.log" 2>&1; then
      echo "PASS $name" | tee -a "$out/tests.txt"
    else
      echo "FAIL $name" | tee -a "$out/tests.txt"; failed=1
    fi
    grep -E "FAILED|Failure|differing|relative|Expected|actual|Which is" "$out/$name.log" | head -60 || true
  done
  return "$failed"
}

do_run() {
  local out="${OUT:-$PWD/device-out}" root="/tmp/strata-device"
  unpack
  local failed=0
  : >"$out/tests.txt"
  for t in "$root"/tests/*; do
    local name; name="$(basename "$t")"
    if "$t" --gtest_brief=1 >"$out/$name.log" 2>&1; then
      echo "PASS $name" | tee -a "$out/tests.txt"
    else
      echo "FAIL $name" | tee -a "$out/tests.txt"; failed=1
      tail -40 "$out/$name.log"
    fi
  done
  # The figures the issue asks for: decode at batch 1/8/32/128 at 1k and 8k
  # (2k comes along), prefill of 2k and 8k, the 8k prefix's KV restored from
  # pinned host memory, and the ceilings (HBM bandwidth, bf16 matmul peak,
  # host <-> device bandwidth) measured in the same run.
  if ! "$root/bin/strata" bench engine --backend cuda --random-weights \
    --config bench/configs/llama-3.1-8b.json --contexts 1024,2048,8192 --batches 1,8,32,128 \
    --out "$out/bench.json" 2>&1 | tee "$out/bench.txt"; then
    echo "FAIL bench" | tee -a "$out/tests.txt"; failed=1
  fi
  cat "$out/tests.txt"
  return "$failed"
}

case "$mode" in
  pack) do_pack ;;
  run) do_run ;;
  blend) do_blend ;;
  *) echo "usage: $0 pack|run|blend [BUILD_DIR]" >&2; exit 2 ;;
esac
