#!/usr/bin/env bash
# Installs dependencies, builds, fetches pinned test data and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bash scripts/fetch_test_data.sh build/testdata
ctest --test-dir build --label-exclude gpu --output-on-failure --parallel "$(nproc)" --timeout 900
# The libFuzzer targets (clang build in build-fuzz/): replay every kept crash
# input, then explore a few seconds each. Run longer by hand: scripts/fuzz.sh 600
bash scripts/fuzz.sh 5
