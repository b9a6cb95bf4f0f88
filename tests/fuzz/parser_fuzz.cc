// libFuzzer target for the packet parser: any byte string must parse without reading outside the
// frame (ASan), without undefined behaviour (UBSan), and with self-consistent offsets.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "dataplane/core/packet_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy, so that a read one byte past the frame is an ASan report.
  std::unique_ptr<uint8_t[]> frame(new uint8_t[size ? size : 1]);
  if (size) std::memcpy(frame.get(), data, size);
  lb::ParsedPacket p;
  lb::ParsePacket(frame.get(), size, &p);
  if (static_cast<size_t>(p.status) >= static_cast<size_t>(lb::ParseStatus::kCount)) std::abort();
  if (p.status == lb::ParseStatus::kOk &&
      (p.l3 == lb::L3Kind::kIpv4 || p.l3 == lb::L3Kind::kIpv6)) {
    // The datagram lies inside the frame and the L4 header inside the datagram.
    if (p.l3_offset > p.l4_offset || p.l4_offset > p.l3_end || p.l3_end > size) std::abort();
    if (p.icmp_error && (p.inner_l3_offset <= p.l4_offset || p.inner_l3_offset > p.l3_end)) {
      std::abort();
    }
    if (p.fragment == lb::Fragment::kLater && (p.flow.src_port != 0 || p.flow.dst_port != 0)) {
      std::abort();
    }
  }
  return 0;
}
