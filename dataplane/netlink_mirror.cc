#include "dataplane/netlink_mirror.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

namespace lb {
namespace {

constexpr size_t kRecvBufferSize = 128 * 1024;
constexpr int kSocketBufferSize = 8 * 1024 * 1024;
constexpr auto kRequestTimeout = std::chrono::seconds(10);
constexpr auto kResolveInterval = std::chrono::seconds(1);
constexpr int kResyncRetryMs = 1000;
constexpr size_t kResolvePruneSize = 4096;
constexpr uint16_t kUsableStates =
    NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;

size_t AddrLen(IpFamily f) { return f == IpFamily::kIpv4 ? 4 : 16; }
int MaxPrefix(IpFamily f) { return f == IpFamily::kIpv4 ? 32 : 128; }

std::optional<IpFamily> FromAf(int af) {
  if (af == AF_INET) return IpFamily::kIpv4;
  if (af == AF_INET6) return IpFamily::kIpv6;
  return std::nullopt;
}
int ToAf(IpFamily f) { return f == IpFamily::kIpv4 ? AF_INET : AF_INET6; }

// Keeps the first `len` bits of an address and clears the rest.
std::array<uint8_t, 16> Masked(const std::array<uint8_t, 16>& a, int len) {
  std::array<uint8_t, 16> out{};
  for (int i = 0; i < 16 && len > 0; ++i, len -= 8) {
    out[i] = len >= 8 ? a[i] : static_cast<uint8_t>(a[i] & (0xff00 >> len));
  }
  return out;
}

// The address bytes of `a` for `family`, with the bytes past an IPv4 address zeroed.
std::array<uint8_t, 16> AddrBytes(const IpAddr& a, IpFamily family) {
  std::array<uint8_t, 16> out{};
  std::memcpy(out.data(), a.bytes, AddrLen(family));
  return out;
}

IpAddr ToIpAddr(const std::array<uint8_t, 16>& b) {
  IpAddr a;
  std::memcpy(a.bytes, b.data(), 16);
  return a;
}

// Attributes of a message (or of a nested block) by type; types above kMaxAttr are skipped.
constexpr int kMaxAttr = 64;
struct Attrs {
  const nlattr* tb[kMaxAttr + 1] = {};

  const nlattr* operator[](int type) const { return tb[type]; }
  // An attribute's payload if it has exactly `len` bytes.
  const void* Exact(int type, size_t len) const {
    const nlattr* a = tb[type];
    if (a == nullptr || mnl_attr_get_payload_len(a) != len) return nullptr;
    return mnl_attr_get_payload(a);
  }
  std::optional<uint32_t> U32(int type) const {
    const void* p = Exact(type, sizeof(uint32_t));
    if (p == nullptr) return std::nullopt;
    uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
};

void Collect(const nlattr* attr, Attrs* out) {
  const uint16_t type = mnl_attr_get_type(attr);
  if (type <= kMaxAttr) out->tb[type] = attr;
}

void ParseAttrBlock(const void* data, size_t len, Attrs* out) {
  const auto* attr = static_cast<const nlattr*>(data);
  int left = static_cast<int>(len);
  while (mnl_attr_ok(attr, left)) {  // bounds the attribute by what is left
    Collect(attr, out);
    const nlattr* next = mnl_attr_next(attr);
    left -=
        static_cast<int>(reinterpret_cast<const char*>(next) - reinterpret_cast<const char*>(attr));
    attr = next;
  }
}

// Parses the attributes after a fixed header of `header_len` bytes; false if the message is too
// short to hold the header.
bool ParseAttrs(const nlmsghdr* nlh, size_t header_len, Attrs* out) {
  const size_t payload = mnl_nlmsg_get_payload_len(nlh);
  if (payload < header_len) return false;
  const size_t offset = MNL_ALIGN(header_len);
  if (payload > offset) {
    ParseAttrBlock(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + offset, payload - offset,
                   out);
  }
  return true;
}

absl::Status ErrnoStatus(int err, const char* what) {
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(what, ": ", std::strerror(err)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<NetlinkMirror>> NetlinkMirror::Start(
    std::string ifname, std::function<void()> on_change) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrCat("bad interface name '", ifname, "'"));
  }
  std::unique_ptr<NetlinkMirror> m(new NetlinkMirror(std::move(ifname), std::move(on_change)));
  if (absl::Status s = m->Open(); !s.ok()) return s;
  if (absl::Status s = m->Resync(); !s.ok()) return s;
  m->changed_ = false;  // the initial load is not a change
  m->thread_ = std::thread([p = m.get()] { p->Run(); });
  return m;
}

NetlinkMirror::NetlinkMirror(std::string ifname, std::function<void()> on_change)
    : ifname_(std::move(ifname)), on_change_(std::move(on_change)), buf_(kRecvBufferSize) {}

NetlinkMirror::~NetlinkMirror() {
  stop_.store(true);
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  if (sock_ >= 0) close(sock_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status NetlinkMirror::Open() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return ErrnoStatus(errno, "eventfd");
  sock_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (sock_ < 0) return ErrnoStatus(errno, "netlink socket");
  // A large buffer makes overruns (and the resyncs they cost) rare; FORCE needs CAP_NET_ADMIN.
  int size = kSocketBufferSize;
  if (setsockopt(sock_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
    setsockopt(sock_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "netlink bind");
  }
  // Subscribe before the first dump: see the header on ordering.
  for (int group :
       {RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV4_IFADDR}) {
    if (setsockopt(sock_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) != 0) {
      return ErrnoStatus(errno, "netlink membership");
    }
  }
  const int one = 1;
  strict_dumps_ = setsockopt(sock_, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one)) == 0;
  return absl::OkStatus();
}

void NetlinkMirror::Run() {
  bool backoff = false;
  while (!stop_.load()) {
    if (resync_needed_) {
      if (absl::Status s = Resync(); !s.ok()) {
        if (stop_.load()) break;
        errors_.fetch_add(1);
        resync_needed_ = true;
        backoff = true;
      }
    }
    SendResolves();
    if (changed_) {
      changed_ = false;
      if (on_change_) on_change_();
    }
    // After a failed resync, wait a while (for stop or resolve requests only) before retrying.
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {sock_, POLLIN, 0}};
    const int nfds = backoff ? 1 : 2;
    const int rc = poll(fds, nfds, backoff ? kResyncRetryMs : -1);
    backoff = false;
    if (rc < 0) continue;  // EINTR
    if (fds[0].revents != 0) DrainWakeup();
    if (nfds == 2 && fds[1].revents != 0) {
      bool answered = false;
      int answer_error = 0;
      if (!ReadAvailable(0, &answered, &answer_error)) {
        errors_.fetch_add(1);
        resync_needed_ = true;
        backoff = true;
      }
    }
  }
}

absl::Status NetlinkMirror::Resync() {
  resyncs_.fetch_add(1);
  resync_needed_ = false;
  shadow_.emplace();
  struct Reset {
    NetlinkMirror* m;
    ~Reset() {
      m->phase_ = Phase::kIdle;
      m->shadow_.reset();
    }
  } reset{this};

  // The interface, looked up by name: a reply (then an ack), or ENODEV.
  phase_ = Phase::kLinkQuery;
  alignas(nlmsghdr) uint8_t req[256];
  nlmsghdr* nlh = mnl_nlmsg_put_header(req);
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname_.c_str());
  if (absl::Status s = SendRequest(nlh); !s.ok()) return s;
  int kernel_error = 0;
  if (absl::Status s = Await(nlh->nlmsg_seq, &kernel_error); !s.ok()) return s;
  if (kernel_error == ENODEV) {
    SetIfindex(0);
  } else if (kernel_error != 0) {
    return ErrnoStatus(kernel_error, "RTM_GETLINK");
  }

  phase_ = Phase::kTableDump;
  const int ifindex = ifindex_.load();
  if (ifindex != 0) {
    for (uint16_t type : {RTM_GETNEIGH, RTM_GETROUTE}) {
      for (int af : {AF_INET, AF_INET6}) {
        while (true) {
          nlh = mnl_nlmsg_put_header(req);
          nlh->nlmsg_type = type;
          nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
          if (type == RTM_GETNEIGH) {
            auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
            ndm->ndm_family = af;
            // Honoured (4.16+) with or without strict checking.
            mnl_attr_put_u32(nlh, NDA_IFINDEX, ifindex);
          } else {
            auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
            rtm->rtm_family = af;
            if (strict_dumps_) mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
          }
          if (absl::Status s = SendRequest(nlh); !s.ok()) return s;
          if (absl::Status s = Await(nlh->nlmsg_seq, &kernel_error); !s.ok()) return s;
          if (kernel_error == EINVAL && strict_dumps_) {
            strict_dumps_ = false;  // a kernel that rejects the filter: dump everything
            continue;
          }
          if (kernel_error != 0 && !(af == AF_INET6 && kernel_error == EAFNOSUPPORT)) {
            return ErrnoStatus(kernel_error, type == RTM_GETNEIGH ? "neigh dump" : "route dump");
          }
          break;
        }
      }
    }
  }

  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = !(live_ == *shadow_);
    if (changed) {
      live_ = std::move(*shadow_);
      generation_.fetch_add(1);
    }
  }
  changed_ = changed_ || changed;
  return absl::OkStatus();
}

absl::Status NetlinkMirror::SendRequest(nlmsghdr* nlh) {
  nlh->nlmsg_seq = ++seq_;
  if (nlh->nlmsg_seq == 0) nlh->nlmsg_seq = ++seq_;  // 0 marks events: never use it
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  while (true) {
    const ssize_t n =
        sendto(sock_, nlh, nlh->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
    if (n >= 0) return absl::OkStatus();
    if (errno != EINTR) return ErrnoStatus(errno, "netlink send");
  }
}

absl::Status NetlinkMirror::Await(uint32_t seq, int* kernel_error) {
  const auto deadline = std::chrono::steady_clock::now() + kRequestTimeout;
  while (true) {
    if (stop_.load()) return absl::CancelledError("stopping");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("netlink request timed out");
    pollfd fds[2] = {{sock_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
    if (fds[1].revents != 0) {
      DrainWakeup();
      SendResolves();
    }
    if (fds[0].revents != 0) {
      bool answered = false;
      if (!ReadAvailable(seq, &answered, kernel_error)) {
        return absl::InternalError("netlink receive failed");
      }
      if (answered) return absl::OkStatus();
    }
  }
}

bool NetlinkMirror::ReadAvailable(uint32_t awaited_seq, bool* answered, int* answer_error) {
  while (true) {
    sockaddr_nl from{};
    iovec iov{buf_.data(), buf_.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = recvmsg(sock_, &msg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == ENOBUFS) {  // events were dropped: only a full dump can recover
        overruns_.fetch_add(1);
        resync_needed_ = true;
        continue;
      }
      return false;
    }
    if (n == 0) return true;
    if ((msg.msg_flags & MSG_TRUNC) != 0) {  // a message was cut: treat like an overrun
      errors_.fetch_add(1);
      resync_needed_ = true;
      continue;
    }
    if (from.nl_pid != 0) continue;  // only the kernel speaks rtnetlink to us
    int len = static_cast<int>(n);
    for (const nlmsghdr* nlh = reinterpret_cast<const nlmsghdr*>(buf_.data());
         mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      if (HandleMessage(nlh, awaited_seq, answer_error)) *answered = true;
    }
    if (*answered) return true;
  }
}

bool NetlinkMirror::HandleMessage(const nlmsghdr* nlh, uint32_t awaited_seq, int* answer_error) {
  if ((nlh->nlmsg_flags & NLM_F_DUMP_INTR) != 0) resync_needed_ = true;
  const bool awaited = awaited_seq != 0 && nlh->nlmsg_seq == awaited_seq;
  switch (nlh->nlmsg_type) {
    case NLMSG_DONE:
      if (awaited) {
        int code = 0;  // a dump may end with its error code
        if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
          std::memcpy(&code, mnl_nlmsg_get_payload(nlh), sizeof(int));
        }
        *answer_error = code < 0 ? -code : 0;
        return true;
      }
      return false;
    case NLMSG_ERROR: {
      if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr)) return false;
      int code;
      std::memcpy(&code, mnl_nlmsg_get_payload(nlh), sizeof(int));  // nlmsgerr::error
      if (awaited) {
        *answer_error = code < 0 ? -code : 0;
        return true;
      }
      if (code != 0) errors_.fetch_add(1);  // e.g. a resolve request refused
      return false;
    }
    case NLMSG_OVERRUN:
      resync_needed_ = true;
      return false;
    case RTM_NEWLINK:
    case RTM_DELLINK:
      HandleLink(nlh);
      return false;
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH:
      HandleNeighbor(nlh);
      return false;
    case RTM_NEWROUTE:
    case RTM_DELROUTE:
      HandleRoute(nlh);
      return false;
    case RTM_DELADDR:
      HandleAddress(nlh);
      return false;
    default:
      return false;
  }
}

void NetlinkMirror::SetIfindex(int ifindex) {
  if (ifindex_.load() == ifindex) return;
  ifindex_.store(ifindex);
  // The query of a resync sets it; otherwise the tables must be reloaded (or emptied).
  if (phase_ != Phase::kLinkQuery) resync_needed_ = true;
}

void NetlinkMirror::HandleLink(const nlmsghdr* nlh) {
  Attrs attrs;
  if (!ParseAttrs(nlh, sizeof(ifinfomsg), &attrs)) return;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifi->ifi_family != AF_UNSPEC) return;  // e.g. AF_BRIDGE port messages
  const int current = ifindex_.load();
  if (nlh->nlmsg_type == RTM_DELLINK) {
    if (ifi->ifi_index == current) SetIfindex(0);
    return;
  }
  std::optional<std::string> name;
  if (const nlattr* a = attrs[IFLA_IFNAME]; a != nullptr) {
    const char* p = static_cast<const char*>(mnl_attr_get_payload(a));
    name.emplace(p, strnlen(p, mnl_attr_get_payload_len(a)));
  }
  constexpr unsigned kStateFlags = IFF_UP | IFF_RUNNING | IFF_LOWER_UP;
  if (name.has_value() && *name != ifname_) {
    if (ifi->ifi_index == current) SetIfindex(0);  // renamed away
    return;
  }
  if (!name.has_value() && ifi->ifi_index != current) return;
  if (ifi->ifi_index != current) {
    link_flags_ = ifi->ifi_flags;
    SetIfindex(ifi->ifi_index);
  } else if (((ifi->ifi_flags ^ link_flags_) & kStateFlags) != 0) {
    // Going down flushes IPv4 routes without notifications: reload.
    link_flags_ = ifi->ifi_flags;
    if (phase_ != Phase::kLinkQuery) resync_needed_ = true;
  }
}

void NetlinkMirror::HandleAddress(const nlmsghdr* nlh) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(ifaddrmsg)) return;
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  // Removing an interface's last IPv4 address flushes its IPv4 routes without notifications.
  const int current = ifindex_.load();
  if (current != 0 && static_cast<int>(ifa->ifa_index) == current && phase_ != Phase::kLinkQuery) {
    resync_needed_ = true;
  }
}

void NetlinkMirror::HandleNeighbor(const nlmsghdr* nlh) {
  Attrs attrs;
  if (!ParseAttrs(nlh, sizeof(ndmsg), &attrs)) return;
  const auto* ndm = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh));
  const int current = ifindex_.load();
  if (current == 0 || ndm->ndm_ifindex != current) return;
  const std::optional<IpFamily> family = FromAf(ndm->ndm_family);
  if (!family.has_value() || (ndm->ndm_flags & NTF_PROXY) != 0) return;
  const void* dst = attrs.Exact(NDA_DST, AddrLen(*family));
  if (dst == nullptr) return;
  NeighborKey key{*family, {}};
  std::memcpy(key.addr.data(), dst, AddrLen(*family));
  const void* lladdr = attrs.Exact(NDA_LLADDR, sizeof(MacAddr::bytes));
  const bool usable =
      nlh->nlmsg_type == RTM_NEWNEIGH && (ndm->ndm_state & kUsableStates) != 0 && lladdr != nullptr;
  MacValue value{};
  if (usable) std::memcpy(value.mac.bytes, lladdr, sizeof(value.mac.bytes));
  Mutate([&](Tables& t) {
    if (!usable) return t.neighbors.erase(key) > 0;
    auto [it, inserted] = t.neighbors.try_emplace(key, value);
    if (inserted) return true;
    if (it->second == value) return false;
    it->second = value;
    return true;
  });
}

void NetlinkMirror::HandleRoute(const nlmsghdr* nlh) {
  Attrs attrs;
  if (!ParseAttrs(nlh, sizeof(rtmsg), &attrs)) return;
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  const std::optional<IpFamily> family = FromAf(rtm->rtm_family);
  if (!family.has_value() || (rtm->rtm_flags & RTM_F_CLONED) != 0) return;
  if (rtm->rtm_tos != 0 || rtm->rtm_src_len != 0 || rtm->rtm_dst_len > MaxPrefix(*family)) return;
  const uint32_t table = attrs.U32(RTA_TABLE).value_or(rtm->rtm_table);
  if (table != RT_TABLE_MAIN) return;
  const size_t alen = AddrLen(*family);
  std::array<uint8_t, 16> dst{};
  if (attrs[RTA_DST] != nullptr) {
    const void* p = attrs.Exact(RTA_DST, alen);
    if (p == nullptr) return;
    std::memcpy(dst.data(), p, alen);
  } else if (rtm->rtm_dst_len != 0) {
    return;
  }
  const int len = rtm->rtm_dst_len;
  const RouteKey key{Masked(dst, len), attrs.U32(RTA_PRIORITY).value_or(0)};

  // The route's next hop through the interface, if it has one we can use.
  const int current = ifindex_.load();
  auto gateway_of = [&](const Attrs& nh, RouteValue* out) {
    if (nh[RTA_VIA] != nullptr) return false;  // gateway of another family: not supported
    if (nh[RTA_GATEWAY] == nullptr) return true;
    const void* gw = nh.Exact(RTA_GATEWAY, alen);
    if (gw == nullptr) return false;
    out->has_gateway = true;
    std::memcpy(out->gateway.data(), gw, alen);
    return true;
  };
  RouteValue value;
  bool via_us = false;
  if (rtm->rtm_type == RTN_UNICAST && current != 0) {
    if (attrs.U32(RTA_OIF) == static_cast<uint32_t>(current)) {
      via_us = gateway_of(attrs, &value);
    } else if (const nlattr* mp = attrs[RTA_MULTIPATH]; mp != nullptr) {
      const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(mp));
      size_t left = mnl_attr_get_payload_len(mp);
      while (left >= sizeof(rtnexthop)) {
        rtnexthop nh;
        std::memcpy(&nh, p, sizeof(nh));
        if (nh.rtnh_len < sizeof(rtnexthop) || nh.rtnh_len > left) break;
        if (nh.rtnh_ifindex == current) {
          Attrs nh_attrs;
          ParseAttrBlock(p + sizeof(rtnexthop), nh.rtnh_len - sizeof(rtnexthop), &nh_attrs);
          via_us = gateway_of(nh_attrs, &value);
          break;
        }
        const size_t step = RTNH_ALIGN(nh.rtnh_len);
        if (step >= left) break;
        p += step;
        left -= step;
      }
    }
  }
  const bool is_new = nlh->nlmsg_type == RTM_NEWROUTE;
  // A new route elsewhere only concerns us when it replaced ours.
  if (is_new && !via_us && (nlh->nlmsg_flags & NLM_F_REPLACE) == 0) return;
  if (!is_new && !via_us) return;
  Mutate([&](Tables& t) {
    std::map<RouteKey, RouteValue>& routes = *family == IpFamily::kIpv4 ? t.v4[len] : t.v6[len];
    if (!is_new || !via_us) return routes.erase(key) > 0;
    auto [it, inserted] = routes.try_emplace(key, value);
    if (inserted) return true;
    if (it->second == value) return false;
    it->second = value;
    return true;
  });
}

template <typename Fn>
void NetlinkMirror::Mutate(Fn fn) {
  if (shadow_.has_value()) {
    fn(*shadow_);
    return;
  }
  absl::MutexLock lock(&mu_);
  if (fn(live_)) {
    generation_.fetch_add(1);
    changed_ = true;
  }
}

void NetlinkMirror::DrainWakeup() {
  uint64_t v;
  (void)!read(wake_fd_, &v, sizeof(v));
}

void NetlinkMirror::Resolve(const IpAddr& addr, IpFamily family) {
  if (family != IpFamily::kIpv4 && family != IpFamily::kIpv6) return;
  if (ifindex_.load() == 0) return;
  const NeighborKey key{family, AddrBytes(addr, family)};
  const auto now = std::chrono::steady_clock::now();
  {
    absl::MutexLock lock(&resolve_mu_);
    auto [it, inserted] = last_resolve_.try_emplace(key, now);
    if (!inserted) {
      if (now - it->second < kResolveInterval) {
        resolves_limited_.fetch_add(1);
        return;
      }
      it->second = now;
    }
    if (last_resolve_.size() > kResolvePruneSize) {
      std::erase_if(last_resolve_,
                    [&](const auto& e) { return now - e.second >= kResolveInterval; });
    }
    resolve_queue_.push_back(key);
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void NetlinkMirror::SendResolves() {
  std::vector<NeighborKey> queue;
  {
    absl::MutexLock lock(&resolve_mu_);
    queue.swap(resolve_queue_);
  }
  const int current = ifindex_.load();
  if (current == 0) return;
  for (const NeighborKey& key : queue) {
    // NTF_USE: the kernel treats the entry as wanted by traffic (neigh_event_send): it creates
    // it if needed and starts resolution from NONE, FAILED or STALE. No ack is requested;
    // a refusal arrives as an error and is counted.
    alignas(nlmsghdr) uint8_t req[128];
    nlmsghdr* nlh = mnl_nlmsg_put_header(req);
    nlh->nlmsg_type = RTM_NEWNEIGH;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE;
    auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
    ndm->ndm_family = ToAf(key.family);
    ndm->ndm_ifindex = current;
    ndm->ndm_state = NUD_NONE;
    ndm->ndm_flags = NTF_USE;
    mnl_attr_put(nlh, NDA_DST, AddrLen(key.family), key.addr.data());
    if (SendRequest(nlh).ok()) {
      resolves_sent_.fetch_add(1);
    } else {
      errors_.fetch_add(1);
    }
  }
}

std::optional<MacAddr> NetlinkMirror::Neighbor(const IpAddr& addr, IpFamily family) const {
  if (family != IpFamily::kIpv4 && family != IpFamily::kIpv6) return std::nullopt;
  const NeighborKey key{family, AddrBytes(addr, family)};
  absl::ReaderMutexLock lock(&mu_);
  auto it = live_.neighbors.find(key);
  if (it == live_.neighbors.end()) return std::nullopt;
  return it->second.mac;
}

std::optional<IpAddr> NetlinkMirror::NextHop(const IpAddr& dst, IpFamily family) const {
  if (family != IpFamily::kIpv4 && family != IpFamily::kIpv6) return std::nullopt;
  const std::array<uint8_t, 16> d = AddrBytes(dst, family);
  absl::ReaderMutexLock lock(&mu_);
  for (int len = MaxPrefix(family); len >= 0; --len) {
    const std::map<RouteKey, RouteValue>& routes =
        family == IpFamily::kIpv4 ? live_.v4[len] : live_.v6[len];
    if (routes.empty()) continue;
    const std::array<uint8_t, 16> prefix = Masked(d, len);
    // The first entry at or after (prefix, metric 0) is the prefix's lowest-metric route.
    auto it = routes.lower_bound(RouteKey{prefix, 0});
    if (it == routes.end() || it->first.prefix != prefix) continue;
    return ToIpAddr(it->second.has_gateway ? it->second.gateway : d);
  }
  return std::nullopt;
}

std::vector<NeighborEntry> NetlinkMirror::Neighbors() const {
  std::vector<NeighborEntry> out;
  absl::ReaderMutexLock lock(&mu_);
  out.reserve(live_.neighbors.size());
  for (const auto& [key, value] : live_.neighbors) {
    out.push_back(NeighborEntry{ToIpAddr(key.addr), key.family, value.mac});
  }
  return out;
}

uint64_t NetlinkMirror::generation() const { return generation_.load(); }

int NetlinkMirror::ifindex() const { return ifindex_.load(); }

NetlinkMirrorStats NetlinkMirror::stats() const {
  NetlinkMirrorStats s;
  s.resyncs = resyncs_.load();
  s.overruns = overruns_.load();
  s.resolves_sent = resolves_sent_.load();
  s.resolves_limited = resolves_limited_.load();
  s.errors = errors_.load();
  return s;
}

}  // namespace lb
