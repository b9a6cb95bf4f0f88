#!/usr/bin/env bash
# The README's demo command. Installs missing packages, builds, and runs what exists so far.
#
# Today that is the packet core without DPDK (parser, Maglev, connection table) on made-up
# traffic: tools/core_demo.cc. The cluster demo (router, nodes, backends and a client in network
# namespaces) replaces it when the forwarding plane, control plane and routing agent exist.
#   --bench   also run the core benchmarks (about 1 minute)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target lb_core_demo parser_bench maglev_bench conn_table_bench >/dev/null
./build/tools/lb_core_demo
if [ "${1:-}" = "--bench" ]; then
  for b in parser_bench maglev_bench conn_table_bench; do
    echo; echo "== $b"
    "./build/bench/$b" --benchmark_min_time=0.2
  done
fi
