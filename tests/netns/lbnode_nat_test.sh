#!/usr/bin/env bash
# End to end through a real lbnode in network namespaces, full NAT: a client, the node (DPDK on
# a veth via net_af_packet, exception path on a TAP) and a backend, all on one bridge. The
# backend does not hold the VIP and listens on another port (8080): lbnode rewrites client ->
# VIP:80 into NAT address:port -> backend:8080, and the backend's replies to the NAT address come
# back through lbnode, which rewrites them to VIP:80 -> client and sends them to the client's
# MAC (node.gateway_mac_ipv4: on this flat L2 lab the client is its own gateway).
# Asserts: 30 HTTP requests to the VIP all succeed with the backend's page; the backend's log
# shows every request coming from the NAT address (full NAT hides the client) and none from the
# client; lbnode's final counters show packets to the backend, NAT replies, no drops.
# Usage: lbnode_nat_test.sh <path to lbnode>
set -euo pipefail
source "$(dirname "$0")/lab_lib.sh"
LBNODE=$(realpath "$1")
PY=/usr/bin/python3  # Debian's interpreter (the one on PATH may be another)
tag="lbnat$$"
ns_s="${tag}s" ns_c="${tag}c" ns_n="${tag}n" ns_b="${tag}b"
work=$(mktemp -d)
pids=()
requests=30
client=10.77.0.2 client_mac=02:77:00:00:00:02 node=10.77.0.10 nat=10.77.0.20 backend=10.77.0.3
vip=10.77.100.1

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "/var/run/dpdk/$tag"  # lbnode removes it on a clean exit; not when killed
  for n in "$ns_c" "$ns_n" "$ns_b" "$ns_s"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- lbnode log"; cat "$work/lbnode.log" 2>/dev/null || true
  echo "--- backend HTTP log"; cat "$work/http.log" 2>/dev/null || true
  exit 1
}

# Waits up to $1 tenths of a second for command "${@:2}" to succeed.
wait_for() {
  local tries=$1; shift
  for _ in $(seq 1 "$tries"); do "$@" && return 0; sleep 0.1; done
  return 1
}

for n in "$ns_s" "$ns_c" "$ns_n" "$ns_b"; do ip netns add "$n"; done
ip -n "$ns_s" link add br0 type bridge
ip -n "$ns_s" link set br0 up
for pair in "c:$ns_c" "n:$ns_n" "b:$ns_b"; do
  side=${pair%%:*} ns=${pair#*:}
  ip -n "$ns_s" link add "${side}-br" type veth peer name "${side}0" netns "$ns"
  ip -n "$ns_s" link set "${side}-br" master br0 up
done

# Client: reaches the VIP through the node (a static route standing in for OSPF + ECMP). Its MAC
# is fixed: it is the node's gateway for NAT replies.
ip netns exec "$ns_c" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$ns_c" link set c0 address "$client_mac"
ip -n "$ns_c" addr add "$client/24" dev c0
ip -n "$ns_c" link set c0 up
ip -n "$ns_c" link set lo up
ip -n "$ns_c" route add "$vip/32" via "$node"
# A veth sender leaves TCP/UDP checksums to "offload"; AF_PACKET hands lbnode such frames with
# the checksum unfilled and the receiver drops them. Lab senders compute checksums in software.
ip netns exec "$ns_c" ethtool -K c0 tx off >/dev/null

# Backend: no VIP, an HTTP server on 8080 only (so an answer proves the port rewrite). Its
# replies go to the NAT address, i.e. through lbnode's AF_PACKET socket: complete checksums.
ip netns exec "$ns_b" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$ns_b" addr add "$backend/24" dev b0
ip -n "$ns_b" link set lo up
ip -n "$ns_b" link set b0 up
ip netns exec "$ns_b" ethtool -K b0 tx off >/dev/null
mkdir -p "$work/www" && echo "answered-by-nat-backend" > "$work/www/index.html"
ip netns exec "$ns_b" "$PY" -m http.server 8080 --bind 0.0.0.0 --directory "$work/www" \
  >"$work/http.log" 2>&1 &
pids+=("$!")
listening() { ip netns exec "$ns_b" ss -Hltn "( sport = :8080 )" | grep -q .; }
wait_for 100 listening || fail "HTTP server not listening"

# Node: the kernel must keep off the uplink veth; lbnode owns it. The NAT address is also an
# address of lb0, so that the node's kernel answers the backend's ARP for it with the uplink's
# MAC (lbnode takes the replies before the kernel sees them).
ip netns exec "$ns_n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
lab_take_uplink "$ns_n" n0
# The NAT port range: lbnode takes every TCP/UDP packet to the NAT address whose destination
# port is in the range (a reply to one of its sessions), before the kernel sees it. The kernel
# may use the NAT address (an address of lb0) as the source of its own connections, with a port
# from net.ipv4.ip_local_port_range (default 32768-60999); were the ranges to overlap, the
# replies to those connections would be taken by lbnode and dropped as NAT replies without a
# session. So the NAT range lies outside the kernel's: 61000-61999.
cat > "$work/node.textproto" <<CONF
$(lab_dataplane_config "$tag" n0 "$work")
interface { name: "lb0" addresses: ["$node/24", "$nat/24"] mtu: 1500 }
node {
  nat_addresses: "$nat"
  nat_port_min: 61000
  nat_port_max: 61999
  gateway_mac_ipv4: "$client_mac"
}
services {
  version: 1
  vips {
    address: "$vip" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_NAT
    backends { address: "$backend" port: 8080 }
  }
}
CONF
"$LBNODE" --config "$work/node.textproto" --check >"$work/check.log" 2>&1 ||
  fail "config rejected: $(cat "$work/check.log")"
ip netns exec "$ns_n" "$LBNODE" --config "$work/node.textproto" >"$work/lbnode.log" 2>&1 &
lbnode_pid=$!
pids+=("$lbnode_pid")

lbnode_up() {
  kill -0 "$lbnode_pid" 2>/dev/null || fail "lbnode exited"
  grep -q "exception interface lb0 up" "$work/lbnode.log"
}
wait_for 100 lbnode_up || fail "lbnode did not come up"
ip -n "$ns_n" -4 addr show dev lb0 | grep -q "inet $nat/" || fail "NAT address not on lb0"

# lbnode asks the kernel to resolve the backend; wait until it is known, then give the snapshot
# rebuild (every 200 ms at most) time to publish it, so that no request meets it unresolved.
resolved() { ip -n "$ns_n" neigh show "$backend" dev lb0 | grep -q lladdr; }
wait_for 50 resolved || fail "the node's kernel never resolved the backend"
sleep 0.5
ip netns exec "$ns_c" ping -c 2 -i 0.2 -W 2 "$node" >/dev/null || fail "ping to the node"

for i in $(seq 1 "$requests"); do
  out=$(ip netns exec "$ns_c" curl -s --max-time 2 "http://$vip/") ||
    fail "request $i to $vip failed (curl exit $?)"
  [ "$out" = "answered-by-nat-backend" ] || fail "request $i: unexpected answer '$out'"
done
echo "ok: $requests HTTP requests to $vip:80 answered by the backend on port 8080"

# http.server logs '<client address> - - [date] "GET / HTTP/1.1" 200 -' per request.
from_nat=$(grep -ac "^$nat - .*\"GET / HTTP" "$work/http.log" || true)
others=$(grep -a "\"GET / HTTP" "$work/http.log" | grep -avc "^$nat - " || true)
[ "$from_nat" -eq "$requests" ] ||
  fail "the backend logged $from_nat of $requests requests from the NAT address $nat"
[ "$others" -eq 0 ] || fail "the backend logged $others requests from another address"
echo "ok: the backend saw all $requests requests from $nat, none from the client $client"

# The backend's view of its peers: NAT address and ports in the configured range only.
conns=$(ip netns exec "$ns_b" ss -Htn state time-wait "( sport = :8080 )" || true)
if [ -n "$conns" ]; then
  while read -r _ _ _ peer; do
    peer_addr=${peer%:*} peer_port=${peer##*:}
    [ "$peer_addr" = "$nat" ] || fail "backend connection from $peer"
    [ "$peer_port" -ge 61000 ] && [ "$peer_port" -le 61999 ] ||
      fail "backend connection from NAT port $peer_port, outside 61000-61999"
  done <<<"$conns"
  echo "ok: the backend's $(wc -l <<<"$conns") connections in TIME-WAIT came from $nat," \
       "ports in 61000-61999"
fi

kill -TERM "$lbnode_pid"
wait "$lbnode_pid" || fail "lbnode exit status $?"
forget "$lbnode_pid"
counters=$(grep "counters" "$work/lbnode.log" | tail -1)
echo "lbnode: $counters"
value() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$counters"; }
[ "$(value to_backend)" -ge $((requests * 3)) ] ||
  fail "to_backend=$(value to_backend), expected at least 3 packets per request"
[ "$(value nat_replies)" -ge $((requests * 3)) ] ||
  fail "nat_replies=$(value nat_replies), expected at least 3 packets per request"
grep -q "vip\[$vip:80\]=[1-9]" <<<"$counters" || fail "VIP counter is zero"
grep -q "backend\[$backend\]=[1-9]" <<<"$counters" || fail "backend counter is zero"
if grep -qE " (drop|parse)_" <<<"$counters"; then
  fail "lbnode dropped packets: $(grep -oE "(drop|parse)_[a-z_]+=[0-9]+" <<<"$counters" | xargs)"
fi
echo "PASS"
