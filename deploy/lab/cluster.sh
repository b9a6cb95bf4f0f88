# The cluster in a box (sourced, not run): an upstream router (BIRD or FRR), a client behind it,
# lbnode nodes each with its own BIRD, and backends with real HTTP servers, all in network
# namespaces on one machine. Used by deploy/demo.sh and the cluster tests (tests/cluster/).
#
#   client ns  10.99.1.2 ──── 10.99.1.1  router ns  (OSPF: ECMP over the nodes; BFD)
#                                  │ bridge br0 10.99.0.1/24: the L2 segment
#          ┌───────────────┬───────┴───────┬──────────────────┐
#      node 1 10.99.0.11  node 2 .12   node 3 .13      backends 10.99.0.21, .22, ...
#      (lbnode on veth "uplink" via net_af_packet; lb0 = the kernel's side; BIRD on lb0)
#
# The VIP 10.99.100.1 lives on each backend's lo. In TUN mode the backends run
# deploy/lab/lb_decap.py (this kernel has no ipip) and answer the client directly through the
# router; in DR mode lbnode rewrites only the MAC.
#
# Caller sets before sourcing: LAB_TAG (short unique prefix, e.g. "lbc$$"), LAB_WORK (a
# directory), LBNODE, LBCTL (binaries), LAB_ROOT (the source tree). Then:
#   lab_router bird|frr [bfd=1]; lab_client; lab_backend <j>...; lab_node <i> [bfd=1]...
#   lab_cleanup (trap it on EXIT). Every process started is recorded by PID and stopped by PID.

LAB_PY=/usr/bin/python3
LAB_VIP=10.99.100.1
lab_pids=()
declare -gA lab_node_pid lab_bird_pid lab_http_pid

lab_log() { printf '%s %s\n' "$(date +%T.%3N)" "$*"; }

# lab_wait <tenths of a second> <command...>: polls until the command succeeds.
lab_wait() {
  local tries=$1; shift
  for _ in $(seq 1 "$tries"); do "$@" && return 0; sleep 0.1; done
  return 1
}

lab_forget() {
  local keep=() p
  for p in "${lab_pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  lab_pids=("${keep[@]}")
}

lab_cleanup() {
  local p n
  for p in "${lab_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${lab_pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  lab_pids=()
  for n in $(ip netns list | awk '{print $1}' | grep "^${LAB_TAG}" || true); do
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf /var/run/dpdk/"${LAB_TAG}"n*
}

lab_ns() { echo "${LAB_TAG}$1"; }  # r, c, n1, b1 ...

# lab_router bird|frr [bfd]: the router namespace with the L2 bridge and the router daemon.
lab_router() {
  local kind=$1 bfd=${2:-1} r
  r=$(lab_ns r)
  LAB_ROUTER_KIND=$kind
  ip netns add "$r"
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
    net.ipv6.conf.all.disable_ipv6=1
  ip -n "$r" link set lo up
  ip -n "$r" link add br0 type bridge
  ip -n "$r" addr add 10.99.0.1/24 dev br0
  ip -n "$r" link set br0 up
  # The router's own packets (OSPF, BFD) must carry full checksums: lbnode's AF_PACKET port sees
  # them before any checksum offload would have been done (LAB.md pitfall 2).
  ip netns exec "$r" ethtool -K br0 tx off >/dev/null 2>&1 || true
  mkdir -p "$LAB_WORK/router"
  if [ "$kind" = bird ]; then
    sed -e 's/@ROUTER_ID@/10.99.0.1/' -e 's/@INTERFACE@/br0/' \
      -e "s|@LOG@|\"$LAB_WORK/router/bird.log\"|" \
      "$LAB_ROOT/deploy/bird/router.conf.template" >"$LAB_WORK/router/bird.conf"
    [ "$bfd" = 1 ] || sed -i 's/ bfd yes;//' "$LAB_WORK/router/bird.conf"
    ip netns exec "$r" bird -f -c "$LAB_WORK/router/bird.conf" -s "$LAB_WORK/router/bird.ctl" \
      >"$LAB_WORK/router/bird.out" 2>&1 &
    lab_pids+=($!)
  else
    local d dir="$LAB_WORK/router/frr"
    mkdir -p "$dir"
    for d in zebra bfdd ospfd; do
      sed -e "s/@HOSTNAME@/$r/" -e "s|@LOG_FILE@|$dir/frr.log|" -e 's/@INTERFACE@/br0/' \
        -e 's/@ROUTER_ID@/10.99.0.1/' -e 's|@NETWORK@|10.99.0.0/24|' \
        "$LAB_ROOT/deploy/frr/$d.conf.template" >"$dir/$d.conf"
    done
    [ "$bfd" = 1 ] || sed -i '/ip ospf bfd/d' "$dir/ospfd.conf"
    chown -R frr:frr "$dir"
    # FRR drops root for user frr, who must reach the directory (mktemp makes 0700 ones).
    local p=$LAB_WORK
    while [ "$p" != / ] && [ "$p" != /tmp ]; do chmod o+rx "$p"; p=$(dirname "$p"); done
    chmod o+rx "$LAB_WORK/router"
    for d in zebra bfdd ospfd; do
      local extra=()
      if [ "$d" = bfdd ]; then extra=(--bfdctl "$dir/bfdd.sock"); fi
      ip netns exec "$r" "/usr/lib/frr/$d" --vty_socket "$dir" -z "$dir/zserv.api" \
        -i "$dir/$d.pid" -f "$dir/$d.conf" "${extra[@]}" >"$dir/$d.out" 2>&1 &
      lab_pids+=($!)
      if [ "$d" = zebra ]; then lab_wait 100 test -S "$dir/zserv.api"; fi
    done
  fi
}

# lab_client: the client namespace behind the router.
lab_client() {
  local c r
  c=$(lab_ns c) r=$(lab_ns r)
  ip netns add "$c"
  ip netns exec "$c" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip -n "$r" link add rc type veth peer name c0 netns "$c"
  ip -n "$r" addr add 10.99.1.1/24 dev rc
  ip -n "$r" link set rc up
  ip -n "$c" addr add 10.99.1.2/24 dev c0
  ip -n "$c" link set c0 up
  ip -n "$c" link set lo up
  ip -n "$c" route add default via 10.99.1.1
  # Software checksums: the router forwards them to lbnode's AF_PACKET port as they are.
  ip netns exec "$c" ethtool -K c0 tx off >/dev/null
}

# lab_backend <j> [tun|dr]: backend j (10.99.0.2j) with the VIP on lo and an HTTP server that
# says which backend answered (python's http.server, "backend-bj"). TUN: the decapsulator too.
lab_backend() {
  local j=$1 mode=${2:-tun} b r
  b=$(lab_ns "b$j") r=$(lab_ns r)
  ip netns add "$b"
  ip netns exec "$b" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv6.conf.all.disable_ipv6=1
  ip -n "$r" link add "b$j" type veth peer name b0 netns "$b"
  ip -n "$r" link set "b$j" master br0 up
  ip -n "$b" addr add "10.99.0.2$j/24" dev b0
  ip -n "$b" addr add "$LAB_VIP/32" dev lo
  ip -n "$b" link set lo up
  ip -n "$b" link set b0 up
  ip -n "$b" route add default via 10.99.0.1
  ip netns exec "$b" ethtool -K b0 tx off >/dev/null
  mkdir -p "$LAB_WORK/b$j/www"
  echo "backend-b$j" >"$LAB_WORK/b$j/www/index.html"
  # A large file for long-lived connections.
  head -c 4000000 /dev/zero >"$LAB_WORK/b$j/www/big"
  lab_start_http "$j"
  if [ "$mode" = tun ]; then
    ip netns exec "$b" "$LAB_PY" "$LAB_ROOT/deploy/lab/lb_decap.py" --tun decap0 \
      >"$LAB_WORK/b$j/decap.log" 2>&1 &
    lab_pids+=($!)
    lab_wait 100 grep -q "lb_decap: ready" "$LAB_WORK/b$j/decap.log" ||
      { echo "decapsulator on b$j not ready"; return 1; }
  fi
}

lab_start_http() {
  local j=$1 b
  b=$(lab_ns "b$j")
  ip netns exec "$b" "$LAB_PY" -m http.server 80 --bind 0.0.0.0 --directory "$LAB_WORK/b$j/www" \
    >"$LAB_WORK/b$j/http.log" 2>&1 &
  lab_http_pid[$j]=$!
  lab_pids+=($!)
  lab_wait 100 ip netns exec "$b" ss -Hltn "( sport = :80 )" | grep -q . || true
}

lab_stop_http() {
  local j=$1
  kill "${lab_http_pid[$j]}" 2>/dev/null || true
  wait "${lab_http_pid[$j]}" 2>/dev/null || true
  lab_forget "${lab_http_pid[$j]}"
}

# lab_node <i> [bfd]: node i: namespace, uplink veth on the bridge, lbnode (TAP lb0 10.99.0.1i,
# API on $LAB_WORK/n<i>/api.sock, metrics on 127.0.0.1:9100 inside the namespace), then BIRD
# started from the configuration lbnode renders.
lab_node() {
  local i=$1 bfd=${2:-1} n r dir
  n=$(lab_ns "n$i") r=$(lab_ns r) dir="$LAB_WORK/n$i"
  mkdir -p "$dir"
  ip netns add "$n"
  ip -n "$r" link add "n$i" type veth peer name uplink netns "$n"
  ip -n "$r" link set "n$i" master br0 up
  ip -n "$n" link set lo up
  # The kernel keeps off the uplink: no ARP, no IPv6, and an ingress drop (AF_PACKET sees the
  # frames first). lb0 is the kernel's view of the uplink.
  ip netns exec "$n" sysctl -qw net.ipv4.conf.uplink.arp_ignore=8 net.ipv6.conf.all.disable_ipv6=1
  ip -n "$n" link set uplink up
  ip netns exec "$n" nft add table netdev lbuplink
  ip netns exec "$n" nft add chain netdev lbuplink ingress \
    "{ type filter hook ingress device uplink priority 0; policy drop; }"
  cat >"$dir/node.textproto" <<CONF
# lbnode $i of the namespace lab (deploy/lab/cluster.sh).
dataplane {
  eal_args: ["-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", "${LAB_TAG}n$i",
             "--vdev", "net_af_packet0,iface=uplink", "--vdev", "net_tap0,iface=lb0",
             "--log-level", "lib.eal:error", "--no-telemetry"]
  uplink: "net_af_packet0"
  exception: "net_tap0"
  conn_table_size: 65536
}
interface { name: "lb0" addresses: "10.99.0.1$i/24" mtu: 1500 }
node { tunnel_source_ipv4: "10.99.0.1$i" }
node_name: "node$i"
state_dir: "$dir/state"
api { unix_socket: "$dir/api.sock" }
metrics { listen: "127.0.0.1:9100" }
routing {
  enabled: true
  router_id: "10.99.0.1$i"
  bird_socket: "$dir/bird.ctl"
  bird_config: "$dir/bird.conf"
  bird_log: "$dir/bird.log"
  hello_s: 1
  dead_s: 4
  bfd: $([ "$bfd" = 1 ] && echo true || echo false)
}
CONF
  lab_start_lbnode "$i"
  lab_wait 100 test -f "$dir/bird.conf" || { echo "node$i: lbnode wrote no bird.conf"; return 1; }
  ip netns exec "$n" bird -f -c "$dir/bird.conf" -s "$dir/bird.ctl" >"$dir/bird.out" 2>&1 &
  lab_bird_pid[$i]=$!
  lab_pids+=($!)
}

lab_start_lbnode() {
  local i=$1 n dir
  n=$(lab_ns "n$i") dir="$LAB_WORK/n$i"
  # A killed lbnode leaves its socket file behind: waiting for the file would not wait at all.
  rm -f "$dir/api.sock"
  # shellcheck disable=SC2086  # LAB_LBNODE_ARGS: extra flags, e.g. --fault-injection
  ip netns exec "$n" "$LBNODE" --config "$dir/node.textproto" ${LAB_LBNODE_ARGS:-} \
    >>"$dir/lbnode.log" 2>&1 &
  lab_node_pid[$i]=$!
  lab_pids+=($!)
  lab_wait 150 test -S "$dir/api.sock" || { echo "node$i: lbnode did not come up"; cat "$dir/lbnode.log"; return 1; }
}

# lab_ctl <i> <lbctl args...>: lbctl against node i.
lab_ctl() {
  local i=$1; shift
  "$LBCTL" --target "unix:$LAB_WORK/n$i/api.sock" "$@"
}

# lab_ctl_all <lbctl args...>: lbctl against every node started (a fleet).
lab_ctl_all() {
  local t=() i
  for i in "${!lab_node_pid[@]}"; do t+=(--target "unix:$LAB_WORK/n$i/api.sock"); done
  "$LBCTL" "${t[@]}" "$@"
}

# lab_nexthops: the router's next hops for the VIP, one address per line (sorted).
lab_nexthops() {
  ip -n "$(lab_ns r)" route show "$LAB_VIP/32" 2>/dev/null |
    grep -o 'via [0-9.]*' | awk '{print $2}' | sort
}
lab_nexthop_count() { lab_nexthops | grep -c . || true; }

# lab_counter <i> <name>: a counter of node i from its metrics endpoint.
lab_metric() {
  ip netns exec "$(lab_ns "n$1")" curl -s --max-time 2 http://127.0.0.1:9100/metrics |
    awk -v m="$2" '$1 == m {print $2}'
}

# lab_curl [args]: a request from the client to the VIP.
lab_curl() { ip netns exec "$(lab_ns c)" curl -s --max-time 3 "$@"; }
