#!/usr/bin/env bash
# Sets up everything on a fresh Debian/Ubuntu machine; safe to run again.
#   1. Debian packages the engine needs (C++ compiler, CMake, protobuf, JSON/YAML/flag libraries)
#   2. a virtual environment in .venv with the package (editable, `llmservingsim` command) and its dependencies,
#      made from Debian's python3 (PYTHON=... for another): Debian builds it with profile-guided and link-time
#      optimisation (its python3.11 changelog), which runs the serving loop 15-20 % faster than a plain source
#      build (README, Speed)
#   3. the engine build (astra-sim/build/bin/astra-analytical) and the compiled helpers (native/build)
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(g++ cmake make protobuf-compiler libprotobuf-dev nlohmann-json3-dev libyaml-cpp-dev libcxxopts-dev
              python3 python3-venv)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "${PYTHON:-/usr/bin/python3}" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,ray]'
# mlc-chakra's own requirements pull in a notebook stack we do not use: install it alone.
.venv/bin/python -m pip install -q --no-deps mlc-chakra==1.0.0

bash astra-sim/build.sh
bash native/build.sh
echo "setup: done"
