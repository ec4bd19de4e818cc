#!/usr/bin/env bash
# Configures and builds nerfdream into build/ (Release). Extra arguments go to CMake, e.g.
#   scripts/build.sh -DCMAKE_PREFIX_PATH=/path/to/libtorch   (a LibTorch 2.x / CUDA build)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" > /dev/null
ninja -C build
