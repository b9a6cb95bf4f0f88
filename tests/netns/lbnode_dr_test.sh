#!/usr/bin/env bash
# End to end through a real lbnode in network namespaces: a client, the node (DPDK on a veth via
# net_af_packet, exception path on a TAP), and a backend holding the VIP on lo, all on one
# bridge. Checks the exception path (ARP and ping to the node's address through lbnode), the
# netlink mirror (the backend's MAC is learnt from the kernel, not configured), and DR
# forwarding of real TCP: HTTP requests to the VIP are answered by the backend.
# Usage: lbnode_dr_test.sh <path to lbnode>
set -euo pipefail
source "$(dirname "$0")/lab_lib.sh"
LBNODE=$(realpath "$1")
tag="lbdr$$"
ns_s="${tag}s" ns_c="${tag}c" ns_n="${tag}n" ns_b="${tag}b"
work=$(mktemp -d)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "/var/run/dpdk/$tag"  # lbnode removes it on a clean exit; not when killed
  for n in "$ns_c" "$ns_n" "$ns_b" "$ns_s"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; echo "--- lbnode log"; cat "$work/lbnode.log" || true; exit 1; }

for n in "$ns_s" "$ns_c" "$ns_n" "$ns_b"; do ip netns add "$n"; done
ip -n "$ns_s" link add br0 type bridge
ip -n "$ns_s" link set br0 up
for pair in "c:$ns_c" "n:$ns_n" "b:$ns_b"; do
  side=${pair%%:*} ns=${pair#*:}
  ip -n "$ns_s" link add "${side}-br" type veth peer name "${side}0" netns "$ns"
  ip -n "$ns_s" link set "${side}-br" master br0 up
done

# Client: reaches the VIP through the node (a static route standing in for OSPF + ECMP).
ip netns exec "$ns_c" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$ns_c" addr add 10.77.0.2/24 dev c0
ip -n "$ns_c" link set c0 up
ip -n "$ns_c" link set lo up
ip -n "$ns_c" route add 10.77.100.1/32 via 10.77.0.10
# A veth sender leaves TCP/UDP checksums to "offload"; AF_PACKET hands lbnode such frames with
# the checksum unfilled and the receiver drops them. Lab senders compute checksums in software.
ip netns exec "$ns_c" ethtool -K c0 tx off >/dev/null

# Backend: VIP on lo, never answers ARP for it (DR).
ip netns exec "$ns_b" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
ip -n "$ns_b" addr add 10.77.0.3/24 dev b0
ip -n "$ns_b" addr add 10.77.100.1/32 dev lo
ip -n "$ns_b" link set lo up
ip -n "$ns_b" link set b0 up
ip netns exec "$ns_b" ethtool -K b0 tx off >/dev/null
mkdir -p "$work/www" && echo "answered-by-backend-b1" > "$work/www/index.html"
ip netns exec "$ns_b" /usr/bin/python3 -m http.server 80 --bind 0.0.0.0 --directory "$work/www" \
  >"$work/http.log" 2>&1 &
pids+=($!)

# Node: the kernel must keep off the uplink veth; lbnode owns it.
ip netns exec "$ns_n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
lab_take_uplink "$ns_n" n0
cat > "$work/node.textproto" <<CONF
$(lab_dataplane_config "$tag" n0 "$work")
interface { name: "lb0" addresses: "10.77.0.10/24" mtu: 1500 }
node { tunnel_source_ipv4: "10.77.0.10" }
services {
  version: 1
  vips {
    address: "10.77.100.1" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_DR
    backends { address: "10.77.0.3" }
  }
}
CONF
"$LBNODE" --config "$work/node.textproto" --check >/dev/null || fail "config rejected"
ip netns exec "$ns_n" "$LBNODE" --config "$work/node.textproto" >"$work/lbnode.log" 2>&1 &
lbnode_pid=$!
pids+=($lbnode_pid)

for _ in $(seq 1 100); do
  grep -q "exception interface lb0 up" "$work/lbnode.log" && break
  kill -0 "$lbnode_pid" 2>/dev/null || fail "lbnode exited"
  sleep 0.1
done
grep -q "exception interface lb0 up" "$work/lbnode.log" || fail "lbnode did not come up"

# 1. The node's own address answers through the exception path (ARP and ICMP via lb0).
ip netns exec "$ns_c" ping -c 3 -i 0.2 -W 2 10.77.0.10 >/dev/null || fail "ping to the node"
echo "ok: ping to the node's address through lbnode's exception path"

# 2. HTTP to the VIP is answered by the backend (DR: requests through lbnode, replies direct).
ok=0
for i in $(seq 1 20); do
  if out=$(ip netns exec "$ns_c" curl -s --max-time 2 http://10.77.100.1/); then
    [ "$out" = "answered-by-backend-b1" ] && ok=$((ok + 1))
  fi
  [ $ok -ge 10 ] && break
  sleep 0.2
done
[ $ok -ge 10 ] || fail "only $ok of 10 HTTP requests to the VIP succeeded"
echo "ok: $ok HTTP requests to the VIP answered by the backend"

# 3. The backend's MAC came from the kernel's neighbour table (no static neighbour configured).
ip -n "$ns_n" neigh show 10.77.0.3 dev lb0 | grep -q lladdr || fail "kernel never resolved 10.77.0.3"

kill -TERM "$lbnode_pid"
wait "$lbnode_pid" || fail "lbnode exit status $?"
forget "$lbnode_pid"
counters=$(grep "counters" "$work/lbnode.log" | tail -1)
echo "lbnode: $counters"
to_backend=$(sed -n 's/.* to_backend=\([0-9]*\).*/\1/p' <<<"$counters")
[ "${to_backend:-0}" -gt 0 ] || fail "no packet counted to the backend"
grep -q "backend\[10.77.0.3\]=[1-9]" <<<"$counters" || fail "backend counter is zero"
echo "PASS"
