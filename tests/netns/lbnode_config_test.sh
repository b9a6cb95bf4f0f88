#!/usr/bin/env bash
# lbnode --check: the documented example config is valid; broken configs are refused with an
# error naming the field, and nothing starts. Usage: lbnode_config_test.sh <lbnode> <example>
set -euo pipefail
lbnode=$1 example=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$lbnode" --config "$example" --check 2>"$work/out" || { cat "$work/out"; echo "FAIL: example"; exit 1; }
expect_refused() {  # <config text> <text the error must contain>
  printf '%s\n' "$1" >"$work/bad.textproto"
  if "$lbnode" --config "$work/bad.textproto" --check 2>"$work/err"; then
    echo "FAIL: accepted: $1"; exit 1
  fi
  grep -qF "$2" "$work/err" || { echo "FAIL: '$2' not in:"; cat "$work/err"; exit 1; }
}
expect_refused 'dataplane { uplink: "x" } services { vips { address: "1.2.3" } }' \
  'services.vips[0].address'
expect_refused 'services { }' 'dataplane.uplink is required'
expect_refused 'dataplane { uplink: "x" } node { nat_addresses: "1.2.3.4" nat_addresses: "1.2.3.4" }' \
  'node.nat_addresses[1]'
expect_refused 'dataplane { uplink: "x" workers: 4 } node { nat_addresses: "10.0.0.1" nat_port_min: 61000 nat_port_max: 61002 }' \
  'smaller than the 4 workers'
expect_refused 'dataplane { uplink: "x" unknown_field: 1 }' 'unknown_field'
expect_refused 'dataplane { uplink: "x" } services { vips { address: "10.0.0.1" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_DR backends { address: "10.0.1.1" weight: 70000 } } }' \
  'services.vips[0].backends[0].weight'
"$lbnode" --config "$work/missing.textproto" --check 2>"$work/err" && { echo "FAIL: missing file"; exit 1; }
grep -q "cannot read config file" "$work/err" || { cat "$work/err"; exit 1; }
echo PASS
