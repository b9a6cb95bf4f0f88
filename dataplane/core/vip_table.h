// VipTable: the immutable map from a service address (VIP address, port, protocol) to the VIP's
// index in a config snapshot. Built by the control thread with each snapshot; read by workers
// without locks. A VIP with port 0 is an "all ports" VIP: it matches when no VIP of that address
// and protocol names the packet's port.
#ifndef LBNODE_DATAPLANE_CORE_VIP_TABLE_H_
#define LBNODE_DATAPLANE_CORE_VIP_TABLE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/core/flow_key.h"

namespace lb {

struct VipKey {
  IpAddr addr;
  uint16_t port = 0;  // network order; 0 = all ports
  uint8_t proto = 0;  // IPPROTO_TCP or IPPROTO_UDP
  IpFamily family = IpFamily::kNone;

  bool operator==(const VipKey& o) const {
    return addr == o.addr && port == o.port && proto == o.proto && family == o.family;
  }
};

inline constexpr uint32_t kNoVip = 0xffffffffu;

class VipTable {
 public:
  VipTable() = default;
  // keys[i] maps to values[i], or to i when `values` is empty. Fails with InvalidArgument on a
  // duplicate key or when the sizes differ.
  static absl::StatusOr<VipTable> Build(const std::vector<VipKey>& keys,
                                        const std::vector<uint32_t>& values = {});

  // The VIP for a packet to (dst, dst_port, proto): the exact port first, then the address's
  // all-ports VIP; kNoVip if neither exists.
  uint32_t Lookup(const IpAddr& dst, IpFamily family, uint16_t dst_port, uint8_t proto) const;
  // The VIP for a fragment, whose ports are unknown: the all-ports VIP of (dst, proto) if there is
  // one, else the VIP of (dst, proto) with the lowest port, so that every fragment of a datagram,
  // first or later, maps to the same VIP on every node.
  uint32_t LookupFragment(const IpAddr& dst, IpFamily family, uint8_t proto) const;
  // Whether any VIP (any port or protocol) has this address: traffic to a VIP address that no
  // service matches is dropped and counted, not handed to the kernel.
  bool HasAddress(const IpAddr& addr, IpFamily family) const;

  size_t size() const { return count_; }

 private:
  struct Slot {
    VipKey key;
    uint32_t index = kNoVip;
  };
  static uint32_t Find(const std::vector<Slot>& slots, uint32_t mask, const VipKey& key);

  std::vector<Slot> slots_;      // open addressing, linear probing, power-of-two size
  std::vector<Slot> addresses_;  // same, keyed by address only (port 0, proto 0)
  std::vector<Slot> fragments_;  // same, keyed by address and protocol (port 0)
  uint32_t mask_ = 0;
  size_t count_ = 0;
};

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_VIP_TABLE_H_
