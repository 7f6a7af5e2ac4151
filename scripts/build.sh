#!/usr/bin/env bash
# build.sh [BUILD_DIR] [cmake args...] - configure and build scstu.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
cmake -S . -B "$BUILD" -G Ninja "$@" >/dev/null
ninja -C "$BUILD"
