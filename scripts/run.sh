#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job on the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec build/bin/strata "${@:-inspect}"
