#!/usr/bin/env bash
# The routing agent with real daemons: an upstream router (BIRD, then FRR ospfd: an independent
# OSPF implementation) and two lbnode nodes, each with its own BIRD driven by lbnode, in network
# namespaces (deploy/lab/cluster.sh). For each router, with BFD and without:
#   - the router's kernel route for the VIP is multipath, one next hop per node;
#   - drain through the API (lbctl drain): the node's next hop leaves the route; the time from
#     the RPC to the kernel route change is printed (median of several); undrain brings it back;
#   - a VIP whose backends all fail their health checks on one node is withdrawn by that node
#     only (BFD runs only);
#   - SIGKILL of one lbnode: the router drops it by itself (BFD or OSPF dead interval through
#     the dataplane's exception path); the detection time is printed.
# Lines starting with FIGURE: carry the measurements.
# Usage: routing_test.sh <lbnode> <lbctl> <source root> [bird|frr ...]
set -euo pipefail
LBNODE=$(realpath "$1") LBCTL=$(realpath "$2") LAB_ROOT=$(realpath "$3")
shift 3
routers=("$@")
[ ${#routers[@]} -gt 0 ] || routers=(bird frr)
LAB_TAG="lbrt$$"
LAB_LBNODE_ARGS=--fault-injection  # SIGUSR2 stalls a worker: the watchdog check below
base=$(mktemp -d /tmp/lbrt.XXXXXX)
LAB_WORK=$base
source "$LAB_ROOT/deploy/lab/cluster.sh"
trap 'lab_cleanup; rm -rf "$base"' EXIT

fail() {
  echo "FAIL: $*"
  echo "--- router route"; ip -n "$(lab_ns r)" route show "$LAB_VIP/32" 2>/dev/null || true
  for i in 1 2; do
    echo "--- node$i lbnode log (tail)"; tail -20 "$LAB_WORK/n$i/lbnode.log" 2>/dev/null || true
  done
  exit 1
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
has_hop() { lab_nexthops | grep -qx "$1"; }
# ms_until <timeout ms> <command...>: polls every 10 ms; prints the elapsed ms or fails.
ms_until() {
  local limit=$1 t0; shift
  t0=$(now_ms)
  while ! "$@"; do
    [ $(( $(now_ms) - t0 )) -lt "$limit" ] || return 1
    sleep 0.01
  done
  echo $(( $(now_ms) - t0 ))
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_lab() {  # <bird|frr> <bfd 0|1>
  local kind=$1 bfd=$2 label i
  label="router=$kind bfd=$([ "$bfd" = 1 ] && echo on || echo off)"
  echo "=== $label"
  LAB_WORK="$base/$kind-$bfd"  # fresh state directories: nodes restore saved state
  mkdir -p "$LAB_WORK"
  lab_router "$kind" "$bfd"
  lab_client
  for j in 1 2; do lab_backend "$j" dr; done
  for i in 1 2; do lab_node "$i" "$bfd"; done
  lab_ctl_all vip create "$LAB_VIP:80/tcp" --mode dr -b 10.99.0.21 -b 10.99.0.22 --check http \
    --interval-ms 500 --timeout-ms 300 --rise 1 --fall 2 >/dev/null
  # A second VIP on its own address, whose health check port nobody listens on: all backends
  # fail, so no node may announce it.
  lab_ctl_all vip create "10.99.100.2:81/tcp" --mode dr -b 10.99.0.21 --check tcp \
    --interval-ms 500 --timeout-ms 300 --fall 2 >/dev/null
  local t
  t=$(ms_until 40000 bash -c "[ \$(ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -c via) = 2 ]") ||
    fail "$label: no 2-next-hop route after 40 s"
  echo "multipath route ${t} ms after the VIP was created:"
  ip -n "$(lab_ns r)" route show "$LAB_VIP/32" | sed 's/^/  /'
  ip -n "$(lab_ns r)" route show | grep -q "10.99.100.2" &&
    fail "$label: VIP with no healthy backend announced"
  echo "ok: 10.99.100.2 (all backends unhealthy) announced by no node"
  lab_curl -o /dev/null "http://$LAB_VIP/" || fail "$label: no HTTP answer through the cluster"

  # Drain / undrain node 2, three times. BIRD originates a changed router-LSA at most every 5 s
  # (MinLSInterval), so each drain waits for the previous change to be 6 s old.
  local drains=() undrains=() d u rounds=3
  [ "$bfd" = 1 ] || rounds=1  # a drain does not depend on BFD: measured in full once per router
  for round in $(seq 1 $rounds); do
    sleep 6
    t=$(now_ms)
    lab_ctl 2 drain >/dev/null
    d=$(ms_until 15000 bash -c "! ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -q 10.99.0.12") ||
      fail "$label: drained node2 still in the route after 15 s"
    has_hop 10.99.0.11 || fail "$label: node1 left the route too"
    drains+=($(( $(now_ms) - t )))
    sleep 6
    t=$(now_ms)
    lab_ctl 2 undrain >/dev/null
    u=$(ms_until 20000 has_hop 10.99.0.12) || fail "$label: undrained node2 not back after 20 s"
    undrains+=($(( $(now_ms) - t )))
  done
  echo "FIGURE: $label drain RPC -> router route change: median $(median "${drains[@]}") ms (${drains[*]}); undrain -> back: median $(median "${undrains[@]}") ms (${undrains[*]})"
  # The drain report says when BIRD stopped originating the route.
  lab_ctl 2 --json status | grep -q '"node_drained": false' || fail "$label: node2 still drained"

  if [ "$bfd" = 1 ]; then
    # Health: node1's probes to the backends fail (nft drops them in node1's namespace only);
    # node1 withdraws the VIP, node2 keeps it.
    sleep 6
    ip netns exec "$(lab_ns n1)" nft add table inet lbtest
    ip netns exec "$(lab_ns n1)" nft add chain inet lbtest out \
      '{ type filter hook output priority 0; policy accept; }'
    ip netns exec "$(lab_ns n1)" nft add rule inet lbtest out tcp dport 80 drop
    t=$(ms_until 20000 bash -c "! ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -q 10.99.0.11") ||
      fail "$label: node1 with failing health checks still announces"
    has_hop 10.99.0.12 || fail "$label: node2 lost the route too"
    lab_ctl 1 vip list | grep -q "no healthy backend" || fail "$label: node1 reason not shown"
    echo "FIGURE: $label backends unhealthy on node1 only -> node1 withdrawn after ${t} ms, node2 still announcing"
    ip netns exec "$(lab_ns n1)" nft delete table inet lbtest
    ms_until 20000 has_hop 10.99.0.11 >/dev/null || fail "$label: node1 not back after recovery"
  fi

  if [ "$bfd" = 1 ]; then
    # Watchdog: node2's only worker stalls for 3 s (fault injection). lbnode must see it, report
    # the worker stuck and withdraw every VIP from BIRD. The withdrawal itself cannot reach the
    # router through the stalled worker: the router drops node2 because BFD and OSPF hellos stop
    # crossing it (fate sharing); with more workers, the others would carry the withdrawal.
    sleep 6
    t=$(now_ms)
    kill -USR2 "${lab_node_pid[2]}"
    ms_until 3000 bash -c "'$LBCTL' --target unix:$LAB_WORK/n2/api.sock status | grep -q STUCK" \
      >/dev/null || fail "$label: watchdog did not report the stalled worker"
    d=$(( $(now_ms) - t ))
    ms_until 3000 bash -c "! grep -q stubnet $LAB_WORK/n2/bird.conf" >/dev/null ||
      fail "$label: VIPs not withdrawn from BIRD's config while a worker was stuck"
    grep -q "watchdog" "$LAB_WORK/n2/lbnode.log" || fail "$label: no watchdog log line"
    ms_until 5000 bash -c "! ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -q 10.99.0.12" \
      >/dev/null || fail "$label: router kept the stalled node"
    echo "FIGURE: $label worker stalled -> watchdog reports it after ${d} ms, VIPs withdrawn from BIRD, router dropped the node after $(( $(now_ms) - t )) ms"
    ms_until 30000 has_hop 10.99.0.12 >/dev/null || fail "$label: node2 not back after the stall"
  fi

  if [ "$bfd" = 0 ]; then
    # Clean shutdown: SIGTERM withdraws the routes first and keeps forwarding for the grace
    # period, so the router moves away well before the OSPF dead interval (4 s) would.
    sleep 6
    t=$(now_ms)
    kill -TERM "${lab_node_pid[2]}"
    d=$(ms_until 10000 bash -c "! ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -q 10.99.0.12") ||
      fail "$label: SIGTERMed node2 still in the route"
    wait "${lab_node_pid[2]}" || fail "$label: lbnode exit status $? after SIGTERM"
    lab_forget "${lab_node_pid[2]}"
    grep -q "withdrew every route before stopping" "$LAB_WORK/n2/lbnode.log" ||
      fail "$label: no withdrawal logged at shutdown"
    echo "FIGURE: $label SIGTERM of lbnode -> router drops the node after ${d} ms (withdrawal, no BFD)"
    lab_start_lbnode 2 >/dev/null
    ms_until 40000 has_hop 10.99.0.12 >/dev/null || fail "$label: restarted node2 not back"
  fi

  # Hard failure: SIGKILL node2's lbnode, three times (restarted in between: it restores its
  # state, recreates lb0, and its BIRD picks the interface up again). OSPF hellos and BFD both
  # cross the dataplane, so the router notices by itself.
  local kills=()
  for round in 1 2 3; do
    # A BIRD router postpones the network-LSA change for a node that rejoined less than 5 s ago
    # (MinLSInterval, LAB.md): wait that out so each kill measures detection, not the rejoin.
    if [ "$kind" = bird ]; then sleep 6; else sleep 2; fi
    t=$(now_ms)
    kill -9 "${lab_node_pid[2]}"
    wait "${lab_node_pid[2]}" 2>/dev/null || true
    lab_forget "${lab_node_pid[2]}"
    ms_until 15000 bash -c "! ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -q 10.99.0.12" \
      >/dev/null || fail "$label: killed node2 still in the route after 15 s"
    kills+=($(( $(now_ms) - t )))
    has_hop 10.99.0.11 || fail "$label: node1 left the route"
    [ "$round" = 3 ] && break
    rm -rf "/var/run/dpdk/${LAB_TAG}n2"
    lab_start_lbnode 2 >/dev/null
    ms_until 40000 has_hop 10.99.0.12 >/dev/null || fail "$label: restarted node2 not back after 40 s"
  done
  echo "FIGURE: $label SIGKILL of lbnode -> router drops the node: median $(median "${kills[@]}") ms (${kills[*]})"
  lab_cleanup
}

for r in "${routers[@]}"; do
  run_lab "$r" 1
  run_lab "$r" 0
done
echo PASS
