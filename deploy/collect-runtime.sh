#!/usr/bin/env bash
# Lists what a runtime image needs to run BINARY, for deploy/Dockerfile's
# runtime stage. Writes into OUT_DIR:
#   packages.txt  the Debian packages that own BINARY's shared libraries
#   lib/          copies of the libraries no package owns (the CUDA
#                 toolkit's), and of those the CUDA backend loads with
#                 dlopen (libcublasLt), which ldd cannot see
# CUDA is ON when BINARY was built with the CUDA backend (STRATA_CUDA=ON).
# Fails when a library cannot be found at all.
# Usage: collect-runtime.sh BINARY OUT_DIR [CUDA=OFF|ON]
set -euo pipefail
binary=$1
out=$2
cuda=${3:-OFF}
mkdir -p "$out/lib"

if ldd "$binary" | grep -q "not found"; then
  ldd "$binary" | grep "not found" >&2
  exit 1
fi

# dpkg knows a file by the path its package installed; on a merged-/usr
# system ldd may report the other spelling (/lib vs /usr/lib).
owner() {
  local path=$1 candidate
  for candidate in "$path" "/usr$path" "${path#/usr}" "$(readlink -f "$path")"; do
    if dpkg -S "$candidate" >/dev/null 2>&1; then
      dpkg -S "$candidate" | head -n 1 | cut -d: -f1
      return 0
    fi
  done
  return 1
}

packages=()
while read -r lib; do
  if pkg=$(owner "$lib"); then
    packages+=("$pkg")
  else
    echo "collect-runtime: $lib belongs to no package; copying it" >&2
    cp -L "$lib" "$out/lib/"
  fi
done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3}')

# The CUDA backend dlopens cuBLASLt (engine/cuda/cublaslt_loader.cc) from the
# toolkit it was built with.
if [[ "$cuda" == ON ]]; then
  found=0
  for lib in /usr/local/cuda/lib64/libcublasLt.so.[0-9]*; do
    [[ -e "$lib" ]] || continue
    echo "collect-runtime: copying $lib (loaded at run time)" >&2
    cp -L "$lib" "$out/lib/"
    found=1
  done
  if ((found == 0)); then
    echo "collect-runtime: no libcublasLt.so.N in /usr/local/cuda/lib64" >&2
    exit 1
  fi
fi

printf '%s\n' "${packages[@]}" | sort -u > "$out/packages.txt"
echo "collect-runtime: $(wc -l < "$out/packages.txt") packages, $(ls "$out/lib" | wc -l) copied libraries" >&2
