// Forwarder: the per-packet decision of one worker, DPDK-free. Given a parsed frame and the
// current snapshot it decides: forward to a backend (rewritten for the VIP's mode), answer (ICMP
// echo to a VIP), hand to the kernel (exception path), hand to another worker (full-NAT reply
// owned by it), or drop with a counted reason. Owned by one worker thread, like its connection
// table and counters; never blocks, allocates or throws.
//
// Flow rules (per VIP, TCP/UDP):
//  - a connection-table hit keeps the flow's backend while that backend exists and is not down
//    (a draining backend keeps its flows);
//  - a miss, whatever the TCP flags, picks the backend by Maglev on the flow hash and inserts the
//    flow: a mid-stream packet that ECMP moved here from another node lands on the backend that
//    node chose, because every node builds the same Maglev table;
//  - fragments (which carry no ports after the first) are hashed on addresses and protocol alone,
//    so every fragment of a datagram reaches the same backend; they are not inserted;
//  - ICMP errors about a VIP flow follow that flow (table lookup without insert, else Maglev).
#ifndef LBNODE_DATAPLANE_CORE_FORWARDER_H_
#define LBNODE_DATAPLANE_CORE_FORWARDER_H_

#include <cstdint>
#include <vector>

#include "dataplane/core/conn_table.h"
#include "dataplane/core/packet_parser.h"
#include "dataplane/core/rewrite.h"
#include "dataplane/core/snapshot.h"
#include "dataplane/core/vip_table.h"

namespace lb {

// X-macro: name, description. Append only (counter and metric names).
#define LB_DROP_LIST(X)                                                                   \
  X(kMalformed, "malformed packet (see the parse drop counters for the header at fault)") \
  X(kNoService, "to a VIP address, but no VIP serves that port and protocol")             \
  X(kNoBackend, "VIP has no backend that can take a new flow")                            \
  X(kNoNeighbor, "next-hop MAC of the backend (or gateway) not resolved yet")             \
  X(kTtlExceeded, "TTL or hop limit would reach zero (full NAT routes the packet)")       \
  X(kNatFragment, "fragment for a full-NAT VIP (ports cannot be rewritten)")              \
  X(kNatIcmpError, "ICMP error about a full-NAT flow (inner rewrite not supported)")      \
  X(kNatPortsExhausted, "no free full-NAT source port")                                   \
  X(kNoNatAddress, "full-NAT VIP of a family without a NAT source address")               \
  X(kNoTunnelSource, "no node address of the backend's family for the tunnel")            \
  X(kEncapFailed, "encapsulation did not fit (headroom or 64 KiB limit)")                 \
  X(kIcmpToVip, "ICMP to a VIP that is neither an echo request nor an error")             \
  X(kMultiSegment, "multi-segment packet (not supported by the rewrites)")                \
  X(kTxFull, "transmit queue full")                                                       \
  X(kHandoffFull, "ring to the worker owning a full-NAT flow was full")                   \
  X(kNatNoSession, "to a full-NAT source address and port, but no session owns it")       \
  X(kNotOurMac, "unicast frame for another MAC (flooded by the switch): not ours to forward")

enum class Drop : uint8_t {
#define LB_DROP_ENUM(name, desc) name,
  LB_DROP_LIST(LB_DROP_ENUM)
#undef LB_DROP_ENUM
      kCount
};
const char* DropName(Drop d);  // snake_case, e.g. "no_backend"
const char* DropDescription(Drop d);

struct PacketBytes {
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// Plain counters of one worker; the control thread sums them across workers (reads may be torn
// by one increment, which statistics tolerate). rx_* are counted by the worker loop, once per
// packet taken from a port (a packet handed to another worker is not counted again).
struct WorkerCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t to_backend = 0;    // forwarded to a backend (all modes)
  uint64_t to_kernel = 0;     // handed to the exception path
  uint64_t from_kernel = 0;   // sent by the kernel out of the uplink
  uint64_t echo_replies = 0;  // ICMP echo requests to VIPs answered
  uint64_t icmp_errors = 0;   // ICMP errors forwarded to a flow's backend
  uint64_t nat_replies = 0;   // full-NAT replies rewritten back toward the client
  uint64_t handoffs = 0;      // packets given to the worker that owns their flow
  uint64_t conn_hits = 0;
  uint64_t conn_misses = 0;           // new flows (inserted)
  uint64_t conn_repicked = 0;         // hits whose backend was gone or down: moved by Maglev
  uint64_t nat_reverse_restored = 0;  // full-NAT reverse entries put back after an eviction
  uint64_t nat_reallocated = 0;       // full-NAT flows whose port another flow took meanwhile
  uint64_t drops[static_cast<size_t>(Drop::kCount)] = {};
  uint64_t parse_drops[static_cast<size_t>(ParseStatus::kCount)] = {};
  std::vector<PacketBytes> vips;      // by HandleIndex(vip handle)
  std::vector<PacketBytes> backends;  // by HandleIndex(backend handle)

  WorkerCounters(size_t max_vips, size_t max_backends) : vips(max_vips), backends(max_backends) {}
  void AddDrop(Drop d) { ++drops[static_cast<size_t>(d)]; }
};

enum class Action : uint8_t {
  kDrop,     // counted already
  kUplink,   // transmit the (rewritten) frame on the uplink
  kKernel,   // hand the frame, unchanged, to the exception path
  kHandoff,  // give the frame to worker handoff_worker(), which owns the flow's state
};

struct ForwarderConfig {
  uint32_t worker_id = 0;
  uint32_t num_workers = 1;
};

class Forwarder {
 public:
  Forwarder(const ForwarderConfig& config, ConnTable* conns, WorkerCounters* counters);

  static constexpr uint64_t kNoHash = 0;
  // Frames per ProcessBurst call (a DPDK burst).
  static constexpr uint32_t kMaxBurst = 32;

  // What the first pass over a burst learns about a packet, for the last pass.
  struct Hint {
    // Flow hash of a plain TCP/UDP packet to a VIP address, or of a full-NAT reply.
    uint64_t hash = kNoHash;
    uint32_t vip = kNotVipAddress;  // VipTable::Resolve's answer (kNotVipAddress: not IP either)
    bool nat_reply = false;         // to a full-NAT address and port (ToNatAddress); `hash` set
  };

  // First stage of a burst: resolves the packet's VIP and, for a plain (unfragmented, non-ICMP)
  // TCP/UDP packet to a VIP address, computes its flow hash; likewise for a full-NAT reply
  // (TCP/UDP to a NAT address and port), hashed for the reverse entry it looks up. Other traffic
  // for the kernel is neither hashed nor looked up. Inlined into ProcessBurst's first pass.
  [[gnu::always_inline]] Hint Classify(const ParsedPacket& p, const Snapshot& s) const;
  // After PrefetchBuckets: by now the bucket lines have arrived; starts loading each flow's entry
  // line, so that these misses overlap too.
  void PrefetchEntry(const Hint& h) const {
    if (h.hash != kNoHash) conns_->PrefetchEntry(h.hash);
  }
  // Decides what to do with one frame and rewrites it accordingly. `p` is the frame's parse and
  // `h` its Classify (for the same snapshot). `now_ms` is a millisecond clock (wraps).
  Action Process(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms,
                 const Hint& h);
  // The same, classifying the packet itself.
  Action Process(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms);

  // The worker's whole decision for up to kMaxBurst frames, in passes: parse and Classify every
  // frame, start every hashed packet's bucket load, PrefetchEntry every one, then Process each.
  // actions[i] is frames[i]'s; the frames are rewritten in place (data, len and headroom change
  // with encapsulation).
  void ProcessBurst(Frame* frames, uint32_t n, const Snapshot& s, uint32_t now_ms, Action* actions);

  uint32_t handoff_worker() const { return handoff_worker_; }

  // The worker that owns full-NAT port `port` (host order) under `node`'s port range.
  static uint32_t NatPortOwner(const NodeParams& node, uint16_t port, uint32_t num_workers);

 private:
  // Process's body, inlined into ProcessBurst's last pass (no call per packet).
  [[gnu::always_inline]] Action Decide(Frame* f, const ParsedPacket& p, const Snapshot& s,
                                       uint32_t now_ms, const Hint& h);
  // Established TCP/UDP flow of a non-closing packet whose backend is still usable: the common
  // case, with none of ToVip's checks for ICMP, fragments and moved flows. Sets *a and returns
  // true, or returns false having changed nothing but the entry's expiry (ToVip decides).
  [[gnu::always_inline]] bool Established(Frame* f, const ParsedPacket& p, const Snapshot& s,
                                          const VipEntry& vip, uint64_t hash, uint32_t now_ms,
                                          Action* a);
  // `vi` is the VipTable::Resolve answer for the packet (not kNotVipAddress).
  Action ToVip(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms,
               uint64_t flow_hash, uint32_t vi);
  // A packet Classify found to be a full-NAT reply; `hash` is its FlowHash.
  Action NatReply(Frame* f, const ParsedPacket& p, const Snapshot& s, uint32_t now_ms,
                  uint64_t hash);
  // ProcessBurst's pass after Classify: starts the bucket load of every packet Classify hashed,
  // so that the misses of a whole burst overlap (ProcessBurst says why in a loop of its own).
  [[gnu::always_inline]] void PrefetchBuckets(uint32_t n) const;
  // ProcessBurst's pass between PrefetchEntry and Process when the snapshot has full-NAT VIPs:
  // reads each full-NAT flow's forward entry (requested by the pass before) and starts loading
  // the reverse entry it records, which SendNat then reads and refreshes.
  void PrefetchNatReverse(uint32_t n, const Snapshot& s, uint32_t now_ms) const;
  // Picks the backend of a flow: table hit, else Maglev (+ insert when `insert`).
  // With `track`, looks the flow up (refreshing it) and inserts it on a miss; without, only
  // reads the table. Sets *entry (tracked flows) and *expires.
  // Pick, Touch and Send are inlined into ToVip: one straight path per packet, without the
  // register saves of three more calls. Their rare branches call out of line.
  [[gnu::always_inline]] const BackendEntry* Pick(const VipEntry& vip, const FlowKey& key,
                                                  uint64_t hash, const ParsedPacket& p,
                                                  const Snapshot& s, uint32_t now_ms, bool track,
                                                  ConnValue** entry, uint32_t* expires);
  // Maglev's backend for a flow the table does not hold (or holds with a backend gone), inserted
  // when `track`; `old` is the entry being replaced, if any.
  [[gnu::always_inline]] const BackendEntry* NewFlow(const VipEntry& vip, const FlowKey& key,
                                                     uint64_t hash, const ParsedPacket& p,
                                                     const Snapshot& s, uint32_t now_ms, bool track,
                                                     const ConnValue* old, ConnValue** entry,
                                                     uint32_t expires);
  // Lookup with the idle timeout this packet earns; FIN/RST make the short timeout stick.
  [[gnu::always_inline]] ConnValue* Touch(const FlowKey& key, uint64_t hash, const ParsedPacket& p,
                                          const NodeParams& node, uint32_t now_ms,
                                          uint32_t* expires);
  // Removes the full-NAT reverse entry of a flow that is moving to another backend.
  void ForgetNat(const ConnValue& v, const FlowKey& key, const Snapshot& s);
  [[gnu::always_inline]] Action Send(Frame* f, const ParsedPacket& p, const Snapshot& s,
                                     const VipEntry& vip, const BackendEntry& b, const FlowKey& key,
                                     uint64_t hash, ConnValue* entry, uint32_t now_ms,
                                     uint32_t expires);
  Action SendTunnelGeneral(Frame* f, const ParsedPacket& p, const Snapshot& s, const VipEntry& vip,
                           const BackendEntry& b, uint64_t hash);
  Action SendNat(Frame* f, const ParsedPacket& p, const Snapshot& s, const VipEntry& vip,
                 const BackendEntry& b, const FlowKey& key, uint64_t hash, ConnValue* entry,
                 uint32_t now_ms, uint32_t expires);
  // Picks a free full-NAT port of this worker's share and inserts the reverse entry, never
  // evicting `keep` (the caller's forward entry); *rev_slot tells where it went.
  bool AllocateNatPort(const Snapshot& s, const VipEntry& vip, const BackendEntry& b,
                       const FlowKey& key, const IpAddr& nat_addr, uint16_t backend_port,
                       uint32_t now_ms, uint32_t expires, const ConnValue* keep, uint16_t* port,
                       uint32_t* rev_slot);
  Action DropWith(Drop d) {
    counters_->AddDrop(d);
    return Action::kDrop;
  }

  ForwarderConfig config_;
  ConnTable* conns_;
  WorkerCounters* counters_;
  uint32_t handoff_worker_ = 0;
  uint32_t nat_cursor_ = 0;
  // ProcessBurst's per-packet state between its passes.
  ParsedPacket parsed_[kMaxBurst];
  Hint hints_[kMaxBurst];
};

// Connection-table flags.
inline constexpr uint16_t kConnNat = 1;      // forward entry of a full-NAT flow
inline constexpr uint16_t kConnReverse = 2;  // full-NAT reverse entry
inline constexpr uint16_t kConnClosing = 4;  // FIN or RST seen: short idle timeout from now on
inline constexpr uint16_t kConnReplied = 8;  // full-NAT reverse entry: the backend has answered

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_FORWARDER_H_
