#!/usr/bin/env bash
# Installs every Debian 12 package lbnode builds, tests, benchmarks or runs its lab with.
# Idempotent: prints nothing and changes nothing when all packages are already installed.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git
  # data plane
  dpdk dpdk-dev libdpdk-dev libpcap-dev libnl-3-dev libnl-route-3-dev libmnl-dev libnuma-dev
  # control plane
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libcli11-dev libcpp-httplib-dev
  # tests, fuzzing, benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev clang libclang-rt-14-dev
  python3-scapy python3-grpcio prometheus valgrind
  # routing and the namespace lab
  bird2 frr iproute2 iputils-ping nftables ethtool curl openssl tcpdump procps psmisc
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The distribution starts these daemons on install; the lab runs its own instances.
for svc in bird frr prometheus prometheus-node-exporter; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
echo "install-deps: done"
