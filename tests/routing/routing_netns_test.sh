#!/usr/bin/env bash
# Runs one case of announcer_netns_test with a unique tag for its namespaces (rt<pid>) and a
# work directory, and removes what the case made even if the binary crashes: the daemons it
# recorded (by PID), its namespaces, its files. The case cleans up after itself too.
# Usage: routing_netns_test.sh <announcer_netns_test binary> <gtest filter>
set -uo pipefail
BIN=$1 FILTER=$2
tag="rt$$"
work=$(mktemp -d /tmp/routing_netns.XXXXXX)

cleanup() {
  local f pid
  for f in "$work"/spawned.*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -CONT "$pid" 2>/dev/null; kill "$pid" 2>/dev/null
  done
  sleep 0.3
  for f in "$work"/spawned.*.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
  done
  for ns in "${tag}r" "${tag}n"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 0; fi
RT_TAG=$tag RT_WORK=$work "$BIN" --gtest_filter="$FILTER" --gtest_color=no
rc=$?
if [ $rc != 0 ]; then
  for f in "$work"/*.log "$work"/*.out "$work"/frr/frr.log; do
    [ -f "$f" ] && { echo "--- $f (tail)"; tail -n 40 "$f"; }
  done
fi
exit $rc
