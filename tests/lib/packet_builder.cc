#include "tests/lib/packet_builder.h"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>

namespace lb::testing {
namespace {

void Put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
void Append16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

uint32_t SumWords(const uint8_t* data, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(data[len - 1] << 8);
  return sum;
}

}  // namespace

Bytes V4(const std::string& s) {
  Bytes b(4);
  if (inet_pton(AF_INET, s.c_str(), b.data()) != 1) throw std::invalid_argument("bad IPv4 " + s);
  return b;
}

Bytes V6(const std::string& s) {
  Bytes b(16);
  if (inet_pton(AF_INET6, s.c_str(), b.data()) != 1) throw std::invalid_argument("bad IPv6 " + s);
  return b;
}

uint16_t InternetChecksum(const uint8_t* data, size_t len, uint32_t initial) {
  uint32_t sum = SumWords(data, len, initial);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

PacketBuilder& PacketBuilder::Ether(uint16_t ether_type, const Bytes& dst_mac,
                                    const Bytes& src_mac) {
  layers_.push_back({Kind::kEther, buf_.size()});
  Append(buf_, dst_mac.empty() ? Bytes{0x02, 0, 0, 0, 0, 0x01} : dst_mac);
  Append(buf_, src_mac.empty() ? Bytes{0x02, 0, 0, 0, 0, 0x02} : src_mac);
  Append16(buf_, ether_type);
  return *this;
}

PacketBuilder& PacketBuilder::Vlan(uint16_t tci, uint16_t tpid) {
  // The tag sits where the ethertype was: the previous ethertype becomes the TPID.
  Put16(buf_, buf_.size() - 2, tpid);
  layers_.push_back({Kind::kVlan, buf_.size()});
  Append16(buf_, tci);
  Append16(buf_, 0);
  return *this;
}

PacketBuilder& PacketBuilder::Ipv4(const std::string& src, const std::string& dst, uint8_t proto,
                                   uint8_t ttl, const Bytes& options, uint16_t frag_field) {
  if (options.size() % 4 != 0 || options.size() > 40) throw std::invalid_argument("ip options");
  layers_.push_back({Kind::kIpv4, buf_.size()});
  buf_.push_back(static_cast<uint8_t>(0x40 | (5 + options.size() / 4)));
  buf_.push_back(0);
  Append16(buf_, 0);  // total length, set by Finish
  Append16(buf_, 0x1234);
  Append16(buf_, frag_field);
  buf_.push_back(ttl);
  buf_.push_back(proto);
  Append16(buf_, 0);
  Append(buf_, V4(src));
  Append(buf_, V4(dst));
  Append(buf_, options);
  return *this;
}

PacketBuilder& PacketBuilder::Ipv6(const std::string& src, const std::string& dst,
                                   uint8_t next_header, uint8_t hop_limit) {
  layers_.push_back({Kind::kIpv6, buf_.size()});
  Append(buf_, {0x60, 0, 0, 0});
  Append16(buf_, 0);
  buf_.push_back(next_header);
  buf_.push_back(hop_limit);
  Append(buf_, V6(src));
  Append(buf_, V6(dst));
  return *this;
}

PacketBuilder& PacketBuilder::Ipv6Ext(uint8_t next_header, uint8_t len8) {
  layers_.push_back({Kind::kIpv6Ext, buf_.size()});
  buf_.push_back(next_header);
  buf_.push_back(len8);
  // PadN option filling the rest, so that hop-by-hop and destination options are valid TLVs.
  const size_t rest = 6 + 8 * static_cast<size_t>(len8);
  buf_.push_back(1);
  buf_.push_back(static_cast<uint8_t>(rest - 2));
  buf_.insert(buf_.end(), rest - 2, 0);
  return *this;
}

PacketBuilder& PacketBuilder::Ipv6Fragment(uint8_t next_header, uint16_t offset8, bool more) {
  layers_.push_back({Kind::kIpv6Ext, buf_.size()});
  buf_.push_back(next_header);
  buf_.push_back(0);
  Append16(buf_, static_cast<uint16_t>(offset8 << 3 | (more ? 1 : 0)));
  Append(buf_, {0, 0, 0x12, 0x34});
  return *this;
}

PacketBuilder& PacketBuilder::Tcp(uint16_t sport, uint16_t dport, uint8_t flags,
                                  const Bytes& options) {
  if (options.size() % 4 != 0 || options.size() > 40) throw std::invalid_argument("tcp options");
  layers_.push_back({Kind::kTcp, buf_.size()});
  Append16(buf_, sport);
  Append16(buf_, dport);
  Append(buf_, {0, 0, 0, 1, 0, 0, 0, 0});
  buf_.push_back(static_cast<uint8_t>((5 + options.size() / 4) << 4));
  buf_.push_back(flags);
  Append16(buf_, 65535);
  Append16(buf_, 0);
  Append16(buf_, 0);
  Append(buf_, options);
  return *this;
}

PacketBuilder& PacketBuilder::Udp(uint16_t sport, uint16_t dport) {
  layers_.push_back({Kind::kUdp, buf_.size()});
  Append16(buf_, sport);
  Append16(buf_, dport);
  Append16(buf_, 0);
  Append16(buf_, 0);
  return *this;
}

PacketBuilder& PacketBuilder::Icmp(uint8_t type, uint8_t code, uint32_t rest) {
  bool v6 = false;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    if (it->kind == Kind::kIpv4 || it->kind == Kind::kIpv6) {
      v6 = it->kind == Kind::kIpv6;
      break;
    }
  }
  layers_.push_back({v6 ? Kind::kIcmp6 : Kind::kIcmp, buf_.size()});
  buf_.push_back(type);
  buf_.push_back(code);
  Append16(buf_, 0);
  Append16(buf_, static_cast<uint16_t>(rest >> 16));
  Append16(buf_, static_cast<uint16_t>(rest));
  return *this;
}

PacketBuilder& PacketBuilder::Payload(const Bytes& data) {
  Append(buf_, data);
  return *this;
}

PacketBuilder& PacketBuilder::Payload(size_t n, uint8_t fill) {
  buf_.insert(buf_.end(), n, fill);
  return *this;
}

PacketBuilder& PacketBuilder::Raw(const Bytes& data) {
  layers_.push_back({Kind::kRaw, buf_.size()});
  Append(buf_, data);
  return *this;
}

Bytes PacketBuilder::Finish() {
  // Ethertypes from the following layer, where left at 0.
  for (size_t i = 0; i + 1 < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    if (l.kind != Kind::kEther && l.kind != Kind::kVlan) continue;
    const size_t field = l.kind == Kind::kEther ? l.offset + 12 : l.offset + 2;
    if (buf_[field] != 0 || buf_[field + 1] != 0) continue;
    const Kind next = layers_[i + 1].kind;
    if (next == Kind::kIpv4) Put16(buf_, field, 0x0800);
    if (next == Kind::kIpv6) Put16(buf_, field, 0x86dd);
  }
  // The IP layer each L4 layer belongs to: the nearest one before it.
  const Layer* ip = nullptr;
  std::vector<std::pair<const Layer*, const Layer*>> l4;  // (layer, its IP layer)
  for (const Layer& l : layers_) {
    if (l.kind == Kind::kRaw) break;  // quoted packets stay exactly as given
    if (l.kind == Kind::kIpv4) {
      Put16(buf_, l.offset + 2, static_cast<uint16_t>(buf_.size() - l.offset));
      ip = &l;
    } else if (l.kind == Kind::kIpv6) {
      Put16(buf_, l.offset + 4, static_cast<uint16_t>(buf_.size() - l.offset - 40));
      ip = &l;
    } else if (l.kind == Kind::kUdp) {
      Put16(buf_, l.offset + 4, static_cast<uint16_t>(buf_.size() - l.offset));
      l4.push_back({&l, ip});
    } else if (l.kind == Kind::kTcp || l.kind == Kind::kIcmp || l.kind == Kind::kIcmp6) {
      l4.push_back({&l, ip});
    }
  }
  for (const auto& [layer, iph] : l4) {
    const size_t len = buf_.size() - layer->offset;
    const size_t csum_off = layer->offset + (layer->kind == Kind::kTcp   ? 16
                                             : layer->kind == Kind::kUdp ? 6
                                                                         : 2);
    uint32_t pseudo = 0;
    if (iph != nullptr && layer->kind != Kind::kIcmp) {
      const uint8_t proto = layer->kind == Kind::kTcp ? 6 : layer->kind == Kind::kUdp ? 17 : 58;
      if (iph->kind == Kind::kIpv4) {
        pseudo = SumWords(&buf_[iph->offset + 12], 8, 0);
      } else {
        pseudo = SumWords(&buf_[iph->offset + 8], 32, 0);
      }
      pseudo += proto + static_cast<uint32_t>(len);
    }
    Put16(buf_, csum_off, 0);
    uint16_t c = InternetChecksum(&buf_[layer->offset], len, pseudo);
    if (c == 0 && layer->kind == Kind::kUdp) c = 0xffff;
    Put16(buf_, csum_off, c);
  }
  for (const Layer& l : layers_) {
    if (l.kind == Kind::kRaw) break;
    if (l.kind != Kind::kIpv4) continue;
    const size_t ihl = static_cast<size_t>(buf_[l.offset] & 0x0f) * 4;
    Put16(buf_, l.offset + 10, 0);
    Put16(buf_, l.offset + 10, InternetChecksum(&buf_[l.offset], ihl));
  }
  return buf_;
}

}  // namespace lb::testing
