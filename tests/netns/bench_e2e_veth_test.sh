#!/usr/bin/env bash
# bench/e2e_veth.sh keeps working: one short round through net_af_packet, lbnode against kernel
# forwarding. Asserts what its user reads, not how fast: both paths measured, and frames sent to
# the VIP came back to the backend address through lbnode and through the kernel. The rates
# themselves are figures for bench/README.md, never compared with a limit here.
# Usage: bench_e2e_veth_test.sh <path to lbnode> <path to bench/e2e_veth.sh>
set -euo pipefail
LBNODE=$1 SCRIPT=$2
command -v dpdk-testpmd >/dev/null || { echo "SKIP: dpdk-testpmd missing (dpdk-dev)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; cat "$work/out" 2>/dev/null || true; exit 1; }

bash "$SCRIPT" --lbnode "$LBNODE" --seconds 1 --warmup 1 --rounds 1 --tsv "$work/tsv" \
  >"$work/out" 2>&1 || fail "e2e_veth.sh exit status $?"
cat "$work/out"
[ "$(wc -l <"$work/tsv")" -eq 2 ] || fail "expected one lbnode and one kernel measurement"
while IFS=$'\t' read -r path pmd sent delivered _; do
  [ "$pmd" = af_packet ] || fail "$path: pmd $pmd"
  awk -v s="$sent" -v d="$delivered" 'BEGIN{ exit !(s > 0 && d > 0) }' ||
    fail "$path: sent $sent Mpps, delivered $delivered Mpps"
  echo "ok: $path delivered frames to the backend ($delivered of $sent Mpps)"
done <"$work/tsv"
cut -f1 "$work/tsv" | tr '\n' ' ' | grep -qx "lbnode kernel " || fail "paths: $(cut -f1 "$work/tsv")"
grep -q "lbnode's last counters: .*to_backend=[1-9]" "$work/out" || fail "lbnode counted nothing to the backend"
grep -q "round 1: lbnode / kernel forwarding, delivered: [0-9]" "$work/out" || fail "no ratio printed"
echo "PASS"
