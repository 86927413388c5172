#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job on the embedded default
# model: `strata generate` through the engine's step loop. Arguments replace
# the default prompt's options, e.g. scripts/run.sh --prompt "The sea" --max-tokens 80.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
if (($# == 0)); then
  set -- --prompt "Once upon a time" --max-tokens 100
fi
exec build/bin/strata generate "$@"
