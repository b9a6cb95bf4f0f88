#!/usr/bin/env bash
# lbctl against real lbnode processes: a fleet of two nodes (--target twice), --json output,
# exit codes scripts rely on, declarative apply from a file, and the TCP listener with mutual TLS
# (certificates made here with openssl): a client with a certificate signed by the configured
# CA gets in, one without is refused. No namespaces: net_ring uplinks, loopback TCP.
# Usage: lbctl_test.sh <lbnode> <lbctl>
set -euo pipefail
LBNODE=$(realpath "$1") LBCTL=$(realpath "$2")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" /var/run/dpdk/lbctl$$_*
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }
port=$((30000 + $$ % 20000))

# Certificates: a CA, the node's server certificate (IP 127.0.0.1), a client certificate.
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=lbtest-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr -subj /CN=node1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem -days 2 -extfile san.ext 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=operator 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 2>/dev/null

start_node() {  # <n> [api extra]
  cat >"n$1.textproto" <<CONF
dataplane {
  eal_args: ["-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", "lbctl$$_$1",
             "--vdev", "net_ring0", "--log-level", "lib.eal:error", "--no-telemetry"]
  uplink: "net_ring0"
  conn_table_size: 65536
}
node { tunnel_source_ipv4: "192.0.2.1" static_neighbors { address: "10.1.0.1" mac: "02:00:00:00:01:01" } }
node_name: "node$1"
state_dir: "$work/state$1"
api { unix_socket: "$work/n$1.sock" ${2:-} }
CONF
  "$LBNODE" --config "n$1.textproto" >"n$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do [ -S "$work/n$1.sock" ] && return 0; sleep 0.1; done
  fail "node$1 did not come up"
}
start_node 1 "tcp_listen: \"127.0.0.1:$port\" tls_cert: \"$work/node.pem\" tls_key: \"$work/node.key\" tls_client_ca: \"$work/ca.pem\""
start_node 2
fleet=(--target "unix:$work/n1.sock" --target "unix:$work/n2.sock")

# A fleet: one command, both nodes.
"$LBCTL" "${fleet[@]}" vip create 10.0.0.1:80/tcp --mode tun -b 10.1.0.1 >out || fail "fleet create"
[ "$(grep -c 'ok: config version 1' out)" = 2 ] || fail "fleet create: $(cat out)"
"$LBCTL" "${fleet[@]}" --json status >out.json || fail "fleet status"
/usr/bin/python3 -c "
import json,sys
d=json.load(open('out.json'))
assert [x['response']['node_name'] for x in d]==['node1','node2'], d
assert all(x['response']['config_version']=='1' for x in d), d
" || fail "fleet --json status: $(cat out.json)"
echo "ok: fleet of two nodes, JSON per target"

# Exit codes.
set +e
"$LBCTL" "${fleet[@]}" vip create 10.0.0.1:80/tcp -b 10.1.0.1 2>err; rc=$?
[ $rc = 1 ] || fail "ALREADY_EXISTS should exit 1, got $rc"
grep -q ALREADY_EXISTS err || fail "no ALREADY_EXISTS in: $(cat err)"
"$LBCTL" --target "unix:$work/n1.sock" vip create 10.0.0.300:80 2>err; rc=$?
[ $rc = 1 ] && grep -q "vip.address" err || fail "bad address: rc $rc, $(cat err)"
"$LBCTL" --target "unix:$work/n1.sock" vip create 10.0.0.2:80/sctp 2>err; rc=$?
[ $rc = 2 ] || fail "usage error should exit 2, got $rc"
"$LBCTL" --target "unix:$work/nope.sock" status 2>err; rc=$?
[ $rc = 3 ] || fail "unreachable node should exit 3, got $rc"
"$LBCTL" --target "unix:$work/n1.sock" --target "unix:$work/nope.sock" status >/dev/null 2>err; rc=$?
[ $rc = 3 ] || fail "one unreachable node of two should exit 3, got $rc"
"$LBCTL" --target "127.0.0.1:$port" status 2>err; rc=$?
[ $rc = 2 ] && grep -q "TLS" err || fail "TCP target without TLS options: rc $rc, $(cat err)"
set -e
echo "ok: exit codes 1 (refused), 2 (usage), 3 (unreachable)"

# Declarative apply from a file: idempotent; an older version is refused.
cat >svc.textproto <<'SVC'
version: 10
vips { address: "10.0.0.5" port: 443 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_TUN
       backends { address: "10.1.0.1" weight: 3 } }
SVC
"$LBCTL" "${fleet[@]}" apply svc.textproto >out || fail "apply"
[ "$(grep -c '^changed, version 10' out)" = 2 ] || fail "apply: $(cat out)"
"$LBCTL" "${fleet[@]}" apply svc.textproto >out || fail "re-apply"
[ "$(grep -c '^unchanged, version 10' out)" = 2 ] || fail "re-apply not idempotent: $(cat out)"
sed -i 's/version: 10/version: 9/; s/weight: 3/weight: 4/' svc.textproto
set +e; "$LBCTL" --target "unix:$work/n1.sock" apply svc.textproto 2>err; rc=$?; set -e
[ $rc = 1 ] && grep -q FAILED_PRECONDITION err || fail "stale apply: rc $rc, $(cat err)"
echo "ok: apply is idempotent across the fleet; a stale version is refused"

# Mutual TLS on the TCP listener.
tls=(--target "127.0.0.1:$port" --tls-ca "$work/ca.pem")
"$LBCTL" "${tls[@]}" --tls-cert "$work/client.pem" --tls-key "$work/client.key" status >out ||
  fail "mutual TLS client refused: $(cat out)"
grep -q "node1" out || fail "TLS status: $(cat out)"
set +e; "$LBCTL" "${tls[@]}" --timeout 3 status >/dev/null 2>err; rc=$?; set -e
[ $rc != 0 ] || fail "a client without a certificate got in"
grep -q "client certificates required" n1.log || fail "listener not logged as mutual TLS"
echo "ok: TCP listener with mutual TLS (client without a certificate refused, exit $rc)"
echo PASS
