#!/bin/bash
# Installs what cltrain needs from Debian's packages, then configures and builds it in
# ./build. Safe to run again: it only installs what is missing and rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    build-essential meson ninja-build pkg-config clang-format
    ocl-icd-opencl-dev opencl-headers libclblast-dev clinfo
    pocl-opencl-icd mesa-opencl-icd oclgrind
    libcmocka-dev zlib1g-dev libcjson-dev libopenblas-dev
    libopenmpi-dev openmpi-bin
    dataset-fashion-mnist
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

if [ -f build/build.ninja ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build
fi
meson compile -C build
