#!/usr/bin/env bash
# Health checks end to end, driven through lbctl: a real lbnode (DPDK on a veth, exception path on
# lb0) in front of three DR backends running real HTTP servers. lbctl creates the VIP with its
# three backends and an HTTP health check; one backend's server is stopped: the node marks it
# unhealthy (watch stream, vip list, metrics), takes it out of Maglev, and new requests all reach
# the other two; the server comes back: so does the backend. Prints the lbctl session.
# Usage: lbnode_health_test.sh <lbnode> <lbctl>
set -euo pipefail
source "$(dirname "$0")/lab_lib.sh"
LBNODE=$(realpath "$1")
LBCTL=$(realpath "$2")
tag="lbhc$$"
ns_s="${tag}s" ns_c="${tag}c" ns_n="${tag}n"
work=$(mktemp -d)
pids=()
sock="$work/api-$tag.sock"
mport=$((20000 + $$ % 20000))

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "/var/run/dpdk/$tag"
  for n in "$ns_c" "$ns_n" "${tag}b1" "${tag}b2" "${tag}b3" "$ns_s"; do
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- lbnode log"; cat "$work/lbnode.log" 2>/dev/null || true
  echo "--- watch"; cat "$work/watch.log" 2>/dev/null || true
  exit 1
}
wait_for() {  # <tenths of a second> <command...>
  local tries=$1; shift
  for _ in $(seq 1 "$tries"); do "$@" && return 0; sleep 0.1; done
  return 1
}
ctl() { "$LBCTL" --target "unix:$sock" "$@"; }
# Shows an lbctl command and its output, as an operator would see it.
show() { echo "\$ lbctl $*"; ctl "$@" | sed 's/^/  /'; }

for n in "$ns_s" "$ns_c" "$ns_n"; do ip netns add "$n"; done
ip -n "$ns_s" link add br0 type bridge
ip -n "$ns_s" link set br0 up
for pair in "c:$ns_c" "n:$ns_n"; do
  side=${pair%%:*} ns=${pair#*:}
  ip -n "$ns_s" link add "${side}-br" type veth peer name "${side}0" netns "$ns"
  ip -n "$ns_s" link set "${side}-br" master br0 up
done

ip netns exec "$ns_c" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$ns_c" addr add 10.78.0.2/24 dev c0
ip -n "$ns_c" link set c0 up
ip -n "$ns_c" link set lo up
ip -n "$ns_c" route add 10.78.100.1/32 via 10.78.0.10
ip netns exec "$ns_c" ethtool -K c0 tx off >/dev/null

# Three DR backends: the VIP on lo, a real HTTP server saying who answered.
declare -A http_pid
start_http() {  # <n>
  ip netns exec "${tag}b$1" /usr/bin/python3 -m http.server 80 --bind 0.0.0.0 \
    --directory "$work/www$1" >"$work/http$1.log" 2>&1 &
  http_pid[$1]=$!
  pids+=($!)
}
for i in 1 2 3; do
  ns="${tag}b$i"
  ip netns add "$ns"
  ip -n "$ns_s" link add "b$i-br" type veth peer name b0 netns "$ns"
  ip -n "$ns_s" link set "b$i-br" master br0 up
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    net.ipv6.conf.all.disable_ipv6=1
  ip -n "$ns" addr add "10.78.0.2$i/24" dev b0
  ip -n "$ns" addr add 10.78.100.1/32 dev lo
  ip -n "$ns" link set lo up
  ip -n "$ns" link set b0 up
  ip netns exec "$ns" ethtool -K b0 tx off >/dev/null
  mkdir -p "$work/www$i" && echo "backend-b$i" >"$work/www$i/index.html"
  start_http "$i"
done

ip netns exec "$ns_n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
lab_take_uplink "$ns_n" n0
cat >"$work/node.textproto" <<CONF
$(lab_dataplane_config "$tag" n0 "$work")
interface { name: "lb0" addresses: "10.78.0.10/24" mtu: 1500 }
node { tunnel_source_ipv4: "10.78.0.10" }
metrics { listen: "127.0.0.1:$mport" }
CONF
ip netns exec "$ns_n" "$LBNODE" --config "$work/node.textproto" >"$work/lbnode.log" 2>&1 &
lbnode_pid=$!
pids+=($lbnode_pid)
wait_for 100 grep -q "exception interface lb0 up" "$work/lbnode.log" || fail "lbnode did not come up"
wait_for 50 test -S "$sock" || fail "no API socket"

echo "--- lbctl session"
show vip create 10.78.100.1:80/tcp --mode dr -b 10.78.0.21 -b 10.78.0.22 -b 10.78.0.23 \
  --check http --check-path / --interval-ms 500 --timeout-ms 300 --rise 2 --fall 2
ctl watch >"$work/watch.log" 2>&1 &
pids+=($!)
all_healthy() { [ "$(ctl --json vip list | grep -c '"healthy": true')" = 3 ] && ctl status | grep -q "health checks:   ready"; }
wait_for 100 all_healthy || fail "backends not all healthy after 10 s: $(ctl vip list)"
show vip list

# Requests from the client: every backend answers some.
requests() {  # <count> -> counts per backend in $work/answers
  : >"$work/answers"
  for _ in $(seq 1 "$1"); do
    ip netns exec "$ns_c" curl -s --max-time 2 http://10.78.100.1/ >>"$work/answers" || echo "failed" >>"$work/answers"
  done
}
requests 30
echo "30 requests before: $(sort "$work/answers" | uniq -c | tr '\n' ' ')"
for i in 1 2 3; do grep -q "backend-b$i" "$work/answers" || fail "b$i answered none of 30"; done
grep -q failed "$work/answers" && fail "requests failed with every backend healthy"

# b2's server stops: it fails its check and leaves the Maglev table.
t0=$(date +%s%N)
kill "${http_pid[2]}"; wait "${http_pid[2]}" 2>/dev/null || true; forget "${http_pid[2]}"
b2_down() { ctl vip list | grep "10.78.0.22" | grep -q UNHEALTHY; }
wait_for 100 b2_down || fail "b2 never marked unhealthy"
echo "b2 marked unhealthy $(( ($(date +%s%N) - t0) / 1000000 )) ms after its server stopped (interval 500 ms, fall 2)"
show vip list
requests 30
echo "30 requests with b2 down: $(sort "$work/answers" | uniq -c | tr '\n' ' ')"
grep -q "backend-b2" "$work/answers" && fail "b2 still got requests"
grep -q failed "$work/answers" && fail "requests failed with b2 out of the table"
curl -s "127.0.0.1:$mport/metrics" >"$work/metrics" || true
ip netns exec "$ns_n" curl -s "127.0.0.1:$mport/metrics" >"$work/metrics"
grep -q 'lbnode_backend_healthy{vip="10.78.100.1:80/tcp",backend="10.78.0.22"} 0' "$work/metrics" ||
  fail "metrics do not show b2 unhealthy"
if command -v promtool >/dev/null; then promtool check metrics <"$work/metrics" || fail "promtool"; fi

# b2 comes back.
start_http 2
b2_up() { ! ctl vip list | grep "10.78.0.22" | grep -q UNHEALTHY; }
wait_for 100 b2_up || fail "b2 never healthy again"
show stats
grep -q "UNHEALTHY.*10.78.0.22\|10.78.0.22 unhealthy" "$work/watch.log" || fail "watch missed b2 going down"
grep -q "10.78.0.22 healthy" "$work/watch.log" || fail "watch missed b2 coming back"
echo "\$ lbctl watch   (events seen during the test)"
sed 's/^/  /' "$work/watch.log"
ctl stats | grep -q "10.78.0.21 *[1-9]" || fail "no packets counted to b1"
echo "PASS"
