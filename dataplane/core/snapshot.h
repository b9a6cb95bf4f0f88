// Snapshot: one immutable, complete view of what the workers forward: VIPs with their Maglev
// tables and backends, resolved next-hop MACs, and the node's own parameters. The control thread
// builds a new Snapshot for every change and publishes it whole (RCU in the DPDK layer); workers
// read the current one per burst without locks. Nothing here changes after publication.
//
// Handles: each VIP, and each (VIP, backend) pair, has a handle, index | generation <<
// kHandleIndexBits, that stays the same across snapshots while the pair exists. Connection-table
// entries store it; a worker trusts an entry only while the snapshot's backend at that index has
// the same handle, so a freed and reused index is never mistaken for the old backend.
#ifndef LBNODE_DATAPLANE_CORE_SNAPSHOT_H_
#define LBNODE_DATAPLANE_CORE_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/core/flow_key.h"
#include "dataplane/core/maglev.h"
#include "dataplane/core/rewrite.h"
#include "dataplane/core/vip_table.h"

namespace lb {

inline constexpr uint32_t kHandleIndexBits = 20;
inline constexpr uint32_t kHandleIndexMask = (1u << kHandleIndexBits) - 1;
inline constexpr uint32_t HandleIndex(uint32_t handle) { return handle & kHandleIndexMask; }

enum class ForwardingMode : uint8_t { kDr = 0, kTun, kGue, kNat };
const char* ForwardingModeName(ForwardingMode m);

enum class BackendState : uint8_t {
  kActive = 0,  // receives new flows
  kDraining,    // keeps its established flows, receives no new ones (Maglev weight 0)
  kDown,        // failed or removed: its flows are moved to another backend
};

struct BackendEntry {
  uint32_t handle = 0;  // 0 = unused index
  uint32_t vip = 0;     // the VIP's handle
  IpAddr addr;
  IpFamily family = IpFamily::kNone;
  uint16_t port = 0;  // full NAT: the backend's port, network order (0 = the VIP port)
  BackendState state = BackendState::kActive;
  bool resolved = false;   // next_hop_mac is known
  MacAddr next_hop_mac{};  // DR: the backend's MAC; TUN/GUE/NAT: the next hop's toward it
  // Derived (PrepareSnapshot): the outer headers of a TUN/GUE backend, or header_len 0 when the
  // worker must build them field by field (no template for this mode, family or node).
  TunnelTemplate tunnel;
};

struct VipEntry {
  uint32_t handle = 0;  // 0 = unused index
  VipKey key;
  ForwardingMode mode = ForwardingMode::kTun;
  std::shared_ptr<const MaglevTable> maglev;  // shared between snapshots while unchanged
  std::vector<uint32_t> backends;             // Maglev backend index -> Snapshot::backends index
};

struct NodeParams {
  MacAddr port_mac{};  // the uplink's MAC: source MAC of everything the node sends
  IpAddr tunnel_src4;  // outer source for IPv4 tunnels (TUN/GUE)
  IpAddr tunnel_src6;
  bool has_tunnel_src4 = false;
  bool has_tunnel_src6 = false;
  // Full NAT replies go back toward the client through the uplink's gateway.
  MacAddr gateway_mac4{};
  MacAddr gateway_mac6{};
  bool has_gateway_mac4 = false;
  bool has_gateway_mac6 = false;
  uint16_t gue_port = kGueDefaultPort;  // host order
  // Full NAT: local source addresses (per family) and the port range shared out among workers.
  std::vector<IpAddr> nat_addrs4;
  std::vector<IpAddr> nat_addrs6;
  uint16_t nat_port_min = 1024;  // host order, inclusive
  uint16_t nat_port_max = 65535;
  // Idle timeouts, milliseconds.
  uint32_t tcp_timeout_ms = 300000;
  uint32_t tcp_closing_timeout_ms = 10000;  // after FIN or RST
  uint32_t udp_timeout_ms = 60000;
};

struct Snapshot {
  uint64_t version = 0;
  VipTable vip_table;                  // key -> index into vips
  std::vector<VipEntry> vips;          // indexed by HandleIndex(handle); unused entries have 0
  std::vector<BackendEntry> backends;  // indexed by HandleIndex(handle)
  NodeParams node;
  // Derived by PrepareSnapshot: some VIP is full NAT (the workers then prefetch reverse entries).
  bool has_nat_vip = false;

  const VipEntry* Vip(uint32_t handle) const {
    const uint32_t i = HandleIndex(handle);
    return i < vips.size() && vips[i].handle == handle && handle != 0 ? &vips[i] : nullptr;
  }
  // The backend a handle names, or nullptr if that pair no longer exists.
  const BackendEntry* Backend(uint32_t handle) const {
    const uint32_t i = HandleIndex(handle);
    return i < backends.size() && backends[i].handle == handle && handle != 0 ? &backends[i]
                                                                              : nullptr;
  }
};

// Computes the snapshot's derived data (tunnel templates) from its other fields. The snapshot
// builder calls it last; whoever assembles or changes a snapshot by hand calls it again before
// publishing, or the workers use stale templates. Without it the workers take the slow paths,
// which give the same results.
void PrepareSnapshot(Snapshot* s);

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_SNAPSHOT_H_
