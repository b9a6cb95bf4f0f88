#!/usr/bin/env bash
# Runs every test of lbnode: installs missing Debian packages, builds, runs the ctest suite,
# then the unit tests again under AddressSanitizer+UndefinedBehaviorSanitizer, then a bounded
# libFuzzer run of each fuzz target. Run as root on Debian 12 from anywhere in the checkout.
#
# Environment: LB_FUZZ_SECONDS (default 60), LB_SKIP_SANITIZE=1, LB_SKIP_FUZZ=1, LB_JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${LB_JOBS:-$(nproc)}
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

step "dependencies"
bash deploy/install-deps.sh

step "build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

step "tests"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600

if [ "${LB_SKIP_SANITIZE:-0}" != 1 ]; then
  step "unit tests under ASan+UBSan"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLB_SANITIZE=ON >/dev/null
  cmake --build build-asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit --timeout 600
fi

if [ "${LB_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzzing"
  bash tests/fuzz/run.sh "${LB_FUZZ_SECONDS:-60}"
fi
step "all tests passed"
