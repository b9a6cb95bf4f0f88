#!/usr/bin/env bash
# The cluster in a box: installs what is missing, builds, and brings up in network namespaces an
# upstream router (BIRD, or FRR with --frr), a client, three lbnode nodes each with its BIRD,
# and four backends running real HTTP servers. Configures the VIP through lbctl on the whole
# fleet, sends traffic, shows how connections spread over nodes and backends, drains one node,
# shows traffic moving, undrains it, and tears everything down (also on Ctrl-C).
#
# Usage (as root, Debian 12): bash deploy/demo.sh [--frr] [--dr] [--keep] [--no-build]
#   --frr       FRR ospfd as the router instead of BIRD
#   --dr        DR forwarding (MAC rewrite) instead of TUN (IP-in-IP, decapsulated in user space)
#   --keep      leave the lab up at the end for exploring with lbctl (prints how; stop with
#               Ctrl-C)
#   --no-build  use the binaries in build/ as they are
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
router=bird mode=tun keep=0 build=1
for a in "$@"; do
  case "$a" in
    --frr) router=frr ;;
    --dr) mode=dr ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $a (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (network namespaces, DPDK)" >&2; exit 2; }
start=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dependencies and build"
bash deploy/install-deps.sh
if [ "$build" = 1 ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$(nproc)" --target lbnode lbctl >/dev/null
fi
LBNODE=$ROOT/build/control/lbnode LBCTL=$ROOT/build/tools/lbctl LAB_ROOT=$ROOT
LAB_TAG="lbd$$" LAB_WORK=$(mktemp -d /tmp/lbdemo.XXXXXX)
source deploy/lab/cluster.sh
finish() {
  trap - EXIT INT TERM
  step "teardown"
  lab_cleanup
  rm -rf "$LAB_WORK"
  echo "namespaces and processes removed"
}
trap finish EXIT
trap 'exit 130' INT TERM

step "bringing up: router ($router), client, 4 backends, 3 nodes ($mode mode)"
lab_router "$router"
lab_client
for j in 1 2 3 4; do lab_backend "$j" "$mode"; done
for i in 1 2 3; do lab_node "$i"; done
echo "lab up in $(( $(date +%s) - start )) s (work dir $LAB_WORK)"

step "configuring VIP $LAB_VIP:80 on the fleet through lbctl"
mode_flag=$mode
echo "\$ lbctl --target <node1> --target <node2> --target <node3> vip create $LAB_VIP:80/tcp --mode $mode_flag -b 10.99.0.21 ... --check http"
lab_ctl_all vip create "$LAB_VIP:80/tcp" --mode "$mode_flag" -b 10.99.0.21 -b 10.99.0.22 \
  -b 10.99.0.23 -b 10.99.0.24 --check http --interval-ms 1000 --timeout-ms 500 --rise 1 --fall 2
printf 'waiting for the router to install one next hop per node'
lab_wait 300 bash -c "[ \$(ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -c 'via') = 3 ]" ||
  { echo; echo "router route:"; ip -n "$(lab_ns r)" route show "$LAB_VIP/32"; exit 1; }
echo
echo "router's route to the VIP:"
ip -n "$(lab_ns r)" route show "$LAB_VIP/32" | sed 's/^/  /'

# traffic <n>: n HTTP requests (one connection each, distinct source ports); prints the spread.
traffic() {
  local n=$1 before after i out
  declare -A perb=()
  for i in 1 2 3; do before[$i]=$(lab_metric "$i" lbnode_vip_packets_total\{vip=\"$LAB_VIP:80/tcp\"\}); done
  for _ in $(seq 1 "$n"); do
    out=$(lab_curl "http://$LAB_VIP/" || echo failed)
    perb[$out]=$(( ${perb[$out]:-0} + 1 ))
  done
  last_backends="" last_nodes=""
  for k in $(printf '%s\n' "${!perb[@]}" | sort); do last_backends+="${k#backend-}=${perb[$k]} "; done
  for i in 1 2 3; do
    after=$(lab_metric "$i" lbnode_vip_packets_total\{vip=\"$LAB_VIP:80/tcp\"\})
    last_nodes+="node$i=$(( ${after:-0} - ${before[$i]:-0} )) "
  done
  echo "  answered by backend: $last_backends"
  echo "  VIP packets by node: $last_nodes"
  [ -z "${perb[failed]:-}" ] || echo "  (${perb[failed]} requests failed)"
  summary+=("$2: $n requests; backends $last_backends; node packets $last_nodes${perb[failed]:+; ${perb[failed]} FAILED}")
}
summary=()
declare -A before

step "traffic: 120 HTTP requests from the client (each a new TCP connection)"
traffic 120 "all nodes"

step "draining node2"
t0=$(date +%s%N)
lab_ctl 2 drain --timeout 30
lab_wait 100 bash -c "! ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -q 10.99.0.12" ||
  echo "node2 still in the router's route"
drain_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "node2 left the router's route $drain_ms ms after the drain request:"
summary+=("drain: node2 left the router's route $drain_ms ms after 'lbctl drain' (BIRD: up to 5 s if the node's LSA changed in the last 5 s)")
ip -n "$(lab_ns r)" route show "$LAB_VIP/32" | sed 's/^/  /'
echo "\$ lbctl drain --wait   (node2's connections run down: closed ones linger 10 s)"
lab_ctl 2 drain --timeout 30 --wait
step "traffic with node2 drained"
traffic 120 "node2 drained"

step "undraining node2"
lab_ctl 2 undrain
lab_wait 150 bash -c "ip -n $(lab_ns r) route show $LAB_VIP/32 | grep -q 10.99.0.12" ||
  echo "node2 not back in the route"
ip -n "$(lab_ns r)" route show "$LAB_VIP/32" | sed 's/^/  /'
traffic 60 "undrained"

step "node status and stats (node1)"
lab_ctl 1 status
lab_ctl 1 stats -c

step "summary"
echo "router $router, $mode mode, 3 nodes, 4 backends, VIP $LAB_VIP:80 (HTTP health checks)"
printf '  %s\n' "${summary[@]}"
echo "demo ran in $(( $(date +%s) - start )) s"
if [ "$keep" = 1 ]; then
  echo
  echo "The lab stays up. Try:"
  echo "  $LBCTL --target unix:$LAB_WORK/n1/api.sock vip list"
  echo "  ip netns exec $(lab_ns c) curl http://$LAB_VIP/"
  echo "  ip -n $(lab_ns r) route show $LAB_VIP/32"
  echo "Ctrl-C tears it down."
  while true; do sleep 3600; done
fi
