#!/usr/bin/env bash
# Configure and build the engine (Release) into astra-sim/build/bin/astra-analytical.
# Optional: PYTHON=/path/to/python (must have mlc-chakra installed); default: ../.venv/bin/python.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
for tool in cmake protoc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build.sh: '$tool' not found: apt-get install cmake g++ libprotobuf-dev protobuf-compiler nlohmann-json3-dev" >&2
    exit 1
  fi
done
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$python"
cmake --build "$here/build" --parallel "$(nproc)"
