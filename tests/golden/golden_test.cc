// Golden pcap tests (YANET style). Each folder under tests/golden/cases/ is one case, and one test
// named after the folder (Golden.Case/<folder>):
//   case.textproto      lb.golden.GoldenCase: config, expected counters, masking options
//   send.pcap           what the network sends to the node's uplink, in order
//   expect.pcap         what must leave the uplink, in order
//   expect_kernel.pcap  what must reach the exception path, in order (absent: nothing)
//   gen.py              writes the three pcaps with scapy (tests/golden/regen.sh runs them all)
//
// Per case the runner creates two net_pcap ports at run time: the uplink replays send.pcap and
// records out.pcap, the exception port replays an empty pcap and records kernel.pcap. A real
// Dataplane (one worker) starts between them with the case's snapshot already in place, so the
// first packet sees the config. Once the worker has taken in every packet of send.pcap the
// ports are closed (which flushes the recordings), and the recordings are compared with the
// expectations: same number of packets, same bytes, except for the masked fields below. Every
// drop counter and parse-drop counter must equal the case's expect_drops / expect_parse_drops
// (unlisted: zero), and the counters listed in expect_counters must match.
//
// Masked fields: values that depend on the flow hash, which scapy cannot compute. The runner finds
// them by parsing the *expected* packet (Ethernet, up to two VLAN tags, the outer IP header) and
// applies the mask to both packets; each masked field is then checked for sanity instead:
//   (a) GUE UDP source port, only when the case sets mask_gue_source_port: the two bytes of the
//       source port of an expected packet whose outer IP header carries UDP to the node's GUE
//       port (node.gue_port, default 6080). Checked: 49152 <= port <= 65535.
//   (b) IPv6 outer flow label: the low 20 bits of the first 4 bytes of the outer IPv6 header
//       (byte 1 low nibble, bytes 2-3; version and traffic class are still compared) of an
//       expected packet that is a tunnel packet the node built: next header 4 (IPv4) or 41
//       (IPv6), or GUE as in (a). Other IPv6 packets (DR, NAT, echo replies) keep the sender's
//       label, which is compared. Checked: for IPv6 GUE the label's top 4 bits equal the low 4
//       bits of (source port - 49152) (label = hash & 0xfffff, port = 49152 + (hash >> 16) %
//       16384: bits 16..19 of the same hash).
//   (c) UDP checksum of IPv6-outer GUE (it covers the masked port and label): the two checksum
//       bytes. Checked: non-zero and valid over the received packet (pseudo-header included).
// Also checked for (a) and (b): packets of one flow (the inner packet's 5-tuple; addresses and
// protocol for fragments; an ICMP error counts as the flow it quotes, reversed) carry the same
// source port and the same flow label.
#include <pcap/pcap.h>
#include <rte_bus_vdev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "control/snapshot_builder.h"
#include "dataplane/core/forwarder.h"
#include "dataplane/core/packet_parser.h"
#include "dataplane/dpdk/dataplane.h"
#include "golden_case.pb.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/pipeline/harness.h"

namespace lb::golden {
namespace {

namespace fs = std::filesystem;
using Packet = std::vector<uint8_t>;

constexpr auto kRxTimeout = std::chrono::seconds(5);
constexpr auto kSettle = std::chrono::milliseconds(50);
constexpr uint16_t kGueSrcPortMin = 49152;
constexpr uint16_t kGueDefaultDstPort = 6080;
constexpr size_t kMaxDumpedPackets = 16;

// ---------------------------------------------------------------------------------------------
// Case files.

bool ValidTestName(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Case folders (those holding a case.textproto), sorted. Runs at static-initialisation time.
std::vector<std::string> ListCases() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(LB_GOLDEN_DIR, ec)) {
    if (e.is_directory() && fs::exists(e.path() / "case.textproto")) {
      names.push_back(e.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    absl::StrAppend(&errors_, "  line ", line + 1, ":", column + 1, ": ", message, "\n");
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    AddError(line, column, "warning: " + message);
  }
  const std::string& errors() const { return errors_; }

 private:
  std::string errors_;
};

absl::Status LoadCase(const fs::path& path, GoldenCase* c) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text.str(), c)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), " is not a valid lb.golden.GoldenCase:\n", errors.errors()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Packet>> ReadPcap(const fs::path& path) {
  char err[PCAP_ERRBUF_SIZE] = "";
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (p == nullptr) return absl::NotFoundError(absl::StrCat(path.string(), ": ", err));
  if (pcap_datalink(p) != DLT_EN10MB) {
    pcap_close(p);
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not an Ethernet pcap"));
  }
  std::vector<Packet> out;
  struct pcap_pkthdr* h;
  const u_char* d;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
    if (h->caplen != h->len) {
      pcap_close(p);
      return absl::InvalidArgumentError(absl::StrCat(path.string(), ": packet #", out.size(),
                                                     " was captured short (", h->caplen, " of ",
                                                     h->len, " bytes)"));
    }
    out.emplace_back(d, d + h->caplen);
  }
  absl::Status st = absl::OkStatus();
  if (rc == PCAP_ERROR) st = absl::DataLossError(absl::StrCat(path.string(), ": ", pcap_geterr(p)));
  pcap_close(p);
  if (!st.ok()) return st;
  return out;
}

absl::Status WriteEmptyPcap(const fs::path& path) {
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
  if (dead == nullptr) return absl::InternalError("pcap_open_dead failed");
  pcap_dumper_t* dumper = pcap_dump_open(dead, path.c_str());
  if (dumper == nullptr) {
    const std::string e = pcap_geterr(dead);
    pcap_close(dead);
    return absl::InternalError(absl::StrCat(path.string(), ": ", e));
  }
  pcap_dump_close(dumper);
  pcap_close(dead);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Packet layout, masks and sanity checks.

uint16_t Rd16(const Packet& p, size_t off) {
  return static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
}

bool IsVlanType(uint16_t t) { return t == 0x8100 || t == 0x88a8 || t == 0x9100; }

// A flow as the dataplane hashes it, as text (for grouping packets of one flow).
struct FlowText {
  int family = 0;
  int proto = 0;
  std::string src, dst;  // hex
  int sport = 0, dport = 0;
  std::string Text() const {
    return absl::StrCat("IPv", family, " proto ", proto, " ", src, ":", sport, " -> ", dst, ":",
                        dport);
  }
};

std::string Hex(const Packet& p, size_t off, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    char b[3];
    std::snprintf(b, sizeof(b), "%02x", p[off + i]);
    s += b;
  }
  return s;
}

// The flow of the IP packet at `off` (fragments: no ports; ICMP errors: the quoted flow,
// reversed), or nullopt when the bytes are too short to tell.
std::optional<FlowText> FlowAt(const Packet& p, size_t off, int depth = 0) {
  if (off >= p.size()) return std::nullopt;
  FlowText f;
  size_t l4;
  bool fragment = false;
  if ((p[off] >> 4) == 4) {
    if (p.size() < off + 20) return std::nullopt;
    f.family = 4;
    f.proto = p[off + 9];
    f.src = Hex(p, off + 12, 4);
    f.dst = Hex(p, off + 16, 4);
    fragment = (Rd16(p, off + 6) & 0x3fff) != 0;  // MF or an offset
    l4 = off + static_cast<size_t>(p[off] & 0x0f) * 4;
  } else if ((p[off] >> 4) == 6) {
    if (p.size() < off + 40) return std::nullopt;
    f.family = 6;
    f.proto = p[off + 6];
    f.src = Hex(p, off + 8, 16);
    f.dst = Hex(p, off + 24, 16);
    l4 = off + 40;
    if (f.proto == 44 && p.size() >= l4 + 8) {
      fragment = true;
      f.proto = p[l4];
      l4 += 8;
    }
  } else {
    return std::nullopt;
  }
  if (fragment) return f;
  const bool icmp_error =
      l4 + 8 < p.size() &&
      ((f.family == 4 && f.proto == 1 && (p[l4] == 3 || p[l4] == 11 || p[l4] == 12)) ||
       (f.family == 6 && f.proto == 58 && p[l4] >= 1 && p[l4] <= 4));
  if (icmp_error && depth == 0) {
    std::optional<FlowText> inner = FlowAt(p, l4 + 8, 1);
    if (!inner) return std::nullopt;
    std::swap(inner->src, inner->dst);
    std::swap(inner->sport, inner->dport);
    return inner;
  }
  if ((f.proto == 6 || f.proto == 17) && p.size() >= l4 + 4) {
    f.sport = Rd16(p, l4);
    f.dport = Rd16(p, l4 + 2);
  }
  return f;
}

// Which bits of an expected packet are compared, and where its masked fields are.
struct Mask {
  std::vector<uint8_t> bits;         // per byte: the bits compared (0xff: all)
  std::optional<size_t> ipv6_label;  // (b): offset of the outer IPv6 header
  std::optional<size_t> gue_udp;     // (a): offset of the GUE UDP header
  bool gue_checksum = false;         // (c): the GUE UDP checksum is masked (IPv6 outer)
  std::optional<FlowText> flow;      // the inner packet's flow
};

Mask MaskFor(const Packet& e, const GoldenCase& c) {
  Mask m;
  m.bits.assign(e.size(), 0xff);
  if (e.size() < 14) return m;
  size_t off = 14;
  uint16_t type = Rd16(e, 12);
  for (int tags = 0; IsVlanType(type) && tags < 2 && e.size() >= off + 4; ++tags) {
    type = Rd16(e, off + 2);
    off += 4;
  }
  size_t l4;
  uint8_t proto;
  const bool v6 = type == 0x86dd;
  if (type == 0x0800 && e.size() >= off + 20 && (e[off] >> 4) == 4) {
    proto = e[off + 9];
    l4 = off + static_cast<size_t>(e[off] & 0x0f) * 4;
  } else if (v6 && e.size() >= off + 40 && (e[off] >> 4) == 6) {
    proto = e[off + 6];
    l4 = off + 40;
  } else {
    return m;
  }
  const uint16_t gue_port =
      c.node().gue_port() != 0 ? static_cast<uint16_t>(c.node().gue_port()) : kGueDefaultDstPort;
  const bool gue =
      c.mask_gue_source_port() && proto == 17 && e.size() >= l4 + 8 && Rd16(e, l4 + 2) == gue_port;
  if (!gue && proto != 4 && proto != 41) return m;
  if (v6) {
    m.bits[off + 1] = 0xf0;  // traffic class low nibble compared, label's top 4 bits masked
    m.bits[off + 2] = 0;
    m.bits[off + 3] = 0;
    m.ipv6_label = off;
  }
  if (gue) {
    m.bits[l4] = 0;
    m.bits[l4 + 1] = 0;
    m.gue_udp = l4;
    if (v6) {
      m.bits[l4 + 6] = 0;
      m.bits[l4 + 7] = 0;
      m.gue_checksum = true;
    }
  }
  m.flow = FlowAt(e, gue ? l4 + 8 : l4);
  return m;
}

// One's complement sum over the UDP datagram at `udp` and the IPv6 pseudo-header of `ip6`.
bool Ipv6UdpChecksumValid(const Packet& a, size_t ip6, size_t udp, std::string* why) {
  if (a.size() < udp + 8) {
    *why = "UDP header cut short";
    return false;
  }
  const size_t len = Rd16(a, udp + 4);
  if (len < 8 || a.size() < udp + len) {
    *why = absl::StrCat("UDP length ", len, " does not fit the packet");
    return false;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < 32; i += 2) sum += Rd16(a, ip6 + 8 + i);
  sum += len + 17;
  for (size_t i = 0; i + 1 < len; i += 2) sum += Rd16(a, udp + i);
  if (len % 2) sum += static_cast<uint64_t>(a[udp + len - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  if (Rd16(a, udp + 6) == 0) {
    *why = "checksum is zero (not allowed for UDP over IPv6)";
    return false;
  }
  if (sum != 0xffff) {
    char b[64];
    std::snprintf(b, sizeof(b), "checksum 0x%04x does not verify (sum 0x%04x)", Rd16(a, udp + 6),
                  static_cast<unsigned>(sum));
    *why = b;
    return false;
  }
  return true;
}

// Masked values seen per flow, across the whole case.
struct FlowWildcards {
  std::map<std::string, uint32_t> label;
  std::map<std::string, uint16_t> gue_port;
};

std::string HexDump(const Packet& p, const Mask* mask) {
  std::string s;
  for (size_t i = 0; i < p.size(); i += 16) {
    char b[32];
    std::snprintf(b, sizeof(b), "    %04zx ", i);
    s += b;
    for (size_t j = i; j < std::min(p.size(), i + 16); ++j) {
      if (mask != nullptr && j < mask->bits.size() && mask->bits[j] == 0) {
        s += " xx";
      } else if (mask != nullptr && j < mask->bits.size() && mask->bits[j] != 0xff) {
        std::snprintf(b, sizeof(b), " %xx", p[j] >> 4);  // low nibble masked
        s += b;
      } else {
        std::snprintf(b, sizeof(b), " %02x", p[j]);
        s += b;
      }
    }
    s += "\n";
  }
  return s;
}

// Compares one port's recording with its expectation; returns the failures (empty: equal).
std::string CompareStream(const std::string& what, const std::vector<Packet>& expected,
                          const std::vector<Packet>& actual, const GoldenCase& c,
                          FlowWildcards* seen) {
  std::string report;
  if (expected.size() != actual.size()) {
    absl::StrAppend(&report, what, ": expected ", expected.size(), " packets, got ", actual.size(),
                    "\n");
  }
  const size_t n = std::min(expected.size(), actual.size());
  for (size_t i = 0; i < n; ++i) {
    const Packet& e = expected[i];
    const Packet& a = actual[i];
    const Mask m = MaskFor(e, c);
    std::string problems;
    if (e.size() != a.size()) {
      absl::StrAppend(&problems, "      length: expected ", e.size(), ", got ", a.size(), "\n");
    }
    std::vector<size_t> differ;
    for (size_t j = 0; j < std::min(e.size(), a.size()); ++j) {
      if ((e[j] ^ a[j]) & m.bits[j]) differ.push_back(j);
    }
    if (!differ.empty()) {
      absl::StrAppend(&problems, "      bytes differ at offset");
      for (size_t k = 0; k < differ.size() && k < 24; ++k) {
        char b[16];
        std::snprintf(b, sizeof(b), " 0x%zx", differ[k]);
        problems += b;
      }
      if (differ.size() > 24) absl::StrAppend(&problems, " ... (", differ.size(), " in all)");
      problems += "\n";
    }
    if (e.size() == a.size()) {
      // Sanity of the masked fields.
      std::optional<uint16_t> sport;
      if (m.gue_udp) {
        sport = Rd16(a, *m.gue_udp);
        if (*sport < kGueSrcPortMin) {
          absl::StrAppend(&problems, "      GUE source port ", *sport, " outside 49152..65535\n");
        }
      }
      std::optional<uint32_t> label;
      if (m.ipv6_label) {
        const size_t o = *m.ipv6_label;
        label = static_cast<uint32_t>((a[o + 1] & 0x0f) << 16 | Rd16(a, o + 2));
        if (sport && (*label >> 16) != ((*sport - kGueSrcPortMin) & 0x0f)) {
          char b[128];
          std::snprintf(b, sizeof(b),
                        "      flow label 0x%05x and GUE source port %u come from different "
                        "hashes\n",
                        *label, *sport);
          problems += b;
        }
      }
      std::string why;
      if (m.gue_checksum && !Ipv6UdpChecksumValid(a, *m.ipv6_label, *m.gue_udp, &why)) {
        absl::StrAppend(&problems, "      GUE UDP checksum over IPv6: ", why, "\n");
      }
      if (m.flow) {
        const std::string key = m.flow->Text();
        if (label) {
          auto [it, inserted] = seen->label.emplace(key, *label);
          if (!inserted && it->second != *label) {
            char b[160];
            std::snprintf(b, sizeof(b),
                          "      flow label 0x%05x, but an earlier packet of this flow had "
                          "0x%05x\n",
                          *label, it->second);
            problems += b;
          }
        }
        if (sport) {
          auto [it, inserted] = seen->gue_port.emplace(key, *sport);
          if (!inserted && it->second != *sport) {
            absl::StrAppend(&problems, "      GUE source port ", *sport,
                            ", but an earlier packet of this flow had ", it->second, "\n");
          }
        }
      }
    }
    if (!problems.empty()) {
      absl::StrAppend(&report, what, " packet #", i, " (0-based) differs:\n", problems,
                      m.flow ? absl::StrCat("      inner flow: ", m.flow->Text(), "\n") : "",
                      "    expected (xx: masked):\n", HexDump(e, &m), "    actual:\n",
                      HexDump(a, nullptr));
    }
  }
  if (expected.size() != actual.size()) {
    const auto dump_rest = [&](const char* label, const std::vector<Packet>& v) {
      for (size_t i = n; i < v.size() && i < n + kMaxDumpedPackets; ++i) {
        absl::StrAppend(&report, "    ", label, " #", i, ":\n", HexDump(v[i], nullptr));
      }
    };
    dump_rest("expected only", expected);
    dump_rest("actual only", actual);
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Counters.

std::map<std::string, uint64_t> NamedCounters(const WorkerCounters& t) {
  return {{"rx_packets", t.rx_packets},      {"to_backend", t.to_backend},
          {"to_kernel", t.to_kernel},        {"from_kernel", t.from_kernel},
          {"echo_replies", t.echo_replies},  {"icmp_errors", t.icmp_errors},
          {"nat_replies", t.nat_replies},    {"handoffs", t.handoffs},
          {"conn_hits", t.conn_hits},        {"conn_misses", t.conn_misses},
          {"conn_repicked", t.conn_repicked}};
}

std::string CountersReport(const WorkerCounters& t) {
  std::string s = "  dataplane counters:";
  for (const auto& [name, v] : NamedCounters(t)) {
    if (v != 0) absl::StrAppend(&s, " ", name, "=", v);
  }
  s += "\n";
  bool any = false;
  for (size_t d = 0; d < static_cast<size_t>(Drop::kCount); ++d) {
    if (t.drops[d] == 0) continue;
    any = true;
    absl::StrAppend(&s, "  drop ", DropName(static_cast<Drop>(d)), " = ", t.drops[d], " (",
                    DropDescription(static_cast<Drop>(d)), ")\n");
  }
  for (size_t p = 0; p < static_cast<size_t>(ParseStatus::kCount); ++p) {
    if (t.parse_drops[p] == 0) continue;
    any = true;
    absl::StrAppend(&s, "  parse drop ", ParseStatusName(static_cast<ParseStatus>(p)), " = ",
                    t.parse_drops[p], " (", ParseStatusDescription(static_cast<ParseStatus>(p)),
                    ")\n");
  }
  if (!any) s += "  no drops\n";
  return s;
}

// Checks the case's counter expectations; returns the failures.
std::string CheckCounters(const GoldenCase& c, const WorkerCounters& t) {
  std::string report;
  std::map<std::string, uint64_t> drops;
  for (size_t d = 0; d < static_cast<size_t>(Drop::kCount); ++d) {
    drops[DropName(static_cast<Drop>(d))] = t.drops[d];
  }
  std::map<std::string, uint64_t> parse;
  for (size_t p = 0; p < static_cast<size_t>(ParseStatus::kCount); ++p) {
    if (p != static_cast<size_t>(ParseStatus::kOk)) {
      parse[ParseStatusName(static_cast<ParseStatus>(p))] = t.parse_drops[p];
    }
  }
  const auto exact = [&report](const char* what, const std::map<std::string, uint64_t>& actual,
                               const google::protobuf::Map<std::string, uint64_t>& want) {
    for (const auto& [name, v] : want) {
      if (!actual.count(name)) {
        absl::StrAppend(&report, "  ", what, " \"", name, "\" is not a known name\n");
      }
    }
    for (const auto& [name, v] : actual) {
      const auto it = want.find(name);
      const uint64_t w = it == want.end() ? 0 : it->second;
      if (v != w) {
        absl::StrAppend(&report, "  ", what, " ", name, ": expected ", w, ", got ", v,
                        it == want.end() ? " (not listed in the case: expected 0)" : "", "\n");
      }
    }
  };
  exact("expect_drops", drops, c.expect_drops());
  exact("expect_parse_drops", parse, c.expect_parse_drops());
  const std::map<std::string, uint64_t> named = NamedCounters(t);
  for (const auto& [name, w] : c.expect_counters()) {
    const auto it = named.find(name);
    if (it == named.end()) {
      absl::StrAppend(&report, "  expect_counters \"", name, "\" is not a known counter\n");
    } else if (it->second != w) {
      absl::StrAppend(&report, "  counter ", name, ": expected ", w, ", got ", it->second, "\n");
    }
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Running a case.

std::string PortNames() {
  std::string names;
  uint16_t p;
  RTE_ETH_FOREACH_DEV(p) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(p, name) == 0) absl::StrAppend(&names, " ", name);
  }
  return names.empty() ? " none" : names;
}

// Owns what a run creates: the pcap vdevs, the dataplane and the temp dir.
struct CaseRun {
  std::vector<std::string> vdevs;
  std::unique_ptr<Dataplane> dp;
  fs::path tmp;

  // Stops the workers, closes both ports (pcap ports flush their files on close) and removes the
  // vdevs; returns the dataplane's final counters. Idempotent.
  DataplaneCounters Finish() {
    DataplaneCounters counters;
    if (dp != nullptr) {
      dp->StopAndClose();
      counters = dp->Collect();
      dp.reset();
    }
    for (const std::string& v : vdevs) rte_vdev_uninit(v.c_str());
    vdevs.clear();
    return counters;
  }
  ~CaseRun() {
    Finish();
    if (!tmp.empty()) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
    }
  }
};

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, Case) {
  const fs::path dir = fs::path(LB_GOLDEN_DIR) / GetParam();
  GoldenCase c;
  {
    const absl::Status st = LoadCase(dir / "case.textproto", &c);
    ASSERT_TRUE(st.ok()) << st;
  }
  SCOPED_TRACE(absl::StrCat("case ", GetParam(), ": ", c.description()));
  ASSERT_FALSE(c.node().port_mac().empty())
      << "set node.port_mac in case.textproto (pcap ports have no meaningful MAC)";
  const auto send = ReadPcap(dir / "send.pcap");
  ASSERT_TRUE(send.ok()) << send.status() << " (run tests/golden/regen.sh)";
  const auto expect = ReadPcap(dir / "expect.pcap");
  ASSERT_TRUE(expect.ok()) << expect.status() << " (run tests/golden/regen.sh)";
  std::vector<Packet> expect_kernel;
  if (fs::exists(dir / "expect_kernel.pcap")) {
    auto k = ReadPcap(dir / "expect_kernel.pcap");
    ASSERT_TRUE(k.ok()) << k.status();
    expect_kernel = *std::move(k);
  }
  // net_pcap takes its files as comma-separated key=value pairs.
  ASSERT_EQ(dir.string().find_first_of(",="), std::string::npos)
      << "the case path must not contain ',' or '=': " << dir;

  {
    const absl::Status st = lb::testing::InitTestEal();
    ASSERT_TRUE(st.ok()) << st;
  }
  CaseRun run;
  {
    std::string tmpl = (fs::temp_directory_path() / "lb_golden_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    run.tmp = tmpl;
  }
  const fs::path empty = run.tmp / "empty.pcap";
  const fs::path out = run.tmp / "out.pcap";
  const fs::path kernel = run.tmp / "kernel.pcap";
  {
    const absl::Status st = WriteEmptyPcap(empty);
    ASSERT_TRUE(st.ok()) << st;
  }
  static int instance = 0;
  const int n = instance++;
  const std::string up_name = absl::StrCat("net_pcap_up", n);
  const std::string ex_name = absl::StrCat("net_pcap_ex", n);
  for (const auto& [name, args] :
       {std::pair{up_name, absl::StrCat("rx_pcap=", (dir / "send.pcap").string(),
                                        ",tx_pcap=", out.string())},
        std::pair{ex_name,
                  absl::StrCat("rx_pcap=", empty.string(), ",tx_pcap=", kernel.string())}}) {
    const int rc = rte_vdev_init(name.c_str(), args.c_str());
    ASSERT_EQ(rc, 0) << "rte_vdev_init(" << name << ", " << args << "): " << rte_strerror(-rc);
    run.vdevs.push_back(name);
  }
  uint16_t up_port, ex_port;
  ASSERT_EQ(rte_eth_dev_get_port_by_name(up_name.c_str(), &up_port), 0)
      << "no ethdev " << up_name << "; ports:" << PortNames();
  ASSERT_EQ(rte_eth_dev_get_port_by_name(ex_name.c_str(), &ex_port), 0)
      << "no ethdev " << ex_name << "; ports:" << PortNames();

  // The snapshot, built before the dataplane starts.
  struct rte_ether_addr port_mac {};
  rte_eth_macaddr_get(up_port, &port_mac);
  MacAddr uplink_mac;
  std::memcpy(uplink_mac.bytes, port_mac.addr_bytes, 6);
  std::vector<std::pair<std::pair<IpAddr, IpFamily>, MacAddr>> statics;
  auto params = NodeParamsFromProto(c.node(), uplink_mac, &statics);
  ASSERT_TRUE(params.ok()) << params.status();
  const NeighborLookup lookup = [&statics](const IpAddr& a, IpFamily f,
                                           bool) -> std::optional<MacAddr> {
    for (const auto& [ip, mac] : statics) {
      if (ip.first == a && ip.second == f) return mac;
    }
    return std::nullopt;
  };
  DataplaneOptions o;
  o.uplink = up_name;
  o.exception = ex_name;
  o.workers = 1;
  o.conn_table_size = 4096;
  o.mbufs = 2047;
  o.max_vips = 256;
  o.max_backends = 1024;
  SnapshotBuilder builder(BuildLimits{o.max_vips, o.max_backends});
  auto snap = builder.Build(c.services(), *params, lookup);
  ASSERT_TRUE(snap.ok()) << snap.status();

  auto dp = Dataplane::Start(o, *std::move(snap));
  ASSERT_TRUE(dp.ok()) << dp.status();
  run.dp = *std::move(dp);
  const uint64_t want_rx = send->size();
  const auto deadline = std::chrono::steady_clock::now() + kRxTimeout;
  while (run.dp->Collect().total.rx_packets < want_rx &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Let the last burst reach the TX files, then close: the recordings are complete.
  std::this_thread::sleep_for(kSettle);
  const DataplaneCounters counters = run.Finish();

  std::string report;
  if (counters.total.rx_packets != want_rx) {
    absl::StrAppend(&report, "  the worker took in ", counters.total.rx_packets, " of the ",
                    want_rx, " packets of send.pcap within ", kRxTimeout.count(), " s\n");
  }
  const auto got_up = ReadPcap(out);
  ASSERT_TRUE(got_up.ok()) << got_up.status();
  const auto got_kernel = ReadPcap(kernel);
  ASSERT_TRUE(got_kernel.ok()) << got_kernel.status();
  FlowWildcards seen;
  report += CompareStream("uplink", *expect, *got_up, c, &seen);
  report += CompareStream("kernel", expect_kernel, *got_kernel, c, &seen);
  report += CheckCounters(c, counters.total);
  EXPECT_TRUE(report.empty()) << "golden case " << GetParam() << " failed (" << dir.string()
                              << ")\n"
                              << report << CountersReport(counters.total);
}

std::string CaseName(const ::testing::TestParamInfo<std::string>& info) {
  if (ValidTestName(info.param)) return info.param;
  std::string s = info.param;
  for (char& ch : s) {
    if (!ValidTestName(std::string(1, ch))) ch = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(, Golden, ::testing::ValuesIn(ListCases()), CaseName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Golden);

// The suite is only as good as its cases: they must be there, and named so that the test names
// are the folder names.
TEST(GoldenCases, FoldersAreCases) {
  const std::vector<std::string> cases = ListCases();
  EXPECT_GE(cases.size(), 25u) << "case folders under " << LB_GOLDEN_DIR;
  for (const std::string& name : cases) {
    EXPECT_TRUE(ValidTestName(name))
        << "case folder \"" << name << "\": use letters, digits and '_' only";
    for (const char* file : {"gen.py", "send.pcap", "expect.pcap"}) {
      EXPECT_TRUE(fs::exists(fs::path(LB_GOLDEN_DIR) / name / file)) << name << "/" << file;
    }
  }
}

}  // namespace
}  // namespace lb::golden
