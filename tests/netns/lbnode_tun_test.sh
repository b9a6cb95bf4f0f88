#!/usr/bin/env bash
# End to end through a real lbnode in network namespaces, TUN and GUE modes: a client, the node
# (DPDK on a veth via net_af_packet, exception path on a TAP) and two backends, all on one bridge
# (IPv4 10.77.0.0/24 and IPv6 fd77::/64). Each backend holds every VIP on lo and runs
# deploy/lab/lb_decap.py (the kernel may have no ipip/ip6tnl/fou modules): it takes the packets
# lbnode tunnels to it, writes the inner packets to a tun device, and the backend's kernel
# answers the client directly.
#   VIP              mode  backends   on the wire (decapsulator counter)
#   10.77.100.1:80   TUN   IPv4       IPv4 in IPv4, protocol 4 (4in4)
#   10.77.100.2:80   GUE   IPv4       IPv4 in UDP to port 6080 over IPv4 (gue4)
#   fd77:100::1:80   TUN   IPv6       IPv6 in IPv6, next header 41 (6in6)
#   fd77:100::2:80   GUE   IPv6       IPv6 in UDP over IPv6 (gue6)
#   10.77.100.3:80   TUN   IPv6       IPv4 in IPv6, next header 4 (4in6)
#   fd77:100::3:80   TUN   IPv4       IPv6 in IPv4, protocol 41 (6in4)
# Asserts: 40 HTTP requests to each VIP all succeed, and both backends answer some of each VIP's
# requests; each backend's decapsulator received every kind of tunnel above, no bad packet, and
# exactly as many packets as lbnode counted to that backend; lbnode's final counters show
# packets to the backends, every VIP and every per-VIP backend counter non-zero, no drops.
# Usage: lbnode_tun_test.sh <path to lbnode> <path to lb_decap.py>
set -euo pipefail
source "$(dirname "$0")/lab_lib.sh"
LBNODE=$(realpath "$1")
DECAP=$(realpath "$2")
PY=/usr/bin/python3  # Debian's interpreter (the one on PATH may be another)
tag="lbtun$$"
ns_s="${tag}s" ns_c="${tag}c" ns_n="${tag}n" ns_b1="${tag}b1" ns_b2="${tag}b2"
work=$(mktemp -d)
pids=()
requests=40
vips=(10.77.100.1 10.77.100.2 fd77:100::1 fd77:100::2 10.77.100.3 fd77:100::3)
kinds=(4in4 gue4 6in6 gue6 4in6 6in4)

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "/var/run/dpdk/$tag"  # lbnode removes it on a clean exit; not when killed
  for n in "$ns_c" "$ns_n" "$ns_b1" "$ns_b2" "$ns_s"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- lbnode log"; cat "$work/lbnode.log" 2>/dev/null || true
  echo "--- the node's neighbours and addresses on lb0"
  ip -n "$ns_n" neigh show dev lb0 2>/dev/null || true
  ip -n "$ns_n" addr show dev lb0 2>/dev/null || true
  for b in b1 b2; do
    echo "--- $b decapsulator log"; cat "$work/decap-$b.log" 2>/dev/null || true
  done
  exit 1
}

# Waits up to $1 tenths of a second for command "${@:2}" to succeed.
wait_for() {
  local tries=$1; shift
  for _ in $(seq 1 "$tries"); do "$@" && return 0; sleep 0.1; done
  return 1
}

for n in "$ns_s" "$ns_c" "$ns_n" "$ns_b1" "$ns_b2"; do ip netns add "$n"; done
ip -n "$ns_s" link add br0 type bridge
ip -n "$ns_s" link set br0 up
for pair in "c:$ns_c" "n:$ns_n" "b1:$ns_b1" "b2:$ns_b2"; do
  side=${pair%%:*} ns=${pair#*:}
  ip -n "$ns_s" link add "${side}-br" type veth peer name "${side}0" netns "$ns"
  ip -n "$ns_s" link set "${side}-br" master br0 up
done

# Client: reaches the VIPs through the node (static routes standing in for OSPF + ECMP).
ip -n "$ns_c" addr add 10.77.0.2/24 dev c0
ip -n "$ns_c" addr add fd77::2/64 dev c0 nodad
ip -n "$ns_c" link set c0 up
ip -n "$ns_c" link set lo up
ip -n "$ns_c" route add 10.77.100.0/24 via 10.77.0.10
ip -n "$ns_c" route add fd77:100::/64 via fd77::10
# A veth sender leaves TCP/UDP checksums to "offload"; AF_PACKET hands lbnode such frames with
# the checksum unfilled and the receiver drops them. Lab senders compute checksums in software.
ip netns exec "$ns_c" ethtool -K c0 tx off >/dev/null

# Backends: the VIPs on lo (never announced by ARP), the decapsulator, an HTTP server saying
# which backend answered. Reverse-path filtering off: the inner packets arrive on the tun device
# but their source (the client) is routed through b0.
declare -A addr4=([b1]=10.77.0.3 [b2]=10.77.0.4) addr6=([b1]=fd77::3 [b2]=fd77::4)
for b in b1 b2; do
  ns="${tag}${b}"
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  ip -n "$ns" addr add "${addr4[$b]}/24" dev "${b}0"
  ip -n "$ns" addr add "${addr6[$b]}/64" dev "${b}0" nodad
  for v in "${vips[@]}"; do
    case "$v" in *:*) ip -n "$ns" addr add "$v/128" dev lo ;; *) ip -n "$ns" addr add "$v/32" dev lo ;; esac
  done
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "${b}0" up
  ip netns exec "$ns" ethtool -K "${b}0" tx off >/dev/null
  mkdir -p "$work/www-$b" && printf "answered-by-backend-%s" "$b" > "$work/www-$b/index.html"
  # "::" with the default bindv6only=0 takes IPv4 too.
  ip netns exec "$ns" "$PY" -m http.server 80 --bind :: --directory "$work/www-$b" \
    >"$work/http-$b.log" 2>&1 &
  pids+=("$!")
  ip netns exec "$ns" "$PY" "$DECAP" --tun decap0 >"$work/decap-$b.log" 2>&1 &
  pids+=("$!")
  eval "decap_pid_$b=$!"
done
listening() { ip netns exec "$1" ss -Hltn "( sport = :80 )" | grep -q .; }
for b in b1 b2; do
  wait_for 100 grep -q "lb_decap: ready" "$work/decap-$b.log" || fail "decapsulator on $b not ready"
  wait_for 100 listening "${tag}$b" || fail "HTTP server on $b not listening"
done

# Node: the kernel must keep off the uplink veth; lbnode owns it. No IPv6 on n0 either: lb0 has
# n0's MAC, hence the same link-local address, and lbnode's AF_PACKET socket also captures what
# the kernel sends on n0 and passes it to lb0, so n0's duplicate address detection would make
# lb0's fail (and without a link-local address the kernel sends no neighbour solicitation).
lab_take_uplink "$ns_n" n0
cat > "$work/node.textproto" <<CONF
$(lab_dataplane_config "$tag" n0 "$work")
interface { name: "lb0" addresses: ["10.77.0.10/24", "fd77::10/64"] mtu: 1500 }
node { tunnel_source_ipv4: "10.77.0.10" tunnel_source_ipv6: "fd77::10" gue_port: 6080 }
services {
  version: 1
  vips {
    address: "10.77.100.1" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_TUN
    backends { address: "10.77.0.3" } backends { address: "10.77.0.4" }
  }
  vips {
    address: "10.77.100.2" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_GUE
    backends { address: "10.77.0.3" } backends { address: "10.77.0.4" }
  }
  vips {
    address: "fd77:100::1" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_TUN
    backends { address: "fd77::3" } backends { address: "fd77::4" }
  }
  vips {
    address: "fd77:100::2" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_GUE
    backends { address: "fd77::3" } backends { address: "fd77::4" }
  }
  vips {
    address: "10.77.100.3" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_TUN
    backends { address: "fd77::3" } backends { address: "fd77::4" }
  }
  vips {
    address: "fd77:100::3" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_TUN
    backends { address: "10.77.0.3" } backends { address: "10.77.0.4" }
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

# lb0's IPv6 addresses (link-local and fd77::10, the IPv6 VIPs' next hop) must finish duplicate
# address detection before the node can resolve the backends and the client the node.
dad_done() {
  if ip -n "$ns_n" -6 addr show dev lb0 dadfailed | grep -q inet6; then
    fail "duplicate address detection failed on lb0"
  fi
  ip -n "$ns_n" -6 addr show dev lb0 | grep -q "fd77::10/64" &&
    ip -n "$ns_n" -6 addr show dev lb0 scope link | grep -q inet6 &&
    ! ip -n "$ns_n" -6 addr show dev lb0 tentative | grep -q inet6
}
wait_for 50 dad_done || fail "lb0's IPv6 addresses still tentative"
# lbnode asks the kernel to resolve the backends; wait until all are known, then give the
# snapshot rebuild (every 200 ms at most) time to publish them, so that no request meets an
# unresolved backend.
resolved() { ip -n "$ns_n" neigh show "$1" dev lb0 | grep -q lladdr; }
for a in "${addr4[@]}" "${addr6[@]}"; do
  wait_for 50 resolved "$a" || fail "the node's kernel never resolved backend $a"
done
sleep 0.5
ip netns exec "$ns_c" ping -c 2 -i 0.2 -W 2 10.77.0.10 >/dev/null || fail "ping to 10.77.0.10"
ip netns exec "$ns_c" ping -6 -c 2 -i 0.2 -W 2 fd77::10 >/dev/null || fail "ping to fd77::10"

# Every request must succeed; both backends must be seen (Maglev spreads the 40 flows, which
# differ by source port; all on one backend has probability 2^-39).
for vip in "${vips[@]}"; do
  url="http://$vip/"
  case "$vip" in *:*) url="http://[$vip]/" ;; esac
  # One curl, $requests transfers, each on a new connection (the server closes them: HTTP/1.0)
  # with its own timeout; a line per transfer: "<body>|<HTTP status>|<local port>", status 000
  # when there was no answer.
  urls=()
  for i in $(seq 1 "$requests"); do urls+=("$url"); done
  out=$(ip netns exec "$ns_c" curl -s --max-time 2 -w '|%{http_code}|%{local_port}\n' \
        "${urls[@]}" || true)
  declare -A seen=() ports=()
  i=0
  while IFS='|' read -r body code port; do
    i=$((i + 1))
    [ "$code" = 200 ] || fail "request $i to $vip: HTTP status $code (000: no answer)"
    case "$body" in
      answered-by-backend-b1|answered-by-backend-b2) ;;
      *) fail "request $i to $vip: unexpected answer '$body'" ;;
    esac
    seen[$body]=$((${seen[$body]:-0} + 1))
    ports[$port]=1
  done <<<"$out"
  [ "$i" -eq "$requests" ] || fail "$vip: $i answers to $requests requests"
  [ "${#ports[@]}" -eq "$requests" ] || fail "$vip: requests reused source ports"
  [ "${#seen[@]}" -eq 2 ] || fail "$vip: only ${!seen[*]} answered $requests requests"
  echo "ok: $requests requests to $vip: b1 ${seen[answered-by-backend-b1]}," \
       "b2 ${seen[answered-by-backend-b2]}"
  unset seen ports
done

# The decapsulators: every kind of tunnel seen on each backend, nothing bad.
declare -A decapped=()
for b in b1 b2; do
  pid_var="decap_pid_$b"
  kill -TERM "${!pid_var}"
  wait "${!pid_var}" || fail "decapsulator on $b exit status $?"
  forget "${!pid_var}"
  dc=$(grep "lb_decap: counters" "$work/decap-$b.log" | tail -1)
  echo "$b: $dc"
  for k in "${kinds[@]}"; do
    grep -q " $k=[1-9]" <<<"$dc" || fail "$b received no $k packet"
  done
  grep -q " bad=0 write_errors=0" <<<"$dc" || fail "$b: bad packets or write errors"
  decapped[$b]=$(sed -n 's/.* written=\([0-9]*\).*/\1/p' <<<"$dc")
done

kill -TERM "$lbnode_pid"
wait "$lbnode_pid" || fail "lbnode exit status $?"
forget "$lbnode_pid"
counters=$(grep "counters" "$work/lbnode.log" | tail -1)
echo "lbnode: $counters"
to_backend=$(sed -n 's/.* to_backend=\([0-9]*\).*/\1/p' <<<"$counters")
[ "${to_backend:-0}" -ge $((${#vips[@]} * requests * 3)) ] ||
  fail "to_backend=${to_backend:-none}, expected at least 3 packets per request"
for vip in "${vips[@]}"; do
  key="$vip"
  [[ "$vip" == *:* ]] && key="[$vip]"  # IPv6 VIPs are bracketed: vip[[fd77:100::1]:80]
  grep -qF " vip[$key:80]=" <<<"$counters" || fail "no counter for VIP $vip"
  if grep -qF " vip[$key:80]=0 " <<<"$counters "; then fail "VIP $vip counter is zero"; fi
done
# One entry per (VIP, backend), in no particular order: all non-zero.
entries=$(tr ' ' '\n' <<<"$counters" | grep -c "^backend\[" || true)
zero=$(tr ' ' '\n' <<<"$counters" | grep -c "^backend\[.*\]=0$" || true)
[ "$entries" -eq $((${#vips[@]} * 2)) ] && [ "$zero" -eq 0 ] ||
  fail "$entries per-VIP backend counters ($((${#vips[@]} * 2)) expected), $zero of them zero"
# Every packet lbnode sent to a backend reached its decapsulator (nothing lost on the way).
for b in b1 b2; do
  sent=$(tr ' ' '\n' <<<"$counters" |
         awk -F= -v a="backend[${addr4[$b]}]" -v b="backend[${addr6[$b]}]" \
           '$1 == a || $1 == b { s += $2 } END { print s + 0 }')
  [ "$sent" -eq "${decapped[$b]}" ] ||
    fail "lbnode sent $sent packets to $b, its decapsulator decapsulated ${decapped[$b]}"
done
if grep -qE " (drop|parse)_" <<<"$counters"; then
  fail "lbnode dropped packets: $(grep -oE "(drop|parse)_[a-z_]+=[0-9]+" <<<"$counters" | xargs)"
fi
echo "PASS"
