#!/usr/bin/env bash
# install-deps.sh - install every Debian 12 package scstu builds, tests and
# benchmarks with. Idempotent: installs only what is missing.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  liburing-dev libfuse3-dev libboost-program-options-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libiscsi-dev
  # real peers for the tests and benchmarks
  libiscsi-bin qemu-utils qemu-block-extra sg3-utils tgt
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=
  [[ $(id -u) == 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
