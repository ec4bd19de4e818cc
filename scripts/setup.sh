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
  libgtest-dev libgmock-dev libbenchmark-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
