#include "dataplane/core/flow_key.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

namespace lb {

IpAddr IpAddr::V4(uint32_t host_order) {
  IpAddr a{};
  const uint32_t n = htonl(host_order);
  std::memcpy(a.bytes, &n, 4);
  return a;
}

uint32_t IpAddr::V4HostOrder() const {
  uint32_t n;
  std::memcpy(&n, bytes, 4);
  return ntohl(n);
}

FlowKey FlowKey::Reversed() const {
  FlowKey r = *this;
  r.src = dst;
  r.dst = src;
  r.src_port = dst_port;
  r.dst_port = src_port;
  return r;
}

std::string FlowKey::ToString() const {
  char a[INET6_ADDRSTRLEN] = "?", b[INET6_ADDRSTRLEN] = "?";
  const int af = family == IpFamily::kIpv6 ? AF_INET6 : AF_INET;
  inet_ntop(af, src.bytes, a, sizeof(a));
  inet_ntop(af, dst.bytes, b, sizeof(b));
  char out[2 * INET6_ADDRSTRLEN + 48];
  const char* fmt =
      family == IpFamily::kIpv6 ? "[%s]:%u -> [%s]:%u proto %u" : "%s:%u -> %s:%u proto %u";
  std::snprintf(out, sizeof(out), fmt, a, ntohs(src_port), b, ntohs(dst_port), proto);
  return out;
}

uint64_t SymmetricFlowHash(const FlowKey& k, uint64_t seed) {
  // Order the two endpoints canonically, then hash: both directions give the same bytes.
  FlowKey c = k;
  const int cmp = std::memcmp(k.src.bytes, k.dst.bytes, 16);
  if (cmp > 0 || (cmp == 0 && ntohs(k.src_port) > ntohs(k.dst_port))) c = k.Reversed();
  return FlowHash(c, seed);
}

}  // namespace lb
