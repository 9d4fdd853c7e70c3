#!/usr/bin/env bash
# Build the compiled helpers into native/build/libfa2_schedule.so (the FlashAttention-2 schedule).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v cmake >/dev/null 2>&1; then
  echo "native/build.sh: 'cmake' not found: apt-get install cmake g++" >&2
  exit 1
fi
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$here/build" --parallel "$(nproc)" >/dev/null
