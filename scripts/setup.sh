#!/usr/bin/env bash
# Installs every Debian 12 package nerfdream needs to build, test and run. Idempotent; run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev           # LibTorch 1.13 (CPU, oneDNN)
  libopenblas0-openmp    # without it Debian's torch falls back to reference BLAS (~30× slower matmuls)
  nlohmann-json3-dev     # JSON (configs, transforms.json, checkpoints' headers)
  libcli11-dev           # command-line parsing
  libstb-dev             # PNG/JPEG reading and writing
  libmeshoptimizer-dev   # mesh simplification
  ffmpeg                 # generate's turntable.mp4 / turntable.gif (PNG frames without it)
  libgtest-dev libgmock-dev libbenchmark-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)  # the glTF validator test (an existing node keeps its npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Khronos glTF validator for the mesh export test (tests/mesh; the test skips without it).
validator_dir="$(cd "$(dirname "$0")/.." && pwd)/tools/gltf_validate"
if command -v npm >/dev/null 2>&1 && [ ! -d "$validator_dir/node_modules/gltf-validator" ]; then
  (cd "$validator_dir" && npm ci --no-audit --no-fund --loglevel=error) || echo "setup: npm ci failed in $validator_dir; the glTF validator test will skip" >&2
fi
