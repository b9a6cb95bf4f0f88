#!/usr/bin/env bash
# End-to-end tests of a whole cluster (issue 6): a BIRD router doing OSPF ECMP, a client, three
# lbnode nodes and four (then five) TUN backends in network namespaces (deploy/lab/cluster.sh),
# configured with lbctl on the fleet. Checks, in sequence, each printing its figures on a line
# starting with "FIGURE:":
#   1 ECMP spread of new connections over the nodes
#   2 the same 5-tuple gets the same backend on every node
#   3 draining a node under load: no connection reset or stalled
#   4 SIGKILL of a node under load: how many broke, longest stall; the router drops the node
#   5 a backend dies: new connections avoid it after the health check's fall count; the others'
#     connections are untouched
#   6 adding a backend under load: existing connections undisturbed
#   7 bad input on the wire (malformed, truncated, oversized, fragments, random bytes): nodes
#     stay up, drop counters rise, connections keep working
# Usage (root): e2e_test.sh <lbnode> <lbctl> <source root>. Exit 77 (skip) without root or bird.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 <lbnode> <lbctl> <source root>" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v bird >/dev/null || { echo "SKIP: needs bird"; exit 77; }
/usr/bin/python3 -c 'import scapy' 2>/dev/null || { echo "SKIP: needs python3-scapy"; exit 77; }
LBNODE=$(readlink -f "$1") LBCTL=$(readlink -f "$2") LAB_ROOT=$(readlink -f "$3")
LAB_TAG="lbe$$" LAB_WORK=$(mktemp -d /tmp/lbe2e.XXXXXX)
HERE=$LAB_ROOT/tests/cluster
PY=/usr/bin/python3
# shellcheck source=../../deploy/lab/cluster.sh
source "$LAB_ROOT/deploy/lab/cluster.sh"
T0=$(date +%s)
VIP=$LAB_VIP
V80="$VIP:80/tcp"
V9K="$VIP:9000/tcp"
C=$(lab_ns c) R=$(lab_ns r)
declare -A echo_pid

finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
    echo "---- FAILED (rc $rc); logs:"
    for f in "$LAB_WORK"/n*/lbnode.log "$LAB_WORK"/router/bird.log; do
      [ -f "$f" ] && { echo "== $f"; tail -n 15 "$f"; }
    done
    ip -n "$R" route show "$VIP/32" 2>/dev/null || true
  fi
  lab_cleanup
  rm -rf "$LAB_WORK"
  echo "e2e: total $(( $(date +%s) - T0 )) s"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*"; exit 1; }
step() { echo; lab_log "== $*"; }
figure() { echo "FIGURE: $*"; }

start_echo() {
  local j=$1
  ip netns exec "$(lab_ns "b$j")" "$PY" "$HERE/echo_server.py" "b$j" 9000 \
    >"$LAB_WORK/b$j/echo.log" 2>&1 &
  echo_pid[$j]=$!
  lab_pids+=($!)
  lab_wait 100 grep -q "echo_server: ready" "$LAB_WORK/b$j/echo.log" || fail "echo server b$j"
}
stop_echo() {
  local j=$1
  kill "${echo_pid[$j]}" 2>/dev/null || true
  wait "${echo_pid[$j]}" 2>/dev/null || true
  lab_forget "${echo_pid[$j]}"
}

# Long-lived load (tests/cluster/load_client.py) in the client namespace, in the background.
load_pid=
load_start() {  # <name> <connections> <seconds>
  local name=$1 n=$2 secs=$3
  rm -f "$LAB_WORK/$name.ready"
  ip netns exec "$C" "$PY" "$HERE/load_client.py" "$VIP" 9000 -n "$n" --duration "$secs" \
    --ready-file "$LAB_WORK/$name.ready" >"$LAB_WORK/$name.json" 2>"$LAB_WORK/$name.err" &
  load_pid=$!
  lab_pids+=($!)
  lab_wait 300 test -s "$LAB_WORK/$name.ready" || fail "$name: load did not connect in 30 s"
  lab_log "$name: $(cat "$LAB_WORK/$name.ready") connections up"
}
load_wait() {  # <name>: waits for the load; sets J to its JSON summary
  local name=$1
  wait "$load_pid" || { cat "$LAB_WORK/$name.err"; fail "$name: load client failed"; }
  lab_forget "$load_pid"
  J=$(cat "$LAB_WORK/$name.json")
  lab_log "$name: $J"
}
jget() { "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); exec("print(" + sys.argv[2] + ")")' "$J" "$1"; }

metrics() { ip netns exec "$(lab_ns "n$1")" curl -s --max-time 2 http://127.0.0.1:9100/metrics; }
vip_packets() { metrics "$1" | awk -v m="lbnode_vip_packets_total{vip=\"$2\"}" '$1 == m {print $2; f=1} END {if (!f) print 0}'; }
# Packets dropped, every reason (lbnode_malformed_total is the breakdown of reason="malformed",
# in its own family).
drops_sum() { metrics "$1" | awk '$1 ~ /^lbnode_drops_total/ && $1 !~ /reason="parse_/ {s += $2} END {print s + 0}'; }
healthy() {  # <node> <vip> <backend>: prints 1/0
  metrics "$1" | awk -v m="lbnode_backend_healthy{vip=\"$2\",backend=\"$3\"}" '$1 == m {print $2}'
}
all_healthy_is() {  # <value> <vip> <backend>: true when every node says so
  local i
  for i in 1 2 3; do [ "$(healthy "$i" "$2" "$3")" = "$1" ] || return 1; done
}
nexthops_are() { [ "$(lab_nexthop_count)" = "$1" ]; }

# http_burst <n> [port...]: n HTTP GETs to VIP:80 from the client (8 at a time, new connection
# each); prints JSON {"backend-b1": k, ..., "failed": k}.
http_burst() {
  ip netns exec "$C" "$PY" - "$VIP" "$1" <<'PYEOF'
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
vip, n = sys.argv[1], int(sys.argv[2])
def get(_):
    try:
        s = socket.create_connection((vip, 80), timeout=3)
        s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        s.close()
        return data.split(b"\r\n\r\n", 1)[1].decode().strip() if b" 200 " in data else "failed"
    except OSError:
        return "failed"
with ThreadPoolExecutor(8) as ex:
    res = list(ex.map(get, range(n)))
out = {}
for r in res: out[r] = out.get(r, 0) + 1
print(json.dumps(out, sort_keys=True))
PYEOF
}

step "bringing up: BIRD router, client, 5 TUN backends (b5 unused until check 6), 3 nodes"
lab_router bird
lab_client
for j in 1 2 3 4 5; do lab_backend "$j" tun; start_echo "$j"; done
for i in 1 2 3; do lab_node "$i"; done
lab_ctl_all vip create "$V80" --mode tun -b 10.99.0.21 -b 10.99.0.22 -b 10.99.0.23 \
  -b 10.99.0.24 --check http --interval-ms 1000 --timeout-ms 500 --rise 1 --fall 2 >/dev/null
lab_ctl_all vip create "$V9K" --mode tun -b 10.99.0.21 -b 10.99.0.22 -b 10.99.0.23 \
  -b 10.99.0.24 --check tcp --interval-ms 1000 --timeout-ms 500 --rise 1 --fall 2 >/dev/null
lab_wait 300 nexthops_are 3 || fail "router has $(lab_nexthop_count) next hops for the VIP, not 3"
for b in 1 2 3 4; do
  lab_wait 100 all_healthy_is 1 "$V9K" "10.99.0.2$b" || fail "b$b not healthy on every node"
done
lab_log "lab up in $(( $(date +%s) - T0 )) s; router: $(lab_nexthops | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------
step "1. ECMP spread: 240 new connections from the client"
for i in 1 2 3; do before[$i]=$(vip_packets "$i" "$V80"); done
J=$(http_burst 240)
lab_log "by backend: $J"
total=0
for i in 1 2 3; do
  d[$i]=$(( $(vip_packets "$i" "$V80") - ${before[$i]} ))
  total=$(( total + ${d[$i]} ))
done
shares=""
for i in 1 2 3; do shares+="node$i=$(( 100 * ${d[$i]} / total ))% "; done
figure "ecmp: 240 connections, packets by node: node1=${d[1]} node2=${d[2]} node3=${d[3]}; shares: $shares; by backend: $J"
[ "$(jget 'd.get("failed", 0)')" = 0 ] || fail "some requests failed: $J"
for i in 1 2 3; do
  [ $(( 100 * ${d[$i]} / total )) -ge 10 ] || fail "node$i carried under 10% of the packets"
done

# ---------------------------------------------------------------------------------------------
step "2. consistency: the same 40 5-tuples sent through each node in turn"
# The router pins the client's traffic to the VIP to one node (policy route); the client opens
# the same 40 connections (fixed source ports) each time and records which backend answered.
ip -n "$R" rule add from 10.99.1.2 to "$VIP" lookup 100 pref 100
for i in 1 2 3; do
  ip -n "$R" route replace "$VIP/32" via "10.99.0.1$i" table 100
  b0=$(vip_packets "$i" "$V80")
  ip netns exec "$C" "$PY" - "$VIP" >"$LAB_WORK/map$i.txt" <<'PYEOF'
import socket, struct, sys
vip = sys.argv[1]
for port in range(41001, 41041):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.99.1.2", port))
    s.settimeout(3)
    try:
        s.connect((vip, 80))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        ans = data.split(b"\r\n\r\n", 1)[1].decode().strip()
    except OSError as e:
        ans = "error"
    # RST on close: neither side keeps the 4-tuple in TIME_WAIT for the next pass.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print(port, ans)
PYEOF
  carried=$(( $(vip_packets "$i" "$V80") - b0 ))
  lab_log "through node$i: $(awk '{print $2}' "$LAB_WORK/map$i.txt" | sort | uniq -c | tr -s ' \n' ' '); node$i forwarded $carried packets"
  [ "$carried" -ge 120 ] || fail "node$i forwarded only $carried packets of the pinned flows"
  ! grep -q error "$LAB_WORK/map$i.txt" || fail "a pinned connection through node$i failed"
done
ip -n "$R" rule del pref 100
ip -n "$R" route flush table 100
same=$(paste "$LAB_WORK/map1.txt" "$LAB_WORK/map2.txt" "$LAB_WORK/map3.txt" |
  awk '$2 == $4 && $4 == $6' | wc -l)
flows=$(wc -l <"$LAB_WORK/map1.txt")
nb=$(awk '{print $2}' "$LAB_WORK/map1.txt" | sort -u | wc -l)
figure "consistency: $flows flows x 3 nodes compared, $same identical on all nodes, spread over $nb backends"
[ "$same" = "$flows" ] && [ "$flows" = 40 ] || fail "mappings differ between nodes"

# ---------------------------------------------------------------------------------------------
step "3. graceful drain of node2 under load: 500 long-lived connections to $V9K"
load_start drain 500 16
sleep 3
t=$(date +%s%N)
lab_ctl 2 drain --timeout 10 >/dev/null
lab_wait 100 bash -c "! ip -n $R route show $VIP/32 | grep -q 10.99.0.12" ||
  fail "node2 still in the router's route 10 s after the drain"
moved_ms=$(( ($(date +%s%N) - t) / 1000000 ))
lab_log "node2 left the route after $moved_ms ms; router: $(lab_nexthops | tr '\n' ' ')"
sleep 0.5
for i in 1 2 3; do before[$i]=$(vip_packets "$i" "$V9K"); done
load_wait drain
after=""
for i in 1 2 3; do after+="node$i=$(( $(vip_packets "$i" "$V9K") - ${before[$i]} )) "; done
figure "drain: packets per node after the route moved: $after"
figure "drain: $(jget 'd["connected"]')/500 connections up, route moved after ${moved_ms} ms, broken $(jget 'd["broken"]') $(jget 'd["errors"]'), stalled >2s $(jget 'd["stalled"]'), longest wait $(jget 'd["max_wait_s"]') s, $(jget 'd["messages"]') echoes"
[ "$(jget 'd["connected"]')" = 500 ] || fail "not every connection came up"
[ "$(jget 'd["broken"]')" = 0 ] || fail "connections broke during the drain"
[ "$(jget 'd["stalled"]')" = 0 ] || fail "connections stalled during the drain"
lab_ctl 2 undrain >/dev/null
lab_wait 150 nexthops_are 3 || fail "node2 not back in the route after undrain"

# ---------------------------------------------------------------------------------------------
step "4. hard failure: SIGKILL of node3's lbnode under load (500 connections)"
load_start kill 500 14
sleep 3
t=$(date +%s%N)
kill -9 "${lab_node_pid[3]}"
wait "${lab_node_pid[3]}" 2>/dev/null || true
lab_forget "${lab_node_pid[3]}"
lab_wait 100 bash -c "! ip -n $R route show $VIP/32 | grep -q 10.99.0.13" ||
  fail "node3 still in the router's route 10 s after its lbnode was killed"
gone_ms=$(( ($(date +%s%N) - t) / 1000000 ))
lab_log "node3 left the route after $gone_ms ms; router: $(lab_nexthops | tr '\n' ' ')"
load_wait kill
broken=$(jget 'd["broken"]')
figure "hard failure: $(jget 'd["connected"]')/500 connections up, router dropped node3 after ${gone_ms} ms, broken $broken $(jget 'd["errors"]'), stalled >2s $(jget 'd["stalled"]'), longest wait (traffic lost) $(jget 'd["max_wait_s"]') s"
# Goal: zero resets (the backend set did not change; the other nodes pick the same backend).
# Asserted: the router dropped the node, and at most 5% of the connections broke.
[ "$(jget 'd["connected"]')" = 500 ] || fail "not every connection came up"
[ "$broken" -le 25 ] || fail "$broken connections broke on a node failure"
step "4b. restarting node3's lbnode"
t=$(date +%s)
lab_start_lbnode 3
if ! lab_ctl 3 vip list 2>/dev/null | grep -q 9000; then
  lab_log "node3 came back without its VIPs: configuring them again"
  lab_ctl 3 vip create "$V80" --mode tun -b 10.99.0.21 -b 10.99.0.22 -b 10.99.0.23 \
    -b 10.99.0.24 --check http --interval-ms 1000 --timeout-ms 500 --rise 1 --fall 2 >/dev/null
  lab_ctl 3 vip create "$V9K" --mode tun -b 10.99.0.21 -b 10.99.0.22 -b 10.99.0.23 \
    -b 10.99.0.24 --check tcp --interval-ms 1000 --timeout-ms 500 --rise 1 --fall 2 >/dev/null
fi
lab_wait 300 nexthops_are 3 || fail "node3 not back in the route 30 s after its restart"
figure "hard failure: node3 back in the router's route $(( $(date +%s) - t )) s after lbnode restarted"

# ---------------------------------------------------------------------------------------------
step "5. backend failure: b4's servers stop under load (500 connections)"
load_start bfail 500 12
sleep 2
t=$(date +%s%N)
stop_echo 4
lab_stop_http 4
lab_wait 100 all_healthy_is 0 "$V80" 10.99.0.24 || fail "b4 still healthy for :80 on some node"
lab_wait 100 all_healthy_is 0 "$V9K" 10.99.0.24 || fail "b4 still healthy for :9000 on some node"
down_ms=$(( ($(date +%s%N) - t) / 1000000 ))
lab_log "b4 unhealthy on every node after $down_ms ms"
J=$(http_burst 200)
lab_log "200 new HTTP connections: $J"
new80=$J
[ "$(jget 'd.get("failed", 0)')" = 0 ] || fail "new connections failed after b4's removal: $J"
[ "$(jget 'd.get("backend-b4", 0)')" = 0 ] || fail "new connections reached the dead b4: $J"
load_wait bfail
on_b4=$(jget 'd["by_backend"].get("b4", 0)')
broken_b4=$(jget 'd["broken_by_backend"].get("b4", 0)')
broken_other=$(( $(jget 'd["broken"]') - broken_b4 ))
figure "backend failure: b4 unhealthy on all nodes ${down_ms} ms after its servers stopped (interval 1000 ms, fall 2); 200 new connections after: $new80; of 500 long-lived: $broken_b4/$on_b4 on b4 broke (expected), $broken_other of the $(( 500 - on_b4 )) on other backends moved/broke, stalled $(jget 'd["stalled"]')"
[ "$broken_other" = 0 ] || fail "connections to healthy backends were disturbed"
[ "$(jget 'd["stalled"]')" = 0 ] || fail "connections stalled"
lab_start_http 4
start_echo 4
lab_wait 100 all_healthy_is 1 "$V9K" 10.99.0.24 || fail "b4 not healthy again"
lab_wait 100 all_healthy_is 1 "$V80" 10.99.0.24 || fail "b4 not healthy again for :80"

# ---------------------------------------------------------------------------------------------
step "6. config change under load: adding b5 to $V9K on the fleet (500 connections)"
load_start add 500 12
sleep 3
lab_ctl_all backend add "$V9K" 10.99.0.25 >/dev/null
lab_wait 100 all_healthy_is 1 "$V9K" 10.99.0.25 || fail "b5 not healthy on every node"
load_wait add
disturbed=$(( $(jget 'd["broken"]') + $(jget 'd["stalled"]') ))
figure "config change: $(jget 'd["connected"]') existing connections, $disturbed disturbed ($(( disturbed * 100 / 500 ))%) by adding a 5th backend: $(jget 'd["errors"]'), longest wait $(jget 'd["max_wait_s"]') s"
[ "$(jget 'd["connected"]')" = 500 ] || fail "not every connection came up"
[ "$disturbed" = 0 ] || fail "existing connections disturbed by adding a backend"
load_start add2 200 1
load_wait add2
figure "config change: 200 new connections afterwards by backend: $(jget 'd["by_backend"]')"
[ "$(jget 'd["by_backend"].get("b5", 0)')" -gt 0 ] || fail "no new connection reached b5"
[ "$(jget 'd["broken"]')" = 0 ] || fail "new connections broke"

# ---------------------------------------------------------------------------------------------
step "7. bad input on the wire under load (300 connections)"
for i in 1 2 3; do dbefore[$i]=$(drops_sum "$i"); done
metrics 1 | grep -E '^lbnode_(drops|malformed)_total' >"$LAB_WORK/drops1.before" || true
load_start bad 300 18
macs=()
for i in 1 2 3; do macs+=("$(ip -n "$R" neigh show "10.99.0.1$i" | awk '{print $5}')"); done
[ "${#macs[@]}" = 3 ] && [ -n "${macs[2]}" ] || fail "router has no neighbour entries for the nodes"
brmac=$(ip netns exec "$R" cat /sys/class/net/br0/address)
t=$(date +%s)
sent3=$(ip netns exec "$C" "$PY" "$HERE/bad_input.py" l3 "$VIP" | awk '/^bad_input l3:/ {print $3}')
sent2=$(ip netns exec "$R" "$PY" "$HERE/bad_input.py" l2 br0 "$brmac" "${macs[@]}" | awk '/^bad_input l2:/ {print $3}')
[ -n "$sent3" ] && [ -n "$sent2" ] || fail "bad_input.py did not send"
sent_s=$(( $(date +%s) - t ))
load_wait bad
alive=0 api=0 dsum="" drops_ok=1
for i in 1 2 3; do
  kill -0 "${lab_node_pid[$i]}" 2>/dev/null && alive=$(( alive + 1 ))
  lab_ctl "$i" status >/dev/null 2>&1 && api=$(( api + 1 ))
  dd=$(( $(drops_sum "$i") - ${dbefore[$i]} ))
  dsum+="node$i=+$dd "
  [ "$dd" -gt 0 ] || drops_ok=0
done
reasons=$(metrics 1 | grep -E '^lbnode_(drops|malformed)_total' | awk 'NR==FNR {b[$1]=$2; next} $2 - b[$1] > 0 {sub(/.*reason="/, "", $1); sub(/"}/, "", $1); printf "%s+%d ", $1, $2 - b[$1]}' "$LAB_WORK/drops1.before" -)
figure "bad input: $sent3 packets from the client through the router + $sent2 frames on the segment to the nodes' MACs in ${sent_s} s; nodes alive $alive/3, API answering $api/3; drops $dsum; node1 by reason: $reasons"
figure "bad input: long-lived connections $(jget 'd["connected"]')/300 up, broken $(jget 'd["broken"]') $(jget 'd["errors"]'), stalled $(jget 'd["stalled"]'), longest wait $(jget 'd["max_wait_s"]') s"
[ "$alive" = 3 ] && [ "$api" = 3 ] || fail "a node died or its API stopped answering"
[ "$drops_ok" = 1 ] || fail "drop counters did not rise on every node"
[ "$(jget 'd["broken"]')" = 0 ] && [ "$(jget 'd["stalled"]')" = 0 ] || fail "connections disturbed by bad input"
nexthops_are 3 || fail "router lost a node during the bad input"
step "all checks passed"
