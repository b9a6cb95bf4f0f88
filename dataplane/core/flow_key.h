// FlowKey: the 5-tuple that identifies a flow, for IPv4 and IPv6 alike, and the flow hash that
// every part of lbnode uses (worker, connection table, Maglev, tests). Pure functions, no state:
// any thread may call them.
//
// One hash function everywhere matters: a flow that ECMP moves from one node to another must land
// on the same Maglev slot, so the hash is fixed-seeded, independent of the host, and defined on
// the key's bytes in network order.
#ifndef LBNODE_DATAPLANE_CORE_FLOW_KEY_H_
#define LBNODE_DATAPLANE_CORE_FLOW_KEY_H_

#include <cstdint>
#include <cstring>
#include <string>

namespace lb {

enum class IpFamily : uint8_t { kNone = 0, kIpv4 = 4, kIpv6 = 6 };

// A 16-byte address. IPv4 addresses occupy the first 4 bytes; the other 12 are zero, so that
// keys compare and hash as plain bytes.
struct IpAddr {
  uint8_t bytes[16];

  static IpAddr V4(uint32_t host_order);
  // Inline: the parser builds two of these per packet.
  static IpAddr FromV4Bytes(const uint8_t* p) {  // 4 bytes, network order
    IpAddr a{};
    std::memcpy(a.bytes, p, 4);
    return a;
  }
  static IpAddr FromV6Bytes(const uint8_t* p) {  // 16 bytes
    IpAddr a;
    std::memcpy(a.bytes, p, 16);
    return a;
  }

  uint32_t V4HostOrder() const;
  bool operator==(const IpAddr& o) const { return std::memcmp(bytes, o.bytes, 16) == 0; }
  bool operator!=(const IpAddr& o) const { return !(*this == o); }
};

// Ports are kept in network byte order (as on the wire); all padding is zero.
struct FlowKey {
  IpAddr src;
  IpAddr dst;
  uint16_t src_port = 0;  // network order; 0 for protocols without ports
  uint16_t dst_port = 0;  // network order
  uint8_t proto = 0;      // IPPROTO_*
  IpFamily family = IpFamily::kNone;
  uint8_t pad[2] = {0, 0};

  FlowKey() { std::memset(this, 0, sizeof(*this)); }
  bool operator==(const FlowKey& o) const { return std::memcmp(this, &o, sizeof(*this)) == 0; }
  bool operator!=(const FlowKey& o) const { return !(*this == o); }

  // The same flow seen in the other direction (source and destination swapped).
  FlowKey Reversed() const;
  std::string ToString() const;
};
static_assert(sizeof(FlowKey) == 40, "FlowKey must stay 40 bytes without implicit padding");

// The seed every node uses for flow hashing. Changing it remaps every flow of a running fleet:
// never change it in a release that may run beside an older one.
inline constexpr uint64_t kFlowHashSeed = 0x6c626e6f64653031ULL;  // "lbnode01"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "flow hashes are defined on little-endian word loads");

namespace hash_internal {
// 64x64->128 multiply folded to 64 bits: the mixing step of wyhash/MUM hashing.
inline uint64_t Mix(uint64_t a, uint64_t b) {
  const __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline constexpr uint64_t kP0 = 0xa0761d6478bd642fULL;
inline constexpr uint64_t kP1 = 0xe7037ed1a0b428dbULL;
inline constexpr uint64_t kP2 = 0x8ebc6af09c88c6e3ULL;
inline constexpr uint64_t kP3 = 0x589965cc75374cc3ULL;
}  // namespace hash_internal

// 64-bit hash of a byte string: a fixed algorithm (wyhash-style multiply-fold) with the same
// result on every little-endian host. Inline because the worker calls it once per packet.
inline uint64_t HashBytes(const void* data, size_t len, uint64_t seed) {
  using namespace hash_internal;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed ^ Mix(seed ^ kP0, len ^ kP1);
  size_t i = 0;
  for (; i + 16 <= len; i += 16) h = Mix(Load64(p + i) ^ kP1 ^ h, Load64(p + i + 8) ^ kP2);
  if (i < len) {
    uint8_t tail[16] = {0};
    std::memcpy(tail, p + i, len - i);
    h = Mix(Load64(tail) ^ kP1 ^ h, Load64(tail + 8) ^ kP3);
  }
  return Mix(h ^ kP0, len ^ kP3);
}

// Hash of the flow's 5-tuple. Directional: a flow and its reverse usually differ.
inline uint64_t FlowHash(const FlowKey& k, uint64_t seed = kFlowHashSeed) {
  return HashBytes(&k, sizeof(k), seed);
}

// Hash that is the same for a flow and its reverse (for state that both directions share, such
// as full-NAT sessions or symmetric RSS checks).
uint64_t SymmetricFlowHash(const FlowKey& k, uint64_t seed = kFlowHashSeed);

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_FLOW_KEY_H_
