#include "dataplane/core/forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "dataplane/core/prefetch.h"
#include "dataplane/core/snake_names.h"

namespace lb {
namespace {

constexpr const char* kDropDescriptions[] = {
#define LB_DROP_DESC(name, desc) desc,
    LB_DROP_LIST(LB_DROP_DESC)
#undef LB_DROP_DESC
};
constexpr const char* kDropNames[] = {
#define LB_DROP_NAME(name, desc) #name,
    LB_DROP_LIST(LB_DROP_NAME)
#undef LB_DROP_NAME
};
static_assert(sizeof(kDropNames) / sizeof(kDropNames[0]) == static_cast<size_t>(Drop::kCount));

bool IsEchoRequest(const ParsedPacket& p) {
  return (p.l4_proto == IPPROTO_ICMP && p.flow.family == IpFamily::kIpv4 && p.icmp_type == 8) ||
         (p.l4_proto == IPPROTO_ICMPV6 && p.flow.family == IpFamily::kIpv6 && p.icmp_type == 128);
}

bool IsIcmp(const ParsedPacket& p) {
  return (p.l4_proto == IPPROTO_ICMP && p.flow.family == IpFamily::kIpv4) ||
         (p.l4_proto == IPPROTO_ICMPV6 && p.flow.family == IpFamily::kIpv6);
}

uint32_t IdleTimeout(const ParsedPacket& p, const NodeParams& node) {
  if (p.l4_proto == IPPROTO_TCP) {
    return (p.tcp_flags & (kTcpFin | kTcpRst)) ? node.tcp_closing_timeout_ms : node.tcp_timeout_ms;
  }
  return node.udp_timeout_ms;
}

// A flow's recorded backend still serves its VIP: known, of that VIP, not down.
bool Usable(const BackendEntry* b, const VipEntry& vip) {
  return b != nullptr && b->vip == vip.handle && b->state != BackendState::kDown;
}

// A TCP/UDP datagram to one of the node's full-NAT addresses and ports: a backend's reply.
bool ToNatAddress(const ParsedPacket& p, const NodeParams& node) {
  if ((p.l4_proto != IPPROTO_TCP && p.l4_proto != IPPROTO_UDP) || p.fragment != Fragment::kNone) {
    return false;
  }
  const std::vector<IpAddr>& addrs =
      p.flow.family == IpFamily::kIpv4 ? node.nat_addrs4 : node.nat_addrs6;
  bool ours = false;
  for (const IpAddr& a : addrs) ours |= a == p.flow.dst;
  const uint16_t port = ntohs(p.flow.dst_port);
  return ours && port >= node.nat_port_min && port <= node.nat_port_max;
}

void Count(std::vector<PacketBytes>& v, uint32_t handle, uint32_t len) {
  const uint32_t i = HandleIndex(handle);
  if (i < v.size()) {
    ++v[i].packets;
    v[i].bytes += len;
  }
}

}  // namespace

const char* DropName(Drop d) {
  static const auto* const kSnake = new SnakeNames<static_cast<size_t>(Drop::kCount)>(kDropNames);
  const size_t i = static_cast<size_t>(d);
  return i < static_cast<size_t>(Drop::kCount) ? kSnake->names[i] : "unknown";
}

const char* DropDescription(Drop d) {
  const size_t i = static_cast<size_t>(d);
  return i < static_cast<size_t>(Drop::kCount) ? kDropDescriptions[i] : "unknown";
}

const char* ForwardingModeName(ForwardingMode m) {
  switch (m) {
    case ForwardingMode::kDr:
      return "dr";
    case ForwardingMode::kTun:
      return "tun";
    case ForwardingMode::kGue:
      return "gue";
    case ForwardingMode::kNat:
      return "nat";
  }
  return "unknown";
}

Forwarder::Forwarder(const ForwarderConfig& config, ConnTable* conns, WorkerCounters* counters)
    : config_(config), conns_(conns), counters_(counters) {}

uint32_t Forwarder::NatPortOwner(const NodeParams& node, uint16_t port, uint32_t num_workers) {
  const uint32_t total = static_cast<uint32_t>(node.nat_port_max) - node.nat_port_min + 1;
  const uint32_t per = total / num_workers;
  if (per == 0 || port < node.nat_port_min) return 0;
  const uint32_t w = (port - node.nat_port_min) / per;
  return w < num_workers ? w : num_workers - 1;
}

inline Forwarder::Hint Forwarder::Classify(const ParsedPacket& p, const Snapshot& s) const {
  Hint h;
  if (p.status != ParseStatus::kOk || (p.l3 != L3Kind::kIpv4 && p.l3 != L3Kind::kIpv6)) {
    return h;
  }
  // p.flow.dst is the VIP both for packets to it and for ICMP errors about its flows. One probe
  // answers both "is this a VIP address" and "which VIP".
  const bool fragment = p.fragment != Fragment::kNone;
  h.vip = s.vip_table.Resolve(p.flow.dst, p.flow.family, p.flow.dst_port, p.flow.proto, fragment);
  if (h.vip == kNotVipAddress) {
    // A full-NAT reply looks up its reverse entry by its own key: load that bucket too.
    if ((!s.node.nat_addrs4.empty() || !s.node.nat_addrs6.empty()) && ToNatAddress(p, s.node)) {
      h.nat_reply = true;
      h.hash = FlowHash(p.flow);
    }
    return h;
  }
  if (fragment || p.icmp_error || (p.l4_proto != IPPROTO_TCP && p.l4_proto != IPPROTO_UDP)) {
    return h;
  }
  h.hash = FlowHash(p.flow);
  return h;
}

inline void Forwarder::PrefetchBuckets(uint32_t n) const {
  for (uint32_t i = 0; i < n; ++i) {
    if (hints_[i].hash != kNoHash) conns_->Prefetch(hints_[i].hash);
  }
}

void Forwarder::ProcessBurst(Frame* frames, uint32_t n, const Snapshot& s, uint32_t now_ms,
                             Action* actions) {
  // Each pass that starts loads into tables far larger than the caches is a loop of its own,
  // with no other work. Spread over the parse loop (80+ instructions per packet), the bucket
  // prefetches stalled it; most likely a prefetch whose address misses the TLB holds its place
  // in the reorder buffer until the page walk ends, leaving two or three walks in flight at a
  // time. Issued back to back, a burst's walks and misses overlap: 2^20 flows went from about
  // 110 to about 80 ns/packet (bench/README.md).
  if (s.vip_table.Large()) [[unlikely]] {
    // Many VIPs: their address slots and entries miss the caches too. Parse the whole burst,
    // start the slot loads, classify, and start the VIP entries' loads with the connection-
    // table entries'.
    for (uint32_t i = 0; i < n; ++i) {
      if (i + 1 < n) PrefetchRead(frames[i + 1].data);
      ParsePacket(frames[i].data, frames[i].len, &parsed_[i]);
    }
    for (uint32_t i = 0; i < n; ++i) {
      if (parsed_[i].l3 == L3Kind::kIpv4 || parsed_[i].l3 == L3Kind::kIpv6) {
        s.vip_table.Prefetch(parsed_[i].flow.dst, parsed_[i].flow.family);
      }
    }
    for (uint32_t i = 0; i < n; ++i) hints_[i] = Classify(parsed_[i], s);
    PrefetchBuckets(n);
    for (uint32_t i = 0; i < n; ++i) {
      PrefetchEntry(hints_[i]);
      if (hints_[i].vip < s.vips.size()) PrefetchRead(&s.vips[hints_[i].vip]);
    }
  } else {
    for (uint32_t i = 0; i < n; ++i) {
      if (i + 1 < n) PrefetchRead(frames[i + 1].data);
      ParsePacket(frames[i].data, frames[i].len, &parsed_[i]);
      hints_[i] = Classify(parsed_[i], s);
    }
    PrefetchBuckets(n);
    for (uint32_t i = 0; i < n; ++i) PrefetchEntry(hints_[i]);
  }
  if (s.has_nat_vip) PrefetchNatReverse(n, s, now_ms);
  for (uint32_t i = 0; i < n; ++i) {
    actions[i] = Decide(&frames[i], parsed_[i], s, now_ms, hints_[i]);
  }
}

void Forwarder::PrefetchNatReverse(uint32_t n, const Snapshot& s, uint32_t now_ms) const {
  for (uint32_t i = 0; i < n; ++i) {
    const Hint& h = hints_[i];
    if (h.hash == kNoHash || h.vip >= s.vips.size() || s.vips[h.vip].mode != ForwardingMode::kNat) {
      continue;
    }
    const ConnValue* v = conns_->Find(parsed_[i].flow, h.hash, now_ms);
    if (v != nullptr && (v->flags & kConnNat)) conns_->PrefetchSlot(v->rev_slot);
  }
}

Action Forwarder::Process(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms,
                          const Hint& h) {
  return Decide(f, p, s, now_ms, h);
}

Action Forwarder::Process(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms) {
  return Decide(f, p, s, now_ms, Classify(p, s));
}

inline Action Forwarder::Decide(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms,
                                const Hint& h) {
  if (p.status != ParseStatus::kOk) [[unlikely]] {
    ++counters_->parse_drops[static_cast<size_t>(p.status)];
    return DropWith(Drop::kMalformed);
  }
  // The uplink may be promiscuous (OSPF needs multicast, and some PMDs offer nothing finer): a
  // unicast frame for another host, flooded by the switch, must not be forwarded a second time.
  if (!(f->data[0] & 1) && std::memcmp(f->data, s.node.port_mac.bytes, 6) != 0) [[unlikely]] {
    return DropWith(Drop::kNotOurMac);
  }
  if (h.vip != kNotVipAddress) {
    if (h.hash != kNoHash && h.vip < s.vips.size()) [[likely]] {
      Action a;
      if (Established(f, p, s, s.vips[h.vip], h.hash, now_ms, &a)) return a;
    }
    return ToVip(f, p, s, now_ms, h.hash, h.vip);
  }
  if (h.nat_reply) return NatReply(f, p, s, now_ms, h.hash);
  ++counters_->to_kernel;
  return Action::kKernel;
}

inline bool Forwarder::Established(Frame* f, const ParsedPacket& p, const Snapshot& s,
                                   const VipEntry& vip, uint64_t hash, uint32_t now_ms, Action* a) {
  // FIN and RST change the flow's state: ToVip's Touch.
  const bool tcp = p.l4_proto == IPPROTO_TCP;
  if (tcp && (p.tcp_flags & (kTcpFin | kTcpRst))) return false;
  const uint32_t expires = now_ms + IdleTimeout(p, s.node);
  ConnValue* v = conns_->Lookup(p.flow, hash, now_ms, expires);
  if (v == nullptr) {
    // A new flow: Maglev's backend, inserted.
    ConnValue* entry = nullptr;
    const BackendEntry* b =
        NewFlow(vip, p.flow, hash, p, s, now_ms, /*track=*/true, nullptr, &entry, expires);
    *a = b != nullptr ? Send(f, p, s, vip, *b, p.flow, hash, entry, now_ms, expires)
                      : DropWith(Drop::kNoBackend);
    return true;
  }
  // A closing flow keeps its short timeout (Touch), a moved one is picked again (Pick). Both are
  // rare and take ToVip from the start, which looks the flow up a second time: the end state is
  // the same as ToVip alone (Touch sets the expiry again, Pick counts the repick).
  if (v->flags & kConnClosing) [[unlikely]]
    return false;
  const BackendEntry* b = s.Backend(v->backend);
  if (!Usable(b, vip)) [[unlikely]]
    return false;
  ++counters_->conn_hits;
  *a = Send(f, p, s, vip, *b, p.flow, hash, v, now_ms, expires);
  return true;
}

Action Forwarder::ToVip(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms,
                        uint64_t flow_hash, uint32_t vi) {
  if (IsIcmp(p) && !p.icmp_error) [[unlikely]] {
    if (IsEchoRequest(p) && MakeEchoReply(f, p)) {
      ++counters_->echo_replies;
      return Action::kUplink;
    }
    return DropWith(Drop::kIcmpToVip);
  }
  const bool fragment = p.fragment != Fragment::kNone;
  if (vi >= s.vips.size()) [[unlikely]]
    return DropWith(Drop::kNoService);  // kNoVip included
  const VipEntry& vip = s.vips[vi];
  if (vip.mode == ForwardingMode::kNat) {
    if (fragment) return DropWith(Drop::kNatFragment);
    if (p.icmp_error) return DropWith(Drop::kNatIcmpError);
  }
  const FlowKey* key = &p.flow;
  FlowKey fragment_key;
  if (fragment) [[unlikely]] {
    fragment_key = p.flow;
    fragment_key.src_port = 0;
    fragment_key.dst_port = 0;
    key = &fragment_key;
  }
  // Prefetch() hashed exactly this key for unfragmented TCP/UDP (the only packets it hashes).
  const uint64_t hash = flow_hash != kNoHash && !fragment ? flow_hash : FlowHash(*key);
  ConnValue* entry = nullptr;
  uint32_t expires = 0;
  // Fragments are never inserted (their key has no ports); ICMP errors only read the table: an
  // error must neither create a flow nor change its idle timeout.
  const BackendEntry* b =
      Pick(vip, *key, hash, p, s, now_ms, /*track=*/!fragment && !p.icmp_error, &entry, &expires);
  if (b == nullptr) [[unlikely]]
    return DropWith(Drop::kNoBackend);
  if (p.icmp_error) [[unlikely]]
    ++counters_->icmp_errors;
  return Send(f, p, s, vip, *b, *key, hash, entry, now_ms, expires);
}

inline ConnValue* Forwarder::Touch(const FlowKey& key, uint64_t hash, const ParsedPacket& p,
                                   const NodeParams& node, uint32_t now_ms, uint32_t* expires) {
  *expires = now_ms + IdleTimeout(p, node);
  ConnValue* v = conns_->Lookup(key, hash, now_ms, *expires);
  if (v == nullptr) return nullptr;
  if (p.l4_proto == IPPROTO_TCP && (p.tcp_flags & (kTcpFin | kTcpRst))) {
    v->flags |= kConnClosing;
  } else if (v->flags & kConnClosing) {
    // Once a FIN or RST was seen, the last ACKs must not buy the flow a full idle timeout.
    *expires = now_ms + node.tcp_closing_timeout_ms;
    conns_->SetExpiry(v, *expires);
  }
  return v;
}

inline const BackendEntry* Forwarder::Pick(const VipEntry& vip, const FlowKey& key, uint64_t hash,
                                           const ParsedPacket& p, const Snapshot& s,
                                           uint32_t now_ms, bool track, ConnValue** entry,
                                           uint32_t* expires) {
  ConnValue* v = nullptr;
  if (track) {
    v = Touch(key, hash, p, s.node, now_ms, expires);
  } else if (const ConnValue* c = conns_->Find(key, hash, now_ms)) {
    const BackendEntry* b = s.Backend(c->backend);
    if (Usable(b, vip)) {
      ++counters_->conn_hits;
      return b;
    }
  }
  if (v != nullptr) {
    const BackendEntry* b = s.Backend(v->backend);
    if (Usable(b, vip)) {
      ++counters_->conn_hits;
      *entry = v;
      return b;
    }
    ++counters_->conn_repicked;  // its backend left or failed: Maglev chooses again
    if (v->flags & kConnNat) ForgetNat(*v, key, s);
  }
  return NewFlow(vip, key, hash, p, s, now_ms, track, v, entry, *expires);
}

inline const BackendEntry* Forwarder::NewFlow(const VipEntry& vip, const FlowKey& key,
                                              uint64_t hash, const ParsedPacket& p,
                                              const Snapshot& s, uint32_t now_ms, bool track,
                                              const ConnValue* old, ConnValue** entry,
                                              uint32_t expires) {
  const uint32_t mi = vip.maglev ? vip.maglev->Lookup(hash) : kMaglevNoBackend;
  if (mi == kMaglevNoBackend || mi >= vip.backends.size()) return nullptr;
  const BackendEntry& b = s.backends[vip.backends[mi]];
  if (track) {
    if (old == nullptr) ++counters_->conn_misses;
    ConnValue nv;
    nv.vip = vip.handle;
    nv.backend = b.handle;
    if (p.l4_proto == IPPROTO_TCP && (p.tcp_flags & (kTcpFin | kTcpRst))) {
      nv.flags = kConnClosing;
    }
    *entry = conns_->Insert(key, hash, nv, now_ms, expires);
  }
  return &b;
}

void Forwarder::ForgetNat(const ConnValue& v, const FlowKey& key, const Snapshot& s) {
  // The reverse entry of the flow's previous backend, if that backend is still known: late
  // packets from it must not reach the client, and its port is free again.
  const BackendEntry* old = s.Backend(v.backend);
  const std::vector<IpAddr>& addrs =
      key.family == IpFamily::kIpv4 ? s.node.nat_addrs4 : s.node.nat_addrs6;
  if (old == nullptr || v.nat_addr >= addrs.size()) return;
  FlowKey rev;
  rev.family = key.family;
  rev.proto = key.proto;
  rev.src = old->addr;
  rev.dst = addrs[v.nat_addr];
  rev.src_port = old->port != 0 ? old->port : key.dst_port;
  rev.dst_port = v.nat_port;
  conns_->Erase(rev, FlowHash(rev));
}

// Out of line: VLAN-tagged frames, GUE over IPv6, snapshots without templates.
__attribute__((noinline)) Action Forwarder::SendTunnelGeneral(Frame* f, const ParsedPacket& p,
                                                              const Snapshot& s,
                                                              const VipEntry& vip,
                                                              const BackendEntry& b,
                                                              uint64_t hash) {
  TunnelParams t;
  t.src_mac = s.node.port_mac;
  t.dst_mac = b.next_hop_mac;
  t.outer_family = b.family;
  const bool v4 = b.family == IpFamily::kIpv4;
  if (v4 ? !s.node.has_tunnel_src4 : !s.node.has_tunnel_src6) {
    return DropWith(Drop::kNoTunnelSource);
  }
  t.outer_src = v4 ? s.node.tunnel_src4 : s.node.tunnel_src6;
  t.outer_dst = b.addr;
  t.gue = vip.mode == ForwardingMode::kGue;
  t.gue_dst_port = s.node.gue_port;
  t.flow_hash = hash;
  if (!EncapTunnel(f, p, t)) return DropWith(Drop::kEncapFailed);
  return Action::kUplink;
}

// Full NAT: the reverse entry's upkeep and the address and port rewrite. Out of line, so that
// the other modes' path stays short.
__attribute__((noinline)) Action Forwarder::SendNat(Frame* f, const ParsedPacket& p,
                                                    const Snapshot& s, const VipEntry& vip,
                                                    const BackendEntry& b, const FlowKey& key,
                                                    uint64_t hash, ConnValue* entry,
                                                    uint32_t now_ms, uint32_t expires) {
  const std::vector<IpAddr>& addrs =
      p.flow.family == IpFamily::kIpv4 ? s.node.nat_addrs4 : s.node.nat_addrs6;
  if (addrs.empty()) return DropWith(Drop::kNoNatAddress);
  if (p.ttl <= 1) return DropWith(Drop::kTtlExceeded);
  const uint16_t backend_port = b.port != 0 ? b.port : p.flow.dst_port;
  if (entry == nullptr) return DropWith(Drop::kNatPortsExhausted);  // not reached: NAT tracks
  FlowKey rev;
  rev.family = key.family;
  rev.proto = key.proto;
  rev.src = b.addr;
  rev.src_port = backend_port;
  bool allocate =
      !(entry->flags & kConnNat) || entry->backend != b.handle || entry->nat_addr >= addrs.size();
  // A TCP session the backend has not answered yet (a SYN, maybe spoofed) holds its port for
  // the short timeout only, so unanswered SYNs cannot pin the port range for minutes.
  const uint32_t unanswered = now_ms + s.node.tcp_closing_timeout_ms;
  const bool tcp = key.proto == IPPROTO_TCP;
  uint32_t rev_expires = expires;
  if (!allocate) {
    // Keep the reverse entry as fresh as the forward one (one-way flows included). If it was
    // evicted and its port given to another flow meanwhile, this flow needs a new port.
    rev.dst = addrs[entry->nat_addr];
    rev.dst_port = entry->nat_port;
    const uint64_t rh = FlowHash(rev);
    const ConnValue* found = conns_->Find(rev, rh, now_ms);
    if (found == nullptr) {
      ConnValue rv;
      rv.vip = vip.handle;
      rv.flags = kConnReverse | (entry->flags & kConnClosing);
      rv.nat_port = key.src_port;
      rv.client = key.src;
      if (tcp) rev_expires = std::min(expires, unanswered);
      entry->rev_slot =
          conns_->SlotOf(conns_->Insert(rev, rh, rv, now_ms, rev_expires, nullptr, entry));
      ++counters_->nat_reverse_restored;
    } else if (!(found->flags & kConnReverse) || found->client != key.src ||
               found->nat_port != key.src_port) {
      ++counters_->nat_reallocated;
      allocate = true;
    } else {
      if (tcp && !(found->flags & kConnReplied)) rev_expires = std::min(expires, unanswered);
      conns_->SetExpiry(found, rev_expires);
    }
  } else if (tcp) {
    rev_expires = std::min(expires, unanswered);
  }
  if (allocate) {
    const uint32_t ai = static_cast<uint32_t>((hash >> 32) % addrs.size());
    uint16_t port;
    uint32_t rev_slot;
    if (!AllocateNatPort(s, vip, b, key, addrs[ai], backend_port, now_ms, rev_expires, entry, &port,
                         &rev_slot)) {
      return DropWith(Drop::kNatPortsExhausted);
    }
    entry->flags |= kConnNat;
    entry->backend = b.handle;
    entry->nat_addr = ai;
    entry->nat_port = port;
    entry->rev_slot = rev_slot;
  }
  if (rev_expires != expires) conns_->SetExpiry(entry, rev_expires);
  NatParams n;
  n.family = p.flow.family;
  n.src_mac = s.node.port_mac;
  n.dst_mac = b.next_hop_mac;
  n.new_src = addrs[entry->nat_addr];
  n.new_dst = b.addr;
  n.new_src_port = entry->nat_port;
  n.new_dst_port = backend_port;
  if (!RewriteNat(f, p, n)) return DropWith(Drop::kMalformed);
  return Action::kUplink;
}

inline Action Forwarder::Send(Frame* f, const ParsedPacket& p, const Snapshot& s,
                              const VipEntry& vip, const BackendEntry& b, const FlowKey& key,
                              uint64_t hash, ConnValue* entry, uint32_t now_ms, uint32_t expires) {
  if (!b.resolved) [[unlikely]]
    return DropWith(Drop::kNoNeighbor);
  const uint32_t len = f->len;
  switch (vip.mode) {
    case ForwardingMode::kDr:
      RewriteDr(f, s.node.port_mac, b.next_hop_mac);
      break;
    case ForwardingMode::kTun:
    case ForwardingMode::kGue:
      // The backend's precomputed outer header, for untagged frames (nearly all of them).
      // A VIP matched, so the parse was ok and found IPv4/IPv6 (Classify): what
      // EncapTunnelParsed needs of p, with no VLAN tag.
      if (b.tunnel.kind != TunnelKind::kNone && p.vlan_count == 0) [[likely]] {
        if (!EncapTunnelParsed(f, p, b.tunnel, hash)) return DropWith(Drop::kEncapFailed);
      } else if (SendTunnelGeneral(f, p, s, vip, b, hash) == Action::kDrop) {
        return Action::kDrop;
      }
      break;
    case ForwardingMode::kNat:
      if (SendNat(f, p, s, vip, b, key, hash, entry, now_ms, expires) == Action::kDrop) {
        return Action::kDrop;
      }
      break;
  }
  Count(counters_->vips, vip.handle, len);
  Count(counters_->backends, b.handle, len);
  ++counters_->to_backend;
  return Action::kUplink;
}

bool Forwarder::AllocateNatPort(const Snapshot& s, const VipEntry& vip, const BackendEntry& b,
                                const FlowKey& key, const IpAddr& nat_addr, uint16_t backend_port,
                                uint32_t now_ms, uint32_t expires, const ConnValue* keep,
                                uint16_t* port, uint32_t* rev_slot) {
  // This worker's share of the port range, so that a reply tells by its port which worker owns
  // the session.
  const uint32_t total = static_cast<uint32_t>(s.node.nat_port_max) - s.node.nat_port_min + 1;
  const uint32_t per = total / config_.num_workers;
  if (per == 0) return false;
  const uint32_t lo = s.node.nat_port_min + config_.worker_id * per;
  const uint32_t n =
      config_.worker_id + 1 == config_.num_workers ? total - config_.worker_id * per : per;
  FlowKey rev;
  rev.family = key.family;
  rev.proto = key.proto;
  rev.src = b.addr;
  rev.dst = nat_addr;
  rev.src_port = backend_port;
  // Bounded work per new flow: a few candidates, then give up (counted by the caller).
  for (int attempt = 0; attempt < 16; ++attempt) {
    const uint16_t candidate = static_cast<uint16_t>(lo + nat_cursor_++ % n);
    rev.dst_port = htons(candidate);
    const uint64_t h = FlowHash(rev);
    if (conns_->Find(rev, h, now_ms) != nullptr) continue;
    ConnValue rv;
    rv.vip = vip.handle;
    rv.flags = kConnReverse | (keep != nullptr ? (keep->flags & kConnClosing) : 0);
    rv.nat_port = key.src_port;
    rv.client = key.src;
    // The forward entry is held by the caller: this insert must not evict it.
    *rev_slot = conns_->SlotOf(conns_->Insert(rev, h, rv, now_ms, expires, nullptr, keep));
    *port = rev.dst_port;
    return true;
  }
  return false;
}

Action Forwarder::NatReply(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms,
                           uint64_t hash) {
  const uint16_t port = ntohs(p.flow.dst_port);
  const uint32_t owner = NatPortOwner(s.node, port, config_.num_workers);
  if (owner != config_.worker_id) {
    handoff_worker_ = owner;
    ++counters_->handoffs;
    return Action::kHandoff;
  }
  const FlowKey& key = p.flow;
  uint32_t expires;
  ConnValue* v = Touch(key, hash, p, s.node, now_ms, &expires);
  const VipEntry* vip = v != nullptr && (v->flags & kConnReverse) ? s.Vip(v->vip) : nullptr;
  if (vip == nullptr) return DropWith(Drop::kNatNoSession);
  v->flags |= kConnReplied;
  const bool v4 = p.flow.family == IpFamily::kIpv4;
  if (v4 ? !s.node.has_gateway_mac4 : !s.node.has_gateway_mac6) {
    return DropWith(Drop::kNoNeighbor);
  }
  if (p.ttl <= 1) return DropWith(Drop::kTtlExceeded);
  NatParams n;
  n.family = p.flow.family;
  n.src_mac = s.node.port_mac;
  n.dst_mac = v4 ? s.node.gateway_mac4 : s.node.gateway_mac6;
  n.new_src = vip->key.addr;
  n.new_dst = v->client;
  // An all-ports VIP keeps the client's port toward the backend, so the reply's source port is
  // the VIP port the client used.
  n.new_src_port = vip->key.port != 0 ? vip->key.port : p.flow.src_port;
  n.new_dst_port = v->nat_port;
  if (!RewriteNat(f, p, n)) return DropWith(Drop::kMalformed);
  ++counters_->nat_replies;
  return Action::kUplink;
}

}  // namespace lb
