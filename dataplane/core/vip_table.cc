#include "dataplane/core/vip_table.h"

#include <arpa/inet.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lb {
namespace {

// Node-local (the table never leaves this process), so speed matters more than a fixed
// definition: a multiply-xor of the key's three words, a handful of instructions per lookup.
inline uint64_t HashKey(const VipKey& k) {
  uint64_t a, b;
  std::memcpy(&a, k.addr.bytes, 8);
  std::memcpy(&b, k.addr.bytes + 8, 8);
  const uint64_t c = static_cast<uint64_t>(k.port) | static_cast<uint64_t>(k.proto) << 16 |
                     static_cast<uint64_t>(k.family) << 24;
  uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ b * 0xc2b2ae3d27d4eb4fULL ^ c * 0x165667b19e3779f9ULL;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 32);
}

}  // namespace

absl::StatusOr<VipTable> VipTable::Build(const std::vector<VipKey>& keys,
                                         const std::vector<uint32_t>& values) {
  if (!values.empty() && values.size() != keys.size()) {
    return absl::InvalidArgumentError("VIP table: keys and values differ in number");
  }
  VipTable t;
  uint32_t size = 16;
  while (size < 2 * keys.size()) size <<= 1;
  t.slots_.assign(size, Slot{});
  t.addresses_.assign(size, Slot{});
  t.fragments_.assign(size, Slot{});
  t.mask_ = size - 1;
  // Inserts or finds `key` in `slots`; returns the slot.
  const auto place = [&t](std::vector<Slot>& slots, const VipKey& key) -> Slot& {
    uint32_t s = static_cast<uint32_t>(HashKey(key)) & t.mask_;
    while (slots[s].index != kNoVip && !(slots[s].key == key)) s = (s + 1) & t.mask_;
    return slots[s];
  };
  std::vector<uint16_t> fragment_port(size, 0);  // port (host order) of each fragments_ choice
  for (uint32_t i = 0; i < keys.size(); ++i) {
    const uint32_t value = values.empty() ? i : values[i];
    Slot& exact = place(t.slots_, keys[i]);
    if (exact.index != kNoVip) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate VIP #", i));
    }
    exact = {keys[i], value};
    place(t.addresses_, {keys[i].addr, 0, 0, keys[i].family}) = {
        {keys[i].addr, 0, 0, keys[i].family}, value};
    const VipKey frag_key{keys[i].addr, 0, keys[i].proto, keys[i].family};
    Slot& frag = place(t.fragments_, frag_key);
    const uint16_t port = ntohs(keys[i].port);
    const size_t at = &frag - t.fragments_.data();
    if (frag.index == kNoVip || port < fragment_port[at]) {
      frag = {frag_key, value};
      fragment_port[at] = port;
    }
  }
  // The address table: one slot per distinct (address, family), its services inline.
  uint32_t addr_size = 16;
  while (addr_size < 2 * keys.size()) addr_size <<= 1;
  t.by_address_.assign(addr_size, AddrSlot{});
  t.address_mask_ = addr_size - 1;
  t.address_shift_ = 32 - static_cast<uint32_t>(__builtin_ctz(addr_size));
  for (uint32_t i = 0; i < keys.size(); ++i) {
    const VipKey& k = keys[i];
    uint64_t a[2];
    std::memcpy(a, k.addr.bytes, 16);
    const uint64_t h = HashAddress(a[0], a[1], k.family);
    uint32_t s = static_cast<uint32_t>(h >> 32) >> t.address_shift_;
    while (t.by_address_[s].family != IpFamily::kNone &&
           !(t.by_address_[s].family == k.family && t.by_address_[s].addr[0] == a[0] &&
             t.by_address_[s].addr[1] == a[1])) {
      s = (s + 1) & t.address_mask_;
    }
    AddrSlot& slot = t.by_address_[s];
    slot.addr[0] = a[0];
    slot.addr[1] = a[1];
    slot.family = k.family;
    if (slot.count < kInlineServices) {
      slot.service[slot.count] = static_cast<uint32_t>(k.port) | static_cast<uint32_t>(k.proto)
                                                                     << 16;
      slot.vip[slot.count] = values.empty() ? i : values[i];
    }
    if (slot.count <= kInlineServices) ++slot.count;  // kInlineServices + 1: see slots_
  }
  t.count_ = keys.size();
  return t;
}

uint32_t VipTable::Find(const std::vector<Slot>& slots, uint32_t mask, const VipKey& key) {
  if (slots.empty()) return kNoVip;
  for (uint32_t s = static_cast<uint32_t>(HashKey(key)) & mask;; s = (s + 1) & mask) {
    const Slot& slot = slots[s];
    if (slot.index == kNoVip) return kNoVip;  // load <= 1/2: an empty slot always ends the probe
    if (slot.key == key) return slot.index;
  }
}

uint32_t VipTable::Lookup(const IpAddr& dst, IpFamily family, uint16_t dst_port,
                          uint8_t proto) const {
  VipKey key{dst, dst_port, proto, family};
  const uint32_t exact = Find(slots_, mask_, key);
  if (exact != kNoVip || dst_port == 0) return exact;
  key.port = 0;
  return Find(slots_, mask_, key);
}

uint32_t VipTable::LookupFragment(const IpAddr& dst, IpFamily family, uint8_t proto) const {
  return Find(fragments_, mask_, {dst, 0, proto, family});
}

bool VipTable::HasAddress(const IpAddr& addr, IpFamily family) const {
  return Find(addresses_, mask_, {addr, 0, 0, family}) != kNoVip;
}

}  // namespace lb
