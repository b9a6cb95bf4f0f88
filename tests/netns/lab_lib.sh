# Shared pieces of the lbnode namespace tests (sourced, not run). The callers keep their own
# topology; this file holds what every one of them does the same way.

# forget <pid>: drop a PID from the caller's pids array (exact match) once it has been reaped.
forget() {
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

# lab_take_uplink <ns> <iface>: hand a node's uplink veth to lbnode. The kernel must keep off it:
# no ARP answers (arp_ignore=8), no IPv6 (lb0 gets the same MAC, hence the same link-local
# address, and the veth's duplicate address detection would fail lb0's), and an nft ingress
# drop, since the weak host model would otherwise make the kernel accept lb0's addresses arriving
# on the veth too. AF_PACKET sees the frames before that hook, so lbnode still gets everything.
lab_take_uplink() {
  local ns=$1 ifc=$2
  ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$ifc.arp_ignore=8" \
    "net.ipv6.conf.$ifc.disable_ipv6=1"
  ip -n "$ns" link set "$ifc" up
  ip -n "$ns" link set lo up
  ip netns exec "$ns" nft add table netdev lbuplink
  ip netns exec "$ns" nft add chain netdev lbuplink ingress \
    "{ type filter hook ingress device $ifc priority 0; policy drop; }"
}

# lab_dataplane_config <file prefix> <iface> <work dir>: the dataplane section of a lab node's
# config: no hugepages, net_af_packet on the uplink veth, the exception path on the TAP lb0; the
# node's state directory and API socket in the test's own directory (a node restores its saved
# state on start, so nodes must never share one).
lab_dataplane_config() {
  cat <<CONF
state_dir: "$3/state-$1"
api { unix_socket: "$3/api-$1.sock" }
dataplane {
  eal_args: ["-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", "$1",
             "--vdev", "net_af_packet0,iface=$2", "--vdev", "net_tap0,iface=lb0",
             "--log-level", "lib.eal:error", "--no-telemetry"]
  uplink: "net_af_packet0"
  exception: "net_tap0"
  conn_table_size: 65536
}
CONF
}
