#!/usr/bin/env bash
# Packet-rate benchmark of lbnode: builds what it needs (Release, tuned for this machine's CPU with
# -march=native unless --generic; its own build directory), runs
# the in-process pipeline benchmark and port-level measurements of a real lbnode against
# dpdk-testpmd io forwarding on the same replay port, and prints one table.
#
# Port level: the uplink is a DPDK net_pcap port replaying a pcap of N distinct 64-byte TCP flows
# endlessly (infinite_rx=1); with no tx_pcap/tx_iface, net_pcap gives each RX queue a TX queue
# that frees what it is sent, so lbnode (and testpmd, with --port-topology=loop) receive and
# transmit on the one port, and no kernel, NIC or hugepage is involved. Rates are taken over a
# fixed window after a warm-up: from lbnode's periodic counter lines (millisecond timestamps,
# stats_interval_s: 1) and from testpmd's per-second Rx-pps.
#
# Usage: bench/run_all.sh [--quick] [--scenario NAME]... [--build-dir DIR] [--no-build] [--keep]
#                         [--generic]
#   scenarios (default: all, in this order): pipeline port modes ipv6 flows workers e2e
#   (e2e: bench/e2e_veth.sh, lbnode DR on a veth via net_af_packet and net_af_xdp against the
#   kernel forwarding the same traffic)
#   --quick      shorter warm-up, window and pipeline run (about 1.5 minutes in all)
#   --keep       keep the temporary directory (pcaps, configs, logs) and print its path
#   --generic    build for baseline x86-64 (as deploy/test.sh does) instead of -march=native,
#                in build-bench-generic/
# Environment: LB_BENCH_NO_INSTALL=1 never installs dpdk-dev (testpmd) when it is missing.
# Needs root (DPDK runtime directory, like the netns tests) and deploy/install-deps.sh's packages.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3  # has scapy (python3-scapy); another python3 on PATH may not
ALL_SCENARIOS=(pipeline port modes ipv6 flows workers e2e)
BUILD=""
QUICK=0 NO_BUILD=0 KEEP=0 NATIVE=ON
SCENARIOS=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --scenario) [ $# -ge 2 ] || { usage >&2; exit 2; }
      IFS=, read -r -a more <<<"$2"; SCENARIOS+=("${more[@]}"); shift ;;
    --scenario=*) IFS=, read -r -a more <<<"${1#*=}"; SCENARIOS+=("${more[@]}") ;;
    --build-dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; BUILD=$(realpath -m "$2"); shift ;;
    --no-build) NO_BUILD=1 ;;
    --keep) KEEP=1 ;;
    --generic) NATIVE=OFF ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=("${ALL_SCENARIOS[@]}")
if [ -z "$BUILD" ]; then
  if [ "$NATIVE" = ON ]; then BUILD="$ROOT/build-bench"; else BUILD="$ROOT/build-bench-generic"; fi
fi
for s in "${SCENARIOS[@]}"; do
  [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] ||
    { echo "run_all.sh: unknown scenario $s (${ALL_SCENARIOS[*]})" >&2; exit 2; }
done
wanted() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }

if [ "$QUICK" = 1 ]; then
  WARMUP=1 WINDOW=2 PIPE_PACKETS=2000000
else
  WARMUP=2 WINDOW=5 PIPE_PACKETS=5000000
fi
FLOWS=1024        # 2^10 distinct flows in the default pcap
BACKENDS=100

[ "$(id -u)" -eq 0 ] || { echo "run_all.sh: run as root (DPDK)" >&2; exit 1; }
[ -x "$PY" ] && "$PY" -c 'import scapy' 2>/dev/null ||
  { echo "run_all.sh: $PY with scapy is needed (deploy/install-deps.sh)" >&2; exit 1; }

log() { echo "[run_all] $*" >&2; }

# --- processes, temporary files, DPDK runtime directories: all removed on exit -------------------
WORK=$(mktemp -d /tmp/lbbench.XXXXXX)
TAG="lbb$$"
RUN_SEQ=0
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf /var/run/dpdk/"${TAG}"_* 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# Stops process $1 (SIGTERM, or $2), waits up to 10 s, then SIGKILL; forgets it.
stop_pid() {
  local pid=$1 sig=${2:-TERM}
  kill -"$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIG$sig: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

# --- build ----------------------------------------------------------------------------------------
# The commit and whether tracked files differ from it: taken before the build and again at the
# end, since a shared work tree may change under a running benchmark.
git_state() {
  local rev
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) || { echo "?"; return; }
  [ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] || rev="$rev+dirty"
  echo "$rev"
}
GIT_AT_BUILD=$(git_state)
LBNODE="$BUILD/control/lbnode"
PIPELINE="$BUILD/bench/pipeline_bench"
if [ "$NO_BUILD" = 0 ]; then
  log "building lbnode and pipeline_bench (Release, LB_NATIVE=$NATIVE) in $BUILD"
  # Configured every time: a directory first built with the other --generic setting is switched.
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLB_NATIVE="$NATIVE" \
    >"$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log" >&2; exit 1; }
  cmake --build "$BUILD" --target lbnode pipeline_bench >"$WORK/build.log" 2>&1 ||
    { tail -50 "$WORK/build.log" >&2; exit 1; }
fi
for b in "$LBNODE" "$PIPELINE"; do [ -x "$b" ] || { echo "run_all.sh: missing $b" >&2; exit 1; }; done

TESTPMD=$(command -v dpdk-testpmd || true)
if [ -z "$TESTPMD" ] && [ "${LB_BENCH_NO_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null &&
  { wanted port || wanted modes || wanted ipv6 || wanted flows || wanted workers; }; then
  # Debian ships testpmd in dpdk-dev (not in dpdk, which install-deps.sh installs).
  log "dpdk-testpmd missing: installing dpdk-dev"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpdk-dev \
    >"$WORK/apt.log" 2>&1 || log "apt-get install dpdk-dev failed (see no testpmd figures)"
  TESTPMD=$(command -v dpdk-testpmd || true)
fi
TESTPMD_NOTE="dpdk-testpmd not installed (apt-get install dpdk-dev)"

# --- CPUs: lcore 0 (main) on the first allowed CPU, workers on the next ones ---------------------
read -r -a CPUS <<<"$("$PY" -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
NCPU=${#CPUS[@]}
# lcores_arg WORKERS: the EAL --lcores map: lcore i on CPU i mod NCPU, so with fewer CPUs than
# lcores the (mostly sleeping) main lcore 0 shares the first CPU with the last worker, and no two
# workers share a CPU while there are CPUs enough for them. Sets LCORE_NOTE.
lcores_arg() {
  local workers=$1 map="0@${CPUS[0]}" i
  LCORE_NOTE=""
  for i in $(seq 1 "$workers"); do map="$map,$i@${CPUS[$((i % NCPU))]}"; done
  if [ $((workers + 1)) -gt "$NCPU" ]; then
    LCORE_NOTE="$((workers + 1)) lcores on $NCPU CPUs: main shares a CPU with a worker"
  fi
  echo "$map"
}

# --- traffic --------------------------------------------------------------------------------------
# pcap FAMILY FLOWS [FIRST]: path of a pcap of FLOWS flows (flow numbers FIRST..), made once.
pcap() {
  local family=$1 flows=$2 first=${3:-0} f
  f="$WORK/v${family}_${flows}_${first}.pcap"
  if [ ! -f "$f" ]; then
    "$PY" "$ROOT/bench/gen_traffic.py" --family "$family" --flows "$flows" --first "$first" \
      --out "$f" >"$WORK/gen.log" 2>&1 || { cat "$WORK/gen.log" >&2; exit 1; }
  fi
  echo "$f"
}

# pcap_flows PCAP...: total flows in the pcaps (from their names, v<family>_<flows>_<first>).
pcap_flows() {
  local total=0 p n
  for p in "$@"; do n=$(basename "$p"); n=${n#*_}; total=$((total + ${n%%_*})); done
  echo "$total"
}

# vdev PCAP...: the uplink vdev, one RX queue per pcap (net_pcap0, TX: drop queues).
vdev() {
  local v="net_pcap0" p
  for p in "$@"; do v="$v,rx_pcap=$p"; done
  echo "$v,infinite_rx=1"
}

eal_common() {  # PREFIX MEM_MB
  printf '"--no-huge", "-m", "%s", "--no-pci", "--file-prefix", "%s", "--log-level", "lib.eal:error", "--no-telemetry"' "$2" "$1"
}

# mem_mb MBUFS WORKERS: DPDK memory: the mbufs (~2.3 KB each), 72 MiB of connection table per
# worker (2^20 entries), and room for the rest.
mem_mb() { echo $(( (($1 * 2304) >> 20) + $2 * 80 + 256 )); }

# --- lbnode ---------------------------------------------------------------------------------------
# lbnode_config MODE FAMILY WORKERS MBUFS VDEV PREFIX MEM STATE_DIR > file
lbnode_config() {
  local mode=$1 family=$2 workers=$3 mbufs=$4 vdev=$5 prefix=$6 mem=$7 state=$8 lcores i addr vip
  lcores=$(lcores_arg "$workers")
  cat <<EOF
dataplane {
  eal_args: ["--lcores", "$lcores", $(eal_common "$prefix" "$mem"), "--vdev", "$vdev"]
  uplink: "net_pcap0"
  exception: ""
  workers: $workers
  mbufs: $mbufs
  busy_poll: true
}
stats_interval_s: 1
state_dir: "$state"
node {
  tunnel_source_ipv4: "192.0.2.10"
  tunnel_source_ipv6: "2001:db8::10"
EOF
  if [ "$mode" = NAT ]; then
    # Replies are not part of this benchmark: the gateway MAC only has to be valid.
    printf '  nat_addresses: "%s"\n' 192.0.2.20 2001:db8::20
    printf '  gateway_mac_ipv4: "02:00:00:00:aa:01"\n  gateway_mac_ipv6: "02:00:00:00:aa:01"\n'
  fi
  for i in $(seq 1 "$BACKENDS"); do
    if [ "$family" = 4 ]; then addr="10.1.$((i / 250)).$((i % 250 + 1))"; else addr=$(printf '2001:db8:1::%x' "$i"); fi
    printf '  static_neighbors { address: "%s" mac: "02:00:00:01:%02x:%02x" }\n' "$addr" $((i >> 8)) $((i & 255))
  done
  if [ "$family" = 4 ]; then vip="203.0.113.1"; else vip="2001:db8:100::1"; fi
  cat <<EOF
}
services {
  version: 1
  vips {
    address: "$vip" port: 80 protocol: PROTOCOL_TCP mode: FORWARDING_MODE_$mode
EOF
  for i in $(seq 1 "$BACKENDS"); do
    if [ "$family" = 4 ]; then addr="10.1.$((i / 250)).$((i % 250 + 1))"; else addr=$(printf '2001:db8:1::%x' "$i"); fi
    printf '    backends { address: "%s" }\n' "$addr"
  done
  echo "  }"
  echo "}"
}

# Results of the last run_lbnode / run_testpmd: R_MPPS R_MIN R_MAX R_NOTE (R_MPPS empty = failed).
R_MPPS="" R_MIN="" R_MAX="" R_NOTE=""

# run_lbnode MODE FAMILY WORKERS PCAP...
run_lbnode() {
  local mode=$1 family=$2 workers=$3; shift 3
  local n=$((RUN_SEQ += 1)) prefix="${TAG}_$RUN_SEQ" mbufs mem cfg logf pid deadline cnt fwd
  # net_pcap's infinite_rx keeps every frame of the pcap in an mbuf of the port's pool.
  mbufs=$(($(pcap_flows "$@") + 16384))
  mem=$(mem_mb "$mbufs" "$workers")
  cfg="$WORK/lbnode_$n.textproto" logf="$WORK/lbnode_$n.log"
  # A state directory of its own: lbnode restores saved services over the config file's, and the
  # default /var/lib/lbnode would carry one run's VIPs into the next.
  mkdir -p "$WORK/state_$n"
  lbnode_config "$mode" "$family" "$workers" "$mbufs" "$(vdev "$@")" "$prefix" "$mem" \
    "$WORK/state_$n" >"$cfg"
  R_MPPS="" R_MIN="" R_MAX=""
  lcores_arg "$workers" >/dev/null; R_NOTE="$LCORE_NOTE"
  "$LBNODE" --config "$cfg" --check >"$logf" 2>&1 || { R_NOTE="config rejected: $(tail -1 "$logf")"; return; }
  "$LBNODE" --config "$cfg" >"$logf" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  # Counter lines come every second from "dataplane up" on: wait for WARMUP + WINDOW + 1 of
  # them (bounded). grep, not python: the poll itself must not take CPU from the workers.
  deadline=$((SECONDS + WARMUP + WINDOW + 30))
  while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
    cnt=$(grep -c ' counters ' "$logf" 2>/dev/null || true)
    [ "${cnt:-0}" -ge $((WARMUP + WINDOW + 1)) ] && break
    sleep 0.5
  done
  stop_pid "$pid" TERM
  rm -rf "/var/run/dpdk/$prefix"
  if ! grep -q " dataplane up:" "$logf"; then
    R_NOTE="lbnode did not start: $(grep -m1 -E 'ERROR|EAL: Error|failed' "$logf" | cut -c1-120)"
    return
  fi
  read -r R_MPPS R_MIN R_MAX fwd <<<"$("$PY" - "$logf" "$WARMUP" "$WINDOW" <<'EOF'
import sys, datetime, re
def ts(l): return datetime.datetime.strptime(l[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()
warm, window = float(sys.argv[2]), float(sys.argv[3])
up = None; samples = []
for l in open(sys.argv[1], errors="replace"):
    if " dataplane up:" in l: up = ts(l)
    elif " stopping" in l: break   # the last line comes after the workers stopped
    elif " counters " in l and up is not None:
        kv = dict(re.findall(r"(\w+)=(\d+)", l))
        samples.append((ts(l), {k: int(v) for k, v in kv.items()}))
inwin = [s for s in samples if s[0] - up >= warm]
if not inwin: print("- - - -"); sys.exit()
t0 = inwin[0][0]
inwin = [s for s in inwin if s[0] - t0 <= window + 0.5]
if len(inwin) < 2: print("- - - -"); sys.exit()
rates = [(b[1]["rx_packets"] - a[1]["rx_packets"]) / (b[0] - a[0]) / 1e6 for a, b in zip(inwin, inwin[1:])]
a, b = inwin[0][1], inwin[-1][1]
rx = b["rx_packets"] - a["rx_packets"]
mpps = rx / (inwin[-1][0] - t0) / 1e6
fwd = 100.0 * (b.get("to_backend", 0) - a.get("to_backend", 0)) / rx if rx else 0
print("%.2f %.2f %.2f %.1f" % (mpps, min(rates), max(rates), fwd))
EOF
)"
  [ "$R_MPPS" = "-" ] && { R_MPPS=""; R_NOTE="no counter lines in the window"; return; }
  if [ "${fwd%.*}" -lt 100 ] 2>/dev/null && [ "$fwd" != "100.0" ]; then
    local drops
    drops=$(grep " counters " "$logf" | tail -1 | grep -oE '(drop|parse)_[a-z_]+=[0-9]+' | tr '\n' ' ' || true)
    # Where the rest went, when not dropped (e.g. handed to the kernel as not for a VIP).
    [ -n "$drops" ] || drops=$(grep " counters " "$logf" | tail -1 | grep -oE 'to_kernel=[0-9]+' || true)
    R_NOTE="${R_NOTE:+$R_NOTE; }only $fwd% to backends ${drops}"
  fi
}

# --- testpmd --------------------------------------------------------------------------------------
# run_testpmd CORES PCAP...  (io forwarding, port-topology loop: RX and TX on net_pcap0)
run_testpmd() {
  local cores=$1; shift
  local n=$((RUN_SEQ += 1)) prefix="${TAG}_$RUN_SEQ" mbufs logf pid deadline cnt queues=$#
  R_MPPS="" R_MIN="" R_MAX="" R_NOTE=""
  [ -n "$TESTPMD" ] || { R_NOTE="$TESTPMD_NOTE"; return; }
  mbufs=$(($(pcap_flows "$@") + 16384))
  logf="$WORK/testpmd_$n.log"
  lcores_arg "$cores" >/dev/null; R_NOTE="$LCORE_NOTE"
  "$TESTPMD" --lcores "$(lcores_arg "$cores")" --no-huge -m "$(mem_mb "$mbufs" 0)" --no-pci \
    --file-prefix "$prefix" --log-level lib.eal:error --no-telemetry --vdev "$(vdev "$@")" -- \
    --total-num-mbufs="$mbufs" --stats-period 1 --forward-mode=io --port-topology=loop \
    --nb-cores="$cores" --rxq="$queues" --txq="$queues" >"$logf" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  # One Rx-pps line per second: skip the first (start-up) and WARMUP more, then WINDOW of them.
  deadline=$((SECONDS + WARMUP + WINDOW + 30))
  while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
    cnt=$(grep -c 'Rx-pps:' "$logf" 2>/dev/null || true)
    [ "${cnt:-0}" -ge $((WARMUP + WINDOW + 1)) ] && break
    sleep 0.5
  done
  stop_pid "$pid" INT
  rm -rf "/var/run/dpdk/$prefix"
  read -r R_MPPS R_MIN R_MAX <<<"$(grep -o 'Rx-pps: *[0-9]*' "$logf" | awk -v s=$((WARMUP + 1)) -v w="$WINDOW" '
    { n++; if (n > s && n <= s + w) { v = $2 / 1e6; sum += v; k++;
        if (min == "" || v < min) min = v; if (v > max) max = v } }
    END { if (k) printf "%.2f %.2f %.2f\n", sum / k, min, max; else print "" }')"
  if [ -z "$R_MPPS" ]; then
    R_NOTE="testpmd gave no rate: $(grep -m1 -iE 'error|fail|invalid' "$logf" | cut -c1-100)"
  fi
}

# --- the table ------------------------------------------------------------------------------------
ROWS=()
row() { ROWS+=("$(printf '%s\t' "$@")"); }
ns_per() { "$PY" -c "import sys; m=float(sys.argv[1]); print('%.1f' % (1e3*int(sys.argv[2])/m) if m else '-')" "$1" "${2:-1}"; }
ratio() { "$PY" -c "import sys; print('%.2f' % (float(sys.argv[1])/float(sys.argv[2])))" "$1" "$2" 2>/dev/null || echo "-"; }
spread() { [ -n "$R_MPPS" ] && echo "$R_MIN-$R_MAX" || echo "-"; }

# One comparison row: label, lbnode figures (LB_*), testpmd figures (TP_*).
port_row() {  # LABEL WORKERS
  local label=$1 workers=$2 tp="-" r="-" extra="-" note
  if [ -n "$TP_MPPS" ]; then
    tp=$TP_MPPS
    if [ -n "$LB_MPPS" ]; then
      r=$(ratio "$LB_MPPS" "$TP_MPPS")
      # lbnode's per-packet cost above pure I/O, per worker core.
      extra=$("$PY" -c "import sys; l,t,w=map(float,sys.argv[1:]); print('%+.1f' % (1e3*w/l-1e3*w/t))" "$LB_MPPS" "$TP_MPPS" "$workers")
    fi
  fi
  note=$LB_NOTE
  if [ -n "$TP_NOTE" ] && [ "$TP_NOTE" != "$LB_NOTE" ]; then note="${note:+$note; }testpmd: $TP_NOTE"; fi
  [ -n "${TP_FROM:-}" ] && [ -n "$TP_MPPS" ] && note="${note:+$note; }testpmd figure: $TP_FROM"
  row "port" "$label" "${LB_MPPS:--}" "$( [ -n "$LB_MPPS" ] && ns_per "$LB_MPPS" "$workers" || echo -)" \
    "$LB_SPREAD" "$tp" "$r" "$extra" "${note:--}"
}
measure_pair() {  # LABEL MODE FAMILY WORKERS PCAP... : testpmd then lbnode, same port arguments
  local label=$1 mode=$2 family=$3 workers=$4; shift 4
  log "testpmd io: $label"
  run_testpmd "$workers" "$@"
  TP_MPPS=$R_MPPS TP_NOTE=$R_NOTE TP_FROM=""
  log "lbnode: $label"
  run_lbnode "$mode" "$family" "$workers" "$@"
  LB_MPPS=$R_MPPS LB_NOTE=$R_NOTE LB_SPREAD=$(spread)
  port_row "$label" "$workers"
}
measure_lb() {  # LABEL MODE FAMILY WORKERS TP_FROM PCAP... : lbnode only, vs the last testpmd figure
  local label=$1 mode=$2 family=$3 workers=$4; shift 4
  TP_FROM=$1
  shift
  log "lbnode: $label"
  run_lbnode "$mode" "$family" "$workers" "$@"
  LB_MPPS=$R_MPPS LB_NOTE=$R_NOTE LB_SPREAD=$(spread)
  port_row "$label" "$workers"
}

# --- scenarios ------------------------------------------------------------------------------------
START=$SECONDS
if wanted pipeline; then
  log "pipeline_bench ($PIPE_PACKETS packets per scenario)"
  # The target rows and the flow counts of the port scenarios (the full table: bench/README.md).
  "$PIPELINE" "$PIPE_PACKETS" "targets|flows: established, 2^10 |flows: established, 2^16 " \
    >"$WORK/pipeline.out" 2>"$WORK/pipeline.err" </dev/null &
  pid=$!
  PIDS+=("$pid")
  deadline=$((SECONDS + 600))
  while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    stop_pid "$pid" TERM
    rc=124
  else
    rc=0
    wait "$pid" || rc=$?
    forget_pid "$pid"
  fi
  rm -rf "/var/run/dpdk/lbbench$pid"  # pipeline_bench's EAL --file-prefix is lbbench<its pid>
  out=$(cat "$WORK/pipeline.out")
  [ "$rc" = 0 ] || { log "pipeline_bench exit status $rc"; tail -5 "$WORK/pipeline.err" >&2; out=""; }
  while IFS= read -r l; do
    if [[ "$l" =~ ^(.*[^ ])\ +([0-9.]+)\ +([0-9.]+)\ +2\^[0-9]+ ]]; then
      note="in-process, no I/O"
      [[ "${BASH_REMATCH[1]}" == *"refill alone"* ]] && note="the benchmark's share of each row"
      row "pipeline" "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}" "${BASH_REMATCH[2]}" "-" "-" "-" "-" "$note"
    elif [[ "$l" == "connection table:"* ]]; then
      PIPE_FOOT=$l
    fi
  done <<<"$out"
  [ -n "$out" ] || row "pipeline" "pipeline_bench failed" "-" "-" "-" "-" "-" "-" "see stderr"
fi

P4=""
if wanted port || wanted modes; then P4=$(pcap 4 $FLOWS); fi
if wanted port; then
  measure_pair "TUN  IPv4 2^10 flows, 1 worker" TUN 4 1 "$P4"
fi
if wanted modes; then
  if ! wanted port; then log "testpmd io: IPv4 2^10 flows"; run_testpmd 1 "$P4"; TP_MPPS=$R_MPPS TP_NOTE=$R_NOTE; fi
  measure_lb "DR   IPv4 2^10 flows, 1 worker" DR 4 1 "the IPv4 2^10 run" "$P4"
  measure_lb "GUE  IPv4 2^10 flows, 1 worker" GUE 4 1 "the IPv4 2^10 run" "$P4"
  measure_lb "NAT  IPv4 2^10 flows, 1 worker" NAT 4 1 "the IPv4 2^10 run" "$P4"
fi
if wanted ipv6; then
  P6=$(pcap 6 $FLOWS)
  measure_pair "TUN  IPv6 2^10 flows, 1 worker" TUN 6 1 "$P6"
  measure_lb "NAT  IPv6 2^10 flows, 1 worker" NAT 6 1 "the IPv6 run" "$P6"
fi
if wanted flows; then
  P16=$(pcap 4 65536)
  measure_pair "TUN  IPv4 2^16 flows, 1 worker" TUN 4 1 "$P16"
fi
if wanted workers; then
  # net_pcap has no RSS: one RX queue per rx_pcap file; the 2^10 flows split into two halves.
  P1=$(pcap 4 $FLOWS)
  PA=$(pcap 4 $((FLOWS / 2)) 0) PB=$(pcap 4 $((FLOWS / 2)) $((FLOWS / 2)))
  measure_pair "TUN  IPv4 2^10 flows, 1 worker (scaling base)" TUN 4 1 "$P1"
  TP1=$TP_MPPS LB1=$LB_MPPS
  measure_pair "TUN  IPv4 2^10 flows, 2 workers (2 queues)" TUN 4 2 "$PA" "$PB"
  TP2=$TP_MPPS LB2=$LB_MPPS
  lcores_arg 2 >/dev/null
  scal_note="${LCORE_NOTE:-one CPU per lcore}"
  if [ "$NCPU" -lt 2 ]; then
    row "scaling" "2 workers vs 1" "-" "-" "-" "-" "-" "-" "not feasible: $NCPU CPU"
  else
    lbr="-" tpr="-"
    [ -n "$LB1" ] && [ -n "$LB2" ] && lbr="$(ratio "$LB2" "$LB1")x"
    [ -n "$TP1" ] && [ -n "$TP2" ] && tpr="$(ratio "$TP2" "$TP1")x"
    row "scaling" "2 workers / 1 worker (lbnode; testpmd 2 cores / 1)" "$lbr" "-" "-" "$tpr" "-" "-" \
      "$scal_note; the vCPUs are not independent (see README): compare with testpmd's ratio"
  fi
fi

if wanted e2e; then
  for pmd in af_packet af_xdp; do
    log "e2e through $pmd on veth (bench/e2e_veth.sh)"
    tsv="$WORK/e2e_$pmd.tsv"
    : >"$tsv"
    if ! bash "$ROOT/bench/e2e_veth.sh" --lbnode "$LBNODE" --pmd "$pmd" --seconds "$WINDOW" \
      --warmup "$WARMUP" --rounds "$([ "$QUICK" = 1 ] && echo 1 || echo 2)" --tsv "$tsv" \
      >"$WORK/e2e_$pmd.out" 2>&1; then
      tail -5 "$WORK/e2e_$pmd.out" >&2
      row "e2e" "DR via $pmd on veth" "-" "-" "-" "-" "-" "-" "e2e_veth.sh failed (see stderr)"
      continue
    fi
    # path pmd sent delivered busy% ns notes: one row per measurement, lbnode's with its ratio to
    # the kernel measurement that follows it in the same round.
    prev_lb=""
    while IFS=$'\t' read -r path _ sent del busy ns note; do
      if [ "$path" = lbnode ]; then
        prev_lb=$del
        row "e2e" "DR via $pmd on veth: lbnode" "$del" "$ns" "-" "-" "-" "-" \
          "sent $sent Mpps; CPU busy $busy%; ns/pkt = forwarding CPU's busy time per packet"
      else
        r="-"
        [ -n "$prev_lb" ] && r=$(ratio "$prev_lb" "$del")
        row "e2e" "  same traffic, kernel ip_forward" "$del" "$ns" "-" "-" "-" "-" \
          "sent $sent Mpps; CPU busy $busy%; lbnode/kernel delivered $r; generator-bound when delivered ~ sent"
        prev_lb=""
      fi
    done <"$tsv"
  done
fi

# --- print ----------------------------------------------------------------------------------------
load=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo
GIT_AT_END=$(git_state)
echo "lbnode packet rates - $(date -u +%Y-%m-%dT%H:%M:%SZ), git $GIT_AT_BUILD, build LB_NATIVE=$NATIVE, $cpu, $NCPU CPUs (${CPUS[*]}), load $load"
echo "DPDK $(pkg-config --modversion libdpdk 2>/dev/null || echo '?') --no-huge; port runs: net_pcap infinite_rx -> same port's TX drop queue; warm-up ${WARMUP} s, window ${WINDOW} s; ${BACKENDS} backends, 64-byte IPv4 / 78-byte IPv6 TCP frames"
{
  printf 'section\tscenario\tMpps\tns/pkt/core\t1-s min-max\ttestpmd Mpps\tLB/testpmd\tns over testpmd\tnotes\n'
  for r in "${ROWS[@]}"; do printf '%s\n' "${r%$'\t'}"; done
} | "$PY" -c '
import sys
rows = [l.rstrip("\n").split("\t") for l in sys.stdin if l.strip()]
n = max(map(len, rows))
w = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(n)]
for r in rows:
    print("  ".join(c.ljust(w[i]) if i < 2 or i == n - 1 else c.rjust(w[i])
                    for i, c in enumerate(r)).rstrip())
'
[ -n "${PIPE_FOOT:-}" ] && echo "pipeline_bench: $PIPE_FOOT"
echo "total $((SECONDS - START)) s"
if [ "$GIT_AT_END" != "$GIT_AT_BUILD" ] || [[ "$GIT_AT_BUILD" == *+dirty ]]; then
  echo "WARNING: built from $GIT_AT_BUILD, work tree now $GIT_AT_END: if sources changed while" \
    "building, the binaries may match no commit; rerun on a quiet tree"
fi
