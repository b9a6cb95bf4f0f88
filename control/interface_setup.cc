#include "control/interface_setup.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lb {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status AddAddress(unsigned ifindex, const std::string& cidr) {
  const size_t slash = cidr.find('/');
  const std::string addr = cidr.substr(0, slash);
  uint32_t prefix = 0;
  unsigned char bytes[16];
  int family;
  if (inet_pton(AF_INET, addr.c_str(), bytes) == 1) {
    family = AF_INET;
    prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), bytes) == 1) {
    family = AF_INET6;
    prefix = 128;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("interface address \"", cidr, "\": not an IP address"));
  }
  if (slash != std::string::npos) {
    uint32_t p;
    if (!absl::SimpleAtoi(cidr.substr(slash + 1), &p) || p > prefix) {
      return absl::InvalidArgumentError(
          absl::StrCat("interface address \"", cidr, "\": bad prefix length"));
    }
    prefix = p;
  }
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK;
  nlh->nlmsg_seq = static_cast<unsigned>(time(nullptr));
  auto* ifa = static_cast<struct ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<unsigned char>(family);
  ifa->ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa->ifa_index = ifindex;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  const size_t len = family == AF_INET ? 4 : 16;
  mnl_attr_put(nlh, IFA_LOCAL, len, bytes);
  mnl_attr_put(nlh, IFA_ADDRESS, len, bytes);
  struct mnl_socket* nl = mnl_socket_open(NETLINK_ROUTE);
  if (nl == nullptr) return Errno("netlink socket");
  absl::Status st = absl::OkStatus();
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
      mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
    st = Errno("netlink send");
  } else {
    const int n = static_cast<int>(mnl_socket_recvfrom(nl, buf, sizeof(buf)));
    if (n < 0 ||
        mnl_cb_run(buf, n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), nullptr, nullptr) < 0) {
      st = Errno(absl::StrCat("adding address ", cidr));
    }
  }
  mnl_socket_close(nl);
  return st;
}

}  // namespace

absl::Status SetUpInterface(const InterfaceSpec& spec) {
  if (spec.name.empty() || spec.name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrCat("interface name \"", spec.name, "\""));
  }
  // The TAP appears when the dataplane probes its port; give it a moment.
  unsigned ifindex = 0;
  for (int i = 0; i < 50 && ifindex == 0; ++i) {
    ifindex = if_nametoindex(spec.name.c_str());
    if (ifindex == 0) usleep(20000);
  }
  if (ifindex == 0) {
    return absl::NotFoundError(absl::StrCat("interface ", spec.name, " does not exist (is the ",
                                            "exception port a net_tap with iface=", spec.name,
                                            "?)"));
  }
  Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) return Errno("socket");
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  std::strncpy(ifr.ifr_name, spec.name.c_str(), IFNAMSIZ - 1);
  // The MAC can only change while the link is down.
  if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) return Errno("SIOCGIFFLAGS " + spec.name);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_UP);
  if (ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) return Errno("link down " + spec.name);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(ifr.ifr_hwaddr.sa_data, spec.mac.bytes, 6);
  if (ioctl(sock.get(), SIOCSIFHWADDR, &ifr) < 0) return Errno("set MAC of " + spec.name);
  ifr.ifr_mtu = static_cast<int>(spec.mtu);
  if (ioctl(sock.get(), SIOCSIFMTU, &ifr) < 0) {
    return Errno(absl::StrCat("set MTU ", spec.mtu, " on ", spec.name));
  }
  if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) return Errno("SIOCGIFFLAGS " + spec.name);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) return Errno("link up " + spec.name);
  for (const std::string& a : spec.addresses) {
    if (absl::Status st = AddAddress(ifindex, a); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace lb
