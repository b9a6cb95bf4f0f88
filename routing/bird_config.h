// Renders the node's BIRD 2 configuration: OSPFv2 and OSPFv3 on the node's interface (lb0)
// with priority 0, optional BFD and HMAC-SHA-256 authentication, and every VIP as a stubnet of
// the node's router-LSA (IPv4 /32 in OSPFv2, IPv6 /128 in OSPFv3). Withdrawing a VIP is
// rendering without it and reconfiguring BIRD. Pure functions plus a file read for the keys;
// safe to call from any thread.
#ifndef LBNODE_ROUTING_BIRD_CONFIG_H_
#define LBNODE_ROUTING_BIRD_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lb {

// Protocol names in the rendered config (the announcer and the status report query them).
inline constexpr char kBirdOspf4Protocol[] = "lb_ospf4";
inline constexpr char kBirdOspf6Protocol[] = "lb_ospf6";
inline constexpr char kBirdBfdProtocol[] = "lb_bfd";

struct BirdBfdOptions {
  uint32_t min_rx_ms = 100;
  uint32_t min_tx_ms = 100;
  uint32_t multiplier = 3;
};

// One OSPF authentication key: "id secret" per line in the key file.
struct OspfKey {
  uint32_t id = 0;  // 0-255 (the OSPFv2 key id is one byte; BIRD applies the same to v3)
  std::string secret;
};
inline constexpr size_t kMinOspfSecret = 8;
inline constexpr size_t kMaxOspfSecret = 128;

struct BirdNodeConfig {
  std::string router_id;   // required, dotted quad, distinct per node, not 0.0.0.0
  std::string area = "0";  // a number or a dotted quad
  std::string interface = "lb0";
  uint32_t hello_s = 1;
  uint32_t dead_s = 4;  // must exceed hello_s
  uint32_t cost = 10;   // interface cost, also the cost of every VIP stubnet
  // The node's priority is always 0: it never becomes DR/BDR, so the router alone decides when
  // a dead node leaves the network-LSA (LAB.md pitfall 5).
  bool ipv4 = true;  // render the OSPFv2 instance
  bool ipv6 = true;  // render the OSPFv3 instance (needs an IPv6 link-local on the interface)
  bool bfd = false;
  BirdBfdOptions bfd_options;
  // File of "id secret" lines ('#' comments and blank lines allowed). Empty: no authentication.
  // With keys, both instances use `authentication cryptographic` with HMAC-SHA-256 and every
  // key in file order; the rendered config then holds the secrets (written mode 0600). BIRD
  // signs with the first key and accepts any listed one (tested), so a rotation adds the new
  // key second everywhere, then moves it first, then drops the old one. BIRD warns that hello
  // intervals under 5 s make cryptographic authentication prone to replay attacks.
  std::string auth_key_file;
  // Where BIRD logs: empty means syslog, "stderr" means standard error, otherwise a file path.
  std::string log_file;
  bool debug_ospf = false;  // `debug { states, events }`: adjacency and LSA events in the log
  // VIP addresses ("10.0.0.1", "2001:db8::1", or with /32 and /128). Duplicates are merged.
  std::vector<std::string> vips;
};

// Parses a key file's contents; errors name the line, e.g. "line 3: key id 300 is not in
// 0-255". `name` prefixes error messages.
absl::StatusOr<std::vector<OspfKey>> ParseOspfKeys(absl::string_view text, absl::string_view name);

// Canonical host prefix of a VIP: "10.0.0.1/32", "2001:db8::1/128"; INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> VipPrefix(absl::string_view vip);

// Checks every field; the error names the field, e.g. "vips[2]: not an IP address: \"10.0\"".
// Reads the key file if one is set.
absl::Status ValidateBirdNodeConfig(const BirdNodeConfig& config);

// Validates, then renders the whole bird.conf.
absl::StatusOr<std::string> RenderBirdConfig(const BirdNodeConfig& config);

}  // namespace lb

#endif  // LBNODE_ROUTING_BIRD_CONFIG_H_
