// VipTable: the immutable map from a service address (VIP address, port, protocol) to the VIP's
// index in a config snapshot. Built by the control thread with each snapshot; read by workers
// without locks. A VIP with port 0 is an "all ports" VIP: it matches when no VIP of that address
// and protocol names the packet's port.
#ifndef LBNODE_DATAPLANE_CORE_VIP_TABLE_H_
#define LBNODE_DATAPLANE_CORE_VIP_TABLE_H_

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/core/flow_key.h"
#include "dataplane/core/prefetch.h"

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
// Resolve(): no VIP has the packet's destination address at all (not the LB's traffic).
inline constexpr uint32_t kNotVipAddress = 0xfffffffeu;

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

  // The worker's per-packet question in one probe: kNotVipAddress when !HasAddress(dst, family);
  // else LookupFragment(dst, family, proto) for a fragment and Lookup(dst, family, dst_port,
  // proto) otherwise. One cache line answers it for an address with few services; the exact
  // tables above are consulted only for fragments and for addresses with many services.
  // HasAddress, from the one-line address table.
  bool HasAddressFast(const IpAddr& addr, IpFamily family) const {
    return FindAddress(addr, family) != nullptr;
  }

  // Whether the address table outgrows the first-level caches (Prefetch is then worth its cost).
  bool Large() const { return by_address_.size() >= kLargeAddressSlots; }
  // Starts loading the address slot a Resolve of `dst` reads first.
  void Prefetch(const IpAddr& dst, IpFamily family) const {
    if (by_address_.empty()) return;
    uint64_t a[2];
    std::memcpy(a, dst.bytes, 16);
    const uint64_t h = HashAddress(a[0], a[1], family);
    PrefetchRead(&by_address_[static_cast<uint32_t>(h >> 32) >> address_shift_]);
  }

  uint32_t Resolve(const IpAddr& dst, IpFamily family, uint16_t dst_port, uint8_t proto,
                   bool fragment) const {
    const AddrSlot* slot = FindAddress(dst, family);
    if (slot == nullptr) return kNotVipAddress;
    if (fragment || slot->count > kInlineServices) [[unlikely]] {
      return fragment ? LookupFragment(dst, family, proto) : Lookup(dst, family, dst_port, proto);
    }
    const uint32_t exact = static_cast<uint32_t>(dst_port) | static_cast<uint32_t>(proto) << 16;
    const uint32_t any = static_cast<uint32_t>(proto) << 16;
    uint32_t found = kNoVip;
    for (uint32_t i = 0; i < slot->count; ++i) {
      if (slot->service[i] == exact) return slot->vip[i];
      if (slot->service[i] == any) found = slot->vip[i];
    }
    return found;
  }

  size_t size() const { return count_; }

 private:
  struct Slot {
    VipKey key;
    uint32_t index = kNoVip;
  };
  static uint32_t Find(const std::vector<Slot>& slots, uint32_t mask, const VipKey& key);

  // One address with up to kInlineServices services (port | proto << 16, port in network order;
  // port 0 for an all-ports VIP) in one cache line. count > kInlineServices: the address has more
  // services than fit, look them up in slots_.
  static constexpr uint32_t kInlineServices = 5;
  static constexpr size_t kLargeAddressSlots = 1024;  // 64 KiB of address slots
  struct alignas(64) AddrSlot {
    uint64_t addr[2];
    IpFamily family = IpFamily::kNone;  // kNone: empty slot
    uint8_t count = 0;
    uint32_t service[kInlineServices];
    uint32_t vip[kInlineServices];
  };
  static uint64_t HashAddress(uint64_t a0, uint64_t a1, IpFamily family) {
    // Node-local: a multiply-xor of the address words; the top bits index the table.
    return (a0 * 0x9e3779b97f4a7c15ULL) ^
           ((a1 ^ static_cast<uint64_t>(family)) * 0xc2b2ae3d27d4eb4fULL);
  }
  const AddrSlot* FindAddress(const IpAddr& addr, IpFamily family) const {
    if (by_address_.empty()) return nullptr;
    uint64_t a[2];
    std::memcpy(a, addr.bytes, 16);
    const uint64_t h = HashAddress(a[0], a[1], family);
    for (uint32_t s = static_cast<uint32_t>(h >> 32) >> address_shift_;;
         s = (s + 1) & address_mask_) {
      const AddrSlot& slot = by_address_[s];
      if (slot.family == family && slot.addr[0] == a[0] && slot.addr[1] == a[1]) return &slot;
      if (slot.family == IpFamily::kNone) return nullptr;  // load <= 1/2: the probe ends
    }
  }

  std::vector<Slot> slots_;           // open addressing, linear probing, power-of-two size
  std::vector<Slot> addresses_;       // same, keyed by address only (port 0, proto 0)
  std::vector<Slot> fragments_;       // same, keyed by address and protocol (port 0)
  std::vector<AddrSlot> by_address_;  // open addressing by (address, family), linear probing
  uint32_t address_mask_ = 0;
  uint32_t address_shift_ = 32;
  uint32_t mask_ = 0;
  size_t count_ = 0;
};

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_VIP_TABLE_H_
