#!/usr/bin/env bash
# End-to-end forwarding rate through veth: a real lbnode (DPDK net_af_packet or net_af_xdp on a
# veth, DR mode) against the plain kernel forwarding the same traffic between the same namespaces.
#
# Topology (both namespaces made here, removed on exit): one veth pair between a client/backend
# namespace G and the node N, the node "on a stick" as a DR load balancer is. G sends 64-byte UDP
# frames to the VIP with N's MAC as destination (dpdk-testpmd txonly on net_af_packet on G's
# veth, --txonly-multi-flow). N forwards them back to the backend address, which G's kernel holds:
#   lbnode  N's veth belongs to lbnode (the kernel keeps off it, as in tests/netns): DR, one
#           worker on CPU 1; the VIP's only backend is G's address.
#   kernel  the same veth, same MAC, as a plain Linux router: ip_forward=1, a /32 route for the
#           VIP via the backend, no redirects; RPS moves N's receive work (so the forwarding) to
#           the CPU lbnode's worker had.
# G counts the frames to the VIP that come back (nftables ingress counter on its veth, then
# drop). Printed per path: G's sent and delivered rate over a fixed window after a warm-up, and
# the forwarding CPU's busy share with its busy time per delivered packet (an upper bound on the
# forwarding cost: lbnode's worker also polls between bursts, and both include the kernel's own
# veth transmit and G's receive). The generator runs on CPU 0 and is the first limit on a 2-CPU
# machine: compare delivered against sent.
#
# Usage: bench/e2e_veth.sh --lbnode PATH [--pmd af_packet|af_xdp] [--seconds N] [--warmup N]
#                          [--rounds N] [--only lbnode|kernel] [--tsv FILE]
#   --rounds N   alternate the two paths N times (default 2): the machine's noise shows
#   --tsv FILE   also append a line per measurement to FILE: path, pmd, sent Mpps, delivered
#                Mpps, forwarding CPU busy %, its busy ns per delivered packet, notes
# Needs root, dpdk-testpmd (Debian's dpdk-dev) and nft. Traffic stays inside the namespaces.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LBNODE="" PMD=af_packet SECONDS_RUN=5 WARMUP=2 ROUNDS=2 ONLY="" TSV=""
usage() { sed -n '20,25p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --lbnode) LBNODE=$2; shift ;;
    --pmd) PMD=$2; shift ;;
    --seconds) SECONDS_RUN=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --tsv) TSV=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "e2e_veth.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ -n "$LBNODE" ] && [ -x "$LBNODE" ] || { echo "e2e_veth.sh: --lbnode PATH (an executable)" >&2; exit 2; }
case $PMD in af_packet | af_xdp) ;; *) echo "e2e_veth.sh: --pmd af_packet or af_xdp" >&2; exit 2 ;; esac
case $ONLY in "" | lbnode | kernel) ;; *) echo "e2e_veth.sh: --only lbnode or kernel" >&2; exit 2 ;; esac
[[ $SECONDS_RUN =~ ^[1-9][0-9]*$ && $WARMUP =~ ^[0-9]+$ && $ROUNDS =~ ^[1-9][0-9]?$ ]] ||
  { echo "e2e_veth.sh: --seconds and --warmup take whole seconds, --rounds 1..99" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "e2e_veth.sh: run as root" >&2; exit 1; }
TESTPMD=$(command -v dpdk-testpmd) || { echo "e2e_veth.sh: dpdk-testpmd missing (apt-get install dpdk-dev)" >&2; exit 1; }
LBNODE=$(realpath "$LBNODE")
source "$ROOT/tests/netns/lab_lib.sh"

log() { echo "[e2e_veth] $*" >&2; }
tag="lbe$$"
ns_g="${tag}g" ns_n="${tag}n"
work=$(mktemp -d /tmp/lbe2e.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf /var/run/dpdk/"${tag}"* 2>/dev/null || true
  for n in "$ns_g" "$ns_n"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop <pid>: SIGTERM, up to 10 s, then SIGKILL; forgets it.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}

VIP=10.79.100.1 PORT=53 NODE_IP=10.79.0.10 BE_IP=10.79.0.3 GEN_IP=10.79.0.2
NCPU=$(nproc)
WORKER_CPU=$((NCPU > 1 ? 1 : 0))

for n in "$ns_g" "$ns_n"; do
  ip netns add "$n"
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip -n "$n" link set lo up
done
ip -n "$ns_g" link add g0 type veth peer name n0 netns "$ns_n"
# G's kernel holds the backend's address on g0 (answers ARP and ping), counts the frames to the
# VIP that come back to it, and drops them; testpmd's own frames leave g0 without passing there.
ip -n "$ns_g" addr add "$BE_IP/24" dev g0
ip -n "$ns_g" link set g0 up
ip netns exec "$ns_g" nft -f - <<NFT
table netdev e2e {
  counter delivered {}
  chain ingress {
    type filter hook ingress device g0 priority 0; policy accept;
    ip daddr $VIP udp dport $PORT counter name delivered drop
  }
}
NFT
NODE_MAC=$(ip -n "$ns_n" -o link show n0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
[ -n "$NODE_MAC" ] || { log "could not read the node's MAC"; exit 1; }

delivered() {
  ip netns exec "$ns_g" nft list counter netdev e2e delivered |
    sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

# cpu_ticks CPU: "busy total" clock ticks of one CPU from /proc/stat (busy: all but idle, iowait
# and steal).
cpu_ticks() {
  awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i;
    print t - $5 - $6 - $9, t - $9 }' /proc/stat
}

# measure NAME NOTE: start the generator, warm up, count over the window, stop; prints a line.
measure() {
  local name=$1 note=$2 gen_pid s0 s1 d0 d1 t0 t1 b0 b1 c0 c1 sent_mpps del_mpps busy ns
  # The generator on CPU 0 (lbnode's worker, and the kernel's RPS, on CPU $WORKER_CPU).
  ip netns exec "$ns_g" "$TESTPMD" --lcores "0@0,1@0" --no-huge -m 256 --no-pci --file-prefix "${tag}gen" \
    --vdev "net_af_packet0,iface=g0,blocksz=4096,framesz=2048,framecnt=4096" \
    --log-level lib.eal:error --no-telemetry -- \
    --forward-mode=txonly --txonly-multi-flow --txpkts=64 --burst=32 \
    --tx-ip="$GEN_IP,$VIP" --tx-udp="1024,$PORT" --eth-peer="0,$NODE_MAC" \
    --no-mlockall --total-num-mbufs=8192 --stats-period=1 >"$work/gen-$name.log" 2>&1 &
  gen_pid=$!
  pids+=("$gen_pid")
  sleep "$WARMUP"
  sleep 1
  kill -0 "$gen_pid" 2>/dev/null || { log "generator exited:"; tail -20 "$work/gen-$name.log" >&2; exit 1; }
  s0=$(ip netns exec "$ns_g" cat /sys/class/net/g0/statistics/tx_packets)
  d0=$(delivered)
  read -r b0 c0 < <(cpu_ticks "$WORKER_CPU")
  t0=$(date +%s.%N)
  sleep "$SECONDS_RUN"
  s1=$(ip netns exec "$ns_g" cat /sys/class/net/g0/statistics/tx_packets)
  d1=$(delivered)
  read -r b1 c1 < <(cpu_ticks "$WORKER_CPU")
  t1=$(date +%s.%N)
  stop "$gen_pid"
  sent_mpps=$(awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.3f", (b-a)/(t1-t0)/1e6}')
  del_mpps=$(awk -v a="$d0" -v b="$d1" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.3f", (b-a)/(t1-t0)/1e6}')
  # CPU $WORKER_CPU's busy share over the window, and its busy time per delivered packet: an upper
  # bound on the forwarding cost (lbnode's worker also polls between bursts).
  busy=$(awk -v a="$b0" -v b="$b1" -v x="$c0" -v y="$c1" 'BEGIN{printf "%.0f", (y > x ? 100*(b-a)/(y-x) : 0)}')
  ns=$(awk -v a="$b0" -v b="$b1" -v x="$c0" -v y="$c1" -v d0="$d0" -v d1="$d1" -v t0="$t0" -v t1="$t1" \
    'BEGIN{ if (d1 > d0 && y > x) printf "%.0f", (b-a)/(y-x)*(t1-t0)*1e9/(d1-d0); else print "-" }')
  printf '%-8s %-10s sent %7s Mpps  delivered %7s Mpps  CPU%s busy %3s%%  %5s ns/pkt  (%s)\n' \
    "$name" "$PMD" "$sent_mpps" "$del_mpps" "$WORKER_CPU" "$busy" "$ns" "$note"
  [ -z "$TSV" ] || printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$PMD" "$sent_mpps" "$del_mpps" \
    "$busy" "$ns" "$note" >>"$TSV"
  RESULT_DELIVERED=$del_mpps
}

run_lbnode() {
  local vdev lb_pid
  if [ "$PMD" = af_xdp ]; then
    vdev="net_af_xdp0,iface=n0"
  else
    vdev="net_af_packet0,iface=n0"
  fi
  lab_take_uplink "$ns_n" n0
  cat >"$work/node.textproto" <<CONF
state_dir: "$work/state"
api { unix_socket: "$work/api.sock" }
dataplane {
  eal_args: ["-l", "0,$WORKER_CPU", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", "${tag}lb",
             "--vdev", "$vdev", "--vdev", "net_tap0,iface=lb0",
             "--log-level", "lib.eal:error", "--no-telemetry"]
  uplink: "net_${PMD}0"
  exception: "net_tap0"
  conn_table_size: 1048576
}
interface { name: "lb0" addresses: "$NODE_IP/24" mtu: 1500 }
node { tunnel_source_ipv4: "$NODE_IP" }
services {
  version: 1
  vips {
    address: "$VIP" port: $PORT protocol: PROTOCOL_UDP mode: FORWARDING_MODE_DR
    backends { address: "$BE_IP" }
  }
}
CONF
  "$LBNODE" --config "$work/node.textproto" --check >/dev/null 2>&1 ||
    { log "lbnode rejected its config"; exit 1; }
  ip netns exec "$ns_n" "$LBNODE" --config "$work/node.textproto" >"$work/lbnode.log" 2>&1 &
  lb_pid=$!
  pids+=("$lb_pid")
  for _ in $(seq 1 150); do
    grep -q "exception interface lb0 up" "$work/lbnode.log" && break
    kill -0 "$lb_pid" 2>/dev/null || { log "lbnode exited:"; tail -20 "$work/lbnode.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "exception interface lb0 up" "$work/lbnode.log" ||
    { log "lbnode did not come up:"; tail -20 "$work/lbnode.log" >&2; exit 1; }
  # The backend's MAC: the node's kernel resolves it through lbnode's exception path.
  ip netns exec "$ns_n" ping -c 2 -i 0.2 -W 2 "$BE_IP" >/dev/null ||
    { log "the node cannot reach the backend through lbnode:"; tail -20 "$work/lbnode.log" >&2; exit 1; }
  sleep 0.5
  measure lbnode "DR, 1 worker on CPU $WORKER_CPU, generator on CPU 0"
  stop "$lb_pid"
  LB_COUNTERS=$(grep "counters" "$work/lbnode.log" | tail -1 || true)
  ip netns exec "$ns_n" nft delete table netdev lbuplink
}

run_kernel() {
  ip netns exec "$ns_n" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
    net.ipv4.conf.n0.send_redirects=0 net.ipv4.conf.n0.arp_ignore=0 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.n0.rp_filter=0
  ip -n "$ns_n" link set n0 up
  ip -n "$ns_n" addr add "$NODE_IP/24" dev n0
  ip -n "$ns_n" route add "$VIP/32" via "$BE_IP"
  ip netns exec "$ns_n" ping -c 2 -i 0.2 -W 2 "$BE_IP" >/dev/null || { log "kernel path: backend unreachable"; exit 1; }
  # RPS: N's receive processing (and so the forwarding) on the CPU lbnode's worker had.
  ip netns exec "$ns_n" sh -c "printf '%x' $((1 << WORKER_CPU)) > /sys/class/net/n0/queues/rx-0/rps_cpus"
  measure kernel "Linux ip_forward, RPS on CPU $WORKER_CPU, generator on CPU 0"
  # Back as lbnode needs it: with RPS left on, the veth's receive work (its AF_PACKET copy too)
  # would queue behind lbnode's busy worker on the same CPU.
  ip netns exec "$ns_n" sh -c "echo 0 > /sys/class/net/n0/queues/rx-0/rps_cpus"
  ip -n "$ns_n" route del "$VIP/32" via "$BE_IP"
  ip -n "$ns_n" addr flush dev n0
}

LB_COUNTERS=""
for round in $(seq 1 "$ROUNDS"); do
  LB="" KERN=""
  if [ "$ONLY" != kernel ]; then run_lbnode; LB=$RESULT_DELIVERED; fi
  if [ "$ONLY" != lbnode ]; then run_kernel; KERN=$RESULT_DELIVERED; fi
  if [ -z "$ONLY" ]; then
    awk -v a="$LB" -v b="$KERN" -v r="$round" \
      'BEGIN{ if (b > 0) printf "round %d: lbnode / kernel forwarding, delivered: %.2f\n", r, a/b }'
  fi
done
[ -z "$LB_COUNTERS" ] || log "lbnode's last counters: ${LB_COUNTERS#*counters }"
