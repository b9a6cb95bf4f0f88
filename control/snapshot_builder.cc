#include "control/snapshot_builder.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lb {
namespace {

std::string Quote(const std::string& s) { return absl::StrCat("\"", s, "\""); }

absl::Status FieldError(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

uint8_t ProtoNumber(v1::Protocol p) { return p == v1::PROTOCOL_UDP ? IPPROTO_UDP : IPPROTO_TCP; }

ForwardingMode Mode(v1::ForwardingMode m) {
  switch (m) {
    case v1::FORWARDING_MODE_DR:
      return ForwardingMode::kDr;
    case v1::FORWARDING_MODE_GUE:
      return ForwardingMode::kGue;
    case v1::FORWARDING_MODE_NAT:
      return ForwardingMode::kNat;
    default:
      return ForwardingMode::kTun;
  }
}

// Identities use the canonical address spelling: "2001:DB8::1" and "2001:db8::1" are one VIP.
std::string VipName(const v1::Vip& v, const IpAddr& addr, IpFamily family) {
  return absl::StrCat(v1::Protocol_Name(v.protocol()), "|", IpToString(addr, family), "|",
                      v.port());
}

}  // namespace

absl::StatusOr<std::pair<IpAddr, IpFamily>> ParseIp(const std::string& s) {
  IpAddr a{};
  if (inet_pton(AF_INET, s.c_str(), a.bytes) == 1) return std::make_pair(a, IpFamily::kIpv4);
  if (inet_pton(AF_INET6, s.c_str(), a.bytes) == 1) return std::make_pair(a, IpFamily::kIpv6);
  return absl::InvalidArgumentError(absl::StrCat("not an IP address: ", Quote(s)));
}

std::string IpToString(const IpAddr& a, IpFamily f) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(f == IpFamily::kIpv6 ? AF_INET6 : AF_INET, a.bytes, buf, sizeof(buf));
  return buf;
}

absl::StatusOr<MacAddr> ParseMac(const std::string& s) {
  MacAddr m{};
  unsigned v[6];
  char tail;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &tail) != 6) {
    return absl::InvalidArgumentError(absl::StrCat("not a MAC address: ", Quote(s)));
  }
  for (int i = 0; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(v[i]);
  return m;
}

std::string MacToString(const MacAddr& m) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", m.bytes[0], m.bytes[1], m.bytes[2],
                         m.bytes[3], m.bytes[4], m.bytes[5]);
}

absl::StatusOr<NodeParams> NodeParamsFromProto(
    const v1::NodeParams& proto, const MacAddr& uplink_mac,
    std::vector<std::pair<std::pair<IpAddr, IpFamily>, MacAddr>>* static_neighbors) {
  NodeParams n;
  n.port_mac = uplink_mac;
  if (!proto.port_mac().empty()) {
    auto mac = ParseMac(proto.port_mac());
    if (!mac.ok()) return FieldError("node.port_mac", std::string(mac.status().message()));
    n.port_mac = *mac;
  }
  struct Src {
    const std::string& text;
    const char* field;
    IpFamily family;
    IpAddr* out;
    bool* has;
  };
  for (const Src& src : {Src{proto.tunnel_source_ipv4(), "node.tunnel_source_ipv4", IpFamily::kIpv4,
                             &n.tunnel_src4, &n.has_tunnel_src4},
                         Src{proto.tunnel_source_ipv6(), "node.tunnel_source_ipv6", IpFamily::kIpv6,
                             &n.tunnel_src6, &n.has_tunnel_src6}}) {
    if (src.text.empty()) continue;
    auto a = ParseIp(src.text);
    if (!a.ok() || a->second != src.family) {
      return FieldError(src.field,
                        absl::StrCat("not an ", src.family == IpFamily::kIpv4 ? "IPv4" : "IPv6",
                                     " address: ", Quote(src.text)));
    }
    *src.out = a->first;
    *src.has = true;
  }
  if (proto.gue_port() > 65535) return FieldError("node.gue_port", "above 65535");
  if (proto.gue_port() != 0) n.gue_port = static_cast<uint16_t>(proto.gue_port());
  for (int i = 0; i < proto.nat_addresses_size(); ++i) {
    auto a = ParseIp(proto.nat_addresses(i));
    if (!a.ok()) {
      return FieldError(absl::StrCat("node.nat_addresses[", i, "]"),
                        std::string(a.status().message()));
    }
    std::vector<IpAddr>& list = a->second == IpFamily::kIpv4 ? n.nat_addrs4 : n.nat_addrs6;
    if (std::find(list.begin(), list.end(), a->first) != list.end()) {
      return FieldError(absl::StrCat("node.nat_addresses[", i, "]"),
                        absl::StrCat("duplicate address ", Quote(proto.nat_addresses(i))));
    }
    list.push_back(a->first);
  }
  const uint32_t lo = proto.nat_port_min() ? proto.nat_port_min() : 61000;
  const uint32_t hi = proto.nat_port_max() ? proto.nat_port_max() : 65535;
  if (lo > hi || hi > 65535 || lo == 0) {
    return FieldError("node.nat_port_min", absl::StrCat("port range ", lo, "-", hi,
                                                        " is empty or "
                                                        "outside 1-65535"));
  }
  n.nat_port_min = static_cast<uint16_t>(lo);
  n.nat_port_max = static_cast<uint16_t>(hi);
  struct Gw {
    const std::string& text;
    const char* field;
    MacAddr* out;
    bool* has;
  };
  for (const Gw& gw :
       {Gw{proto.gateway_mac_ipv4(), "node.gateway_mac_ipv4", &n.gateway_mac4, &n.has_gateway_mac4},
        Gw{proto.gateway_mac_ipv6(), "node.gateway_mac_ipv6", &n.gateway_mac6,
           &n.has_gateway_mac6}}) {
    if (gw.text.empty()) continue;
    auto mac = ParseMac(gw.text);
    if (!mac.ok()) return FieldError(gw.field, std::string(mac.status().message()));
    *gw.out = *mac;
    *gw.has = true;
  }
  for (int i = 0; i < proto.static_neighbors_size(); ++i) {
    const v1::StaticNeighbor& sn = proto.static_neighbors(i);
    const std::string f = absl::StrCat("node.static_neighbors[", i, "]");
    auto a = ParseIp(sn.address());
    if (!a.ok()) return FieldError(f + ".address", std::string(a.status().message()));
    auto mac = ParseMac(sn.mac());
    if (!mac.ok()) return FieldError(f + ".mac", std::string(mac.status().message()));
    if (static_neighbors != nullptr) static_neighbors->push_back({*a, *mac});
  }
  if (proto.tcp_timeout_ms()) n.tcp_timeout_ms = proto.tcp_timeout_ms();
  if (proto.tcp_closing_timeout_ms()) n.tcp_closing_timeout_ms = proto.tcp_closing_timeout_ms();
  if (proto.udp_timeout_ms()) n.udp_timeout_ms = proto.udp_timeout_ms();
  for (uint32_t t : {n.tcp_timeout_ms, n.tcp_closing_timeout_ms, n.udp_timeout_ms}) {
    if (t > (1u << 30)) return FieldError("node timeouts", "above 2^30 ms");
  }
  return n;
}

absl::Status ValidateHealthCheck(const v1::HealthCheck& hc, const std::string& f) {
  if (!v1::HealthCheck::Type_IsValid(hc.type())) {
    return FieldError(f + ".type", absl::StrCat("unknown type ", hc.type()));
  }
  if (hc.port() > 65535) return FieldError(f + ".port", absl::StrCat(hc.port(), " > 65535"));
  if (!hc.path().empty() && hc.path().front() != '/') {
    return FieldError(f + ".path", "must start with /");
  }
  for (char c : hc.path() + hc.host()) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return FieldError(f + (hc.path().find(c) != std::string::npos ? ".path" : ".host"),
                        "spaces and control characters are not allowed");
    }
  }
  if (hc.expected_status() != 0 && (hc.expected_status() < 100 || hc.expected_status() > 599)) {
    return FieldError(f + ".expected_status",
                      absl::StrCat(hc.expected_status(), " is not an HTTP status"));
  }
  const uint32_t interval = hc.interval_ms() ? hc.interval_ms() : 2000;
  const uint32_t timeout = hc.timeout_ms() ? hc.timeout_ms() : 1000;
  if (interval < 100 || interval > 3600000) {
    return FieldError(f + ".interval_ms", absl::StrCat(interval, " is outside [100, 3600000]"));
  }
  if (timeout >= interval) {
    return FieldError(f + ".timeout_ms",
                      absl::StrCat(timeout, " must be below interval_ms (", interval, ")"));
  }
  if (hc.rise() > 100) return FieldError(f + ".rise", absl::StrCat(hc.rise(), " > 100"));
  if (hc.fall() > 100) return FieldError(f + ".fall", absl::StrCat(hc.fall(), " > 100"));
  return absl::OkStatus();
}

absl::Status ValidateServiceConfig(const v1::ServiceConfig& config) {
  std::set<std::string> vip_names;
  uint64_t total_slots = 0;
  for (int i = 0; i < config.vips_size(); ++i) {
    const v1::Vip& v = config.vips(i);
    const std::string f = absl::StrCat("vips[", i, "]");
    auto addr = ParseIp(v.address());
    if (!addr.ok()) return FieldError(f + ".address", std::string(addr.status().message()));
    if (v.port() > 65535) return FieldError(f + ".port", absl::StrCat(v.port(), " > 65535"));
    if (v.protocol() != v1::PROTOCOL_TCP && v.protocol() != v1::PROTOCOL_UDP) {
      return FieldError(f + ".protocol", "must be PROTOCOL_TCP or PROTOCOL_UDP");
    }
    if (v.mode() == v1::FORWARDING_MODE_UNSPECIFIED || !v1::ForwardingMode_IsValid(v.mode())) {
      return FieldError(f + ".mode", "must be DR, TUN, GUE or NAT");
    }
    if (v.maglev_table_size() != 0 &&
        (v.maglev_table_size() < 3 || v.maglev_table_size() > kMaglevMaxSize ||
         !IsPrime(v.maglev_table_size()))) {
      return FieldError(f + ".maglev_table_size",
                        absl::StrCat(v.maglev_table_size(), " is not a prime in [3, ",
                                     kMaglevMaxSize, "] (0 = 65537)"));
    }
    total_slots += v.maglev_table_size() ? v.maglev_table_size() : kMaglevDefaultSize;
    if (total_slots > kMaxTotalMaglevSlots) {
      return absl::ResourceExhaustedError(
          absl::StrCat(f, ".maglev_table_size: the VIPs' Maglev tables would exceed ",
                       kMaxTotalMaglevSlots, " slots in total"));
    }
    // The same address and port under another spelling ("::1" vs "0::1") is the same VIP.
    const std::string canonical =
        absl::StrCat(v.protocol(), "|", IpToString(addr->first, addr->second), "|", v.port());
    if (!vip_names.insert(canonical).second) {
      return absl::AlreadyExistsError(absl::StrCat(f, ": duplicate VIP ", v.address(), " port ",
                                                   v.port(), " ", v1::Protocol_Name(v.protocol())));
    }
    if (absl::Status st = ValidateHealthCheck(v.health_check(), f + ".health_check"); !st.ok()) {
      return st;
    }
    if (v.port() == 0 && v.health_check().port() == 0 &&
        (v.health_check().type() == v1::HealthCheck::TYPE_TCP ||
         v.health_check().type() == v1::HealthCheck::TYPE_HTTP)) {
      return FieldError(f + ".health_check.port", "an all-ports VIP needs the port to probe");
    }
    std::set<std::string> backend_names;
    for (int j = 0; j < v.backends_size(); ++j) {
      const v1::Backend& b = v.backends(j);
      const std::string bf = absl::StrCat(f, ".backends[", j, "]");
      auto baddr = ParseIp(b.address());
      if (!baddr.ok()) return FieldError(bf + ".address", std::string(baddr.status().message()));
      const bool cross_family = baddr->second != addr->second;
      if (cross_family && v.mode() != v1::FORWARDING_MODE_TUN &&
          v.mode() != v1::FORWARDING_MODE_GUE) {
        return FieldError(bf + ".address",
                          "must be of the VIP's address family in DR and NAT modes");
      }
      if (b.has_weight() && b.weight() > kMaglevMaxWeight) {
        return FieldError(bf + ".weight", absl::StrCat(b.weight(), " > ", kMaglevMaxWeight));
      }
      if (!v1::BackendState_IsValid(b.state())) {
        return FieldError(bf + ".state", absl::StrCat("unknown state ", b.state()));
      }
      if (b.port() > 65535) return FieldError(bf + ".port", absl::StrCat(b.port(), " > 65535"));
      if (b.port() != 0 && v.mode() != v1::FORWARDING_MODE_NAT) {
        return FieldError(bf + ".port", "only full NAT can change the port (DR/TUN/GUE keep it)");
      }
      if (b.port() != 0 && v.port() == 0) {
        return FieldError(bf + ".port", "an all-ports VIP keeps the client's port");
      }
      const std::string bname =
          absl::StrCat(IpToString(baddr->first, baddr->second), "|", b.port());
      if (!backend_names.insert(bname).second) {
        return absl::AlreadyExistsError(
            absl::StrCat(bf, ": duplicate backend ", b.address(), " in VIP ", v.address()));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> SnapshotBuilder::Assign(HandleSpace& space, const std::string& name,
                                                 uint32_t limit,
                                                 std::map<std::string, uint32_t>* used) {
  auto it = space.by_name.find(name);
  uint32_t handle;
  if (it != space.by_name.end()) {
    handle = it->second;
  } else {
    // Fresh indices first, freed ones only when the space is used up: an index comes back as
    // late as possible, so that its generation (12 bits) wraps only after millions of changes.
    uint32_t index;
    if (space.next < limit && space.next <= kHandleIndexMask) {
      index = space.next++;
      space.generation.resize(index + 1, 0);
    } else if (!space.free.empty()) {
      index = space.free.front();
      space.free.pop_front();
    } else {
      return absl::ResourceExhaustedError(absl::StrCat("more than ", limit - 1, " handles"));
    }
    handle = index | (space.generation[index] << kHandleIndexBits);
    space.by_name[name] = handle;
  }
  (*used)[name] = handle;
  return handle;
}

void SnapshotBuilder::Release(HandleSpace& space, const std::map<std::string, uint32_t>& used) {
  for (auto it = space.by_name.begin(); it != space.by_name.end();) {
    if (used.count(it->first)) {
      ++it;
      continue;
    }
    const uint32_t index = HandleIndex(it->second);
    // A new generation, so entries that still hold the old handle are recognised as stale.
    space.generation[index] = (space.generation[index] + 1) & ((1u << (32 - kHandleIndexBits)) - 1);
    space.free.push_back(index);
    it = space.by_name.erase(it);
  }
}

absl::StatusOr<std::shared_ptr<const Snapshot>> SnapshotBuilder::Build(
    const v1::ServiceConfig& config, const NodeParams& node, const NeighborLookup& neighbors) {
  if (absl::Status st = ValidateServiceConfig(config); !st.ok()) return st;
  for (int i = 0; i < config.vips_size(); ++i) {
    const auto addr = *ParseIp(config.vips(i).address());
    const std::vector<IpAddr>& nat =
        addr.second == IpFamily::kIpv4 ? node.nat_addrs4 : node.nat_addrs6;
    if (std::find(nat.begin(), nat.end(), addr.first) != nat.end()) {
      return absl::InvalidArgumentError(absl::StrCat("vips[", i,
                                                     "].address: ", config.vips(i).address(),
                                                     " is also a full-NAT source address"));
    }
  }

  // Work on copies so that a failure (e.g. too many backends) changes nothing.
  HandleSpace vips_space = vip_handles_;
  HandleSpace backends_space = backend_handles_;
  std::map<std::string, uint32_t> used_vips, used_backends;
  std::map<std::string, CachedTable> cache;

  auto snap = std::make_shared<Snapshot>();
  snap->version = config.version();
  snap->node = node;
  std::vector<VipKey> keys;
  std::vector<uint32_t> values;
  std::vector<std::pair<IpAddr, IpFamily>> unresolved;
  std::set<std::string> unresolved_seen;

  for (int i = 0; i < config.vips_size(); ++i) {
    const v1::Vip& v = config.vips(i);
    const auto addr = *ParseIp(v.address());
    const std::string vname = VipName(v, addr.first, addr.second);
    auto vh = Assign(vips_space, vname, limits_.max_vips, &used_vips);
    if (!vh.ok()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("vips[", i, "]: VIP limit reached (", vh.status().message(), ")"));
    }
    const uint32_t vi = HandleIndex(*vh);
    if (snap->vips.size() <= vi) snap->vips.resize(vi + 1);
    VipEntry& ve = snap->vips[vi];
    ve.handle = *vh;
    ve.key = {addr.first, htons(static_cast<uint16_t>(v.port())), ProtoNumber(v.protocol()),
              addr.second};
    ve.mode = Mode(v.mode());
    keys.push_back(ve.key);
    values.push_back(vi);

    std::vector<MaglevBackend> mb;
    std::vector<std::pair<uint64_t, uint32_t>> input;
    for (int j = 0; j < v.backends_size(); ++j) {
      const v1::Backend& b = v.backends(j);
      const auto baddr = *ParseIp(b.address());
      auto bh =
          Assign(backends_space,
                 absl::StrCat(vname, "|", IpToString(baddr.first, baddr.second), "|", b.port()),
                 limits_.max_backends, &used_backends);
      if (!bh.ok()) {
        return absl::ResourceExhaustedError(absl::StrCat("vips[", i, "].backends[", j,
                                                         "]: backend limit reached (",
                                                         bh.status().message(), ")"));
      }
      const uint32_t bi = HandleIndex(*bh);
      if (snap->backends.size() <= bi) snap->backends.resize(bi + 1);
      BackendEntry& be = snap->backends[bi];
      be.handle = *bh;
      be.vip = *vh;
      be.addr = baddr.first;
      be.family = baddr.second;
      be.port = htons(static_cast<uint16_t>(b.port()));
      be.state = b.state() == v1::BACKEND_STATE_DRAINING ? BackendState::kDraining
                 : b.state() == v1::BACKEND_STATE_DOWN   ? BackendState::kDown
                                                         : BackendState::kActive;
      if (std::optional<MacAddr> mac =
              neighbors(be.addr, be.family, ve.mode == ForwardingMode::kDr)) {
        be.resolved = true;
        be.next_hop_mac = *mac;
      } else if (unresolved_seen.insert(IpToString(be.addr, be.family)).second) {
        unresolved.push_back({be.addr, be.family});
      }
      const uint32_t weight =
          be.state == BackendState::kActive ? (b.has_weight() ? b.weight() : 1) : 0;
      mb.push_back({BackendId(be.addr, b.port()), weight});
      ve.backends.push_back(bi);
      input.push_back({mb.back().id, weight});
    }
    const uint32_t size = v.maglev_table_size() ? v.maglev_table_size() : kMaglevDefaultSize;
    auto cached = maglev_cache_.find(vname);
    if (cached != maglev_cache_.end() && cached->second.input == input &&
        cached->second.size == size) {
      // Same backends in the same order: the cached table's indices are still right.
      ve.maglev = cached->second.table;
    } else {
      auto table = MaglevTable::Build(mb, size);
      if (!table.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("vips[", i, "]: ", table.status().message()));
      }
      ve.maglev = std::make_shared<const MaglevTable>(*std::move(table));
    }
    cache[vname] = {std::move(input), size, ve.maglev};
  }
  auto table = VipTable::Build(keys, values);
  if (!table.ok()) return table.status();
  snap->vip_table = *std::move(table);
  PrepareSnapshot(snap.get());

  Release(vips_space, used_vips);
  Release(backends_space, used_backends);
  vip_handles_ = std::move(vips_space);
  backend_handles_ = std::move(backends_space);
  maglev_cache_ = std::move(cache);
  unresolved_ = std::move(unresolved);
  PrepareSnapshot(snap.get());  // tunnel header templates for the workers
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

}  // namespace lb
