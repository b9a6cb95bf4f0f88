#!/usr/bin/env bash
# The README's demo command. Installs missing packages, builds, and runs what exists so far:
#  1. the packet core on made-up traffic (tools/core_demo.cc): parsing, Maglev spread and
#     disruption, the connection table keeping established flows;
#  2. a real lbnode between network namespaces (client, node, backend on one bridge): ping to
#     the node through its exception path, then HTTP to a VIP answered by the backend in DR mode,
#     and lbnode's counters (tests/netns/lbnode_dr_test.sh, which cleans up after itself).
# The cluster demo (router with OSPF/ECMP, three nodes, four backends, a drain) replaces this when
# the routing agent exists.
#   --bench   also run the core benchmarks (about 1 minute)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it installs packages and creates network namespaces)" >&2
  exit 1
fi
bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target lb_core_demo lbnode parser_bench maglev_bench conn_table_bench \
  >/dev/null
echo "=== Part 1: the packet core"
./build/tools/lb_core_demo
echo
echo "=== Part 2: lbnode in network namespaces (DR mode, real TCP)"
bash tests/netns/lbnode_dr_test.sh build/control/lbnode
if [ "${1:-}" = "--bench" ]; then
  for b in parser_bench maglev_bench conn_table_bench; do
    echo; echo "== $b"
    "./build/bench/$b" --benchmark_min_time=0.2
  done
fi
