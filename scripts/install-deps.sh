#!/usr/bin/env bash
# Installs the Debian packages that usine's build, tests and scripts need. Idempotent and
# quiet: when everything is present it only asks dpkg and returns in about a second.
# The CUDA toolkit is not a Debian package here: the build uses /usr/local/cuda when it is
# there (and builds CPU-only when it is not).
set -euo pipefail

packages=(
  cmake ninja-build ccache g++ pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libabsl-dev libopenblas-dev nlohmann-json3-dev libicu-dev libtomlplusplus-dev libcli11-dev
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools python3-h5py
  clang-format clang-tidy clang
  slurm-wlm munge bc python3-matplotlib
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
