#!/usr/bin/env bash
# Checks that the optimiser kept the forwarding plane's software prefetches.
#
# Prefetches change no result, so no functional test notices when they vanish, and timings are
# never asserted. GCC once deduced an inline function that only prefetched to be pure and deleted
# its calls: ProcessBurst lost a whole prefetch pass and the 2^16..2^20-flow benchmark rows
# doubled with every test green (bench/README.md). This test disassembles the built libraries
# and requires at least the prefetch instructions each hot function is written to issue.
#
# Usage: prefetch_check.sh <library or object>...
# Exit: 0 all present; 1 some missing (the report names them); 77 not x86-64 or no objdump (skip).
set -euo pipefail

if [[ "$(uname -m)" != x86_64 ]] || ! command -v objdump >/dev/null; then
  echo "skip: needs x86-64 and objdump"
  exit 77
fi
(($# > 0)) || { echo "usage: $0 <library or object>..." >&2; exit 2; }

# function (as objdump -C names it, without arguments)  minimum prefetch instructions  why
expected=(
  "lb::Forwarder::ProcessBurst 10 small-table path: next frame, bucket (one loop for VIP traffic and NAT replies), entry of a hit, way of an insert; large-table path: the same plus address slot and VipEntry"
  "lb::Forwarder::PrefetchNatReverse 2 a NAT flow's reverse entry: bucket header and entry line"
  "lb::ConnTable::LookupBulk 2 bucket headers, then candidate entries"
)

counts=$(objdump -d --no-show-raw-insn -C "$@" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/\(.*$/, "", fn); next }
  /\tprefetch/ { n[fn]++ }
  END { for (f in n) print f, n[f] }')

fail=0
for e in "${expected[@]}"; do
  read -r fn min why <<<"$e"
  got=$(awk -v f="$fn" '$1 == f { print $2 }' <<<"$counts")
  got=${got:-0}
  if ((got < min)); then
    echo "FAIL $fn: $got prefetch instructions, expected at least $min ($why)"
    fail=1
  else
    echo "ok   $fn: $got prefetch instructions (at least $min)"
  fi
done
exit "$fail"
