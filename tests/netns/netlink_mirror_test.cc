// NetlinkMirror against a real kernel: each test runs in a fresh, anonymous network namespace
// (unshare(CLONE_NEWNET) on the test thread; the kernel deletes it when the test leaves it and
// its last socket closes), builds a veth pair lbt0/lbt1 with `ip`, and mirrors lbt0.
#include "dataplane/netlink_mirror.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "dataplane/core/flow_key.h"
#include "dataplane/core/rewrite.h"

namespace lb {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr char kLbt0Mac[] = "02:00:00:00:00:a0";
constexpr char kLbt1Mac[] = "02:00:00:00:00:a1";

IpAddr V4(const char* s) {
  IpAddr a{};
  EXPECT_EQ(inet_pton(AF_INET, s, a.bytes), 1) << s;
  return a;
}

IpAddr V6(const char* s) {
  IpAddr a{};
  EXPECT_EQ(inet_pton(AF_INET6, s, a.bytes), 1) << s;
  return a;
}

MacAddr Mac(const char* s) {
  MacAddr m{};
  unsigned b[6];
  EXPECT_EQ(std::sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]), 6);
  for (int i = 0; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(b[i]);
  return m;
}

::testing::AssertionResult Sh(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  if (rc == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "`" << cmd << "` exited with " << rc;
}

::testing::AssertionResult WriteFile(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  f.close();
  if (f) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "cannot write " << path;
}

// Polls pred until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& pred, milliseconds timeout = milliseconds(2000)) {
  const auto deadline = steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

class NetlinkMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    original_ns_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(original_ns_, 0) << std::strerror(errno);
    if (unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "unshare(CLONE_NEWNET): " << strerror(errno);
    in_test_ns_ = true;
    // Addresses usable at once (no duplicate address detection) on interfaces made from now on.
    ASSERT_TRUE(WriteFile("/proc/sys/net/ipv6/conf/all/accept_dad", "0"));
    ASSERT_TRUE(WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", "0"));
  }

  void TearDown() override {
    hold_.store(false);
    mirror_.reset();  // its thread and socket belong to the test namespace
    if (packet_fd_ >= 0) close(packet_fd_);
    if (in_test_ns_) {
      EXPECT_EQ(setns(original_ns_, CLONE_NEWNET), 0) << std::strerror(errno);
    }
    if (original_ns_ >= 0) close(original_ns_);
  }

  // lbt0 (mirrored) and its peer lbt1, both up, with 10.9.0.1/24 and fd00:9::1/64 on lbt0.
  void MakeVeth() {
    ASSERT_TRUE(Sh(std::string("ip link add lbt0 address ") + kLbt0Mac +
                   " type veth peer name lbt1 address " + kLbt1Mac));
    ASSERT_TRUE(Sh("ip link set lbt0 up && ip link set lbt1 up"));
    ASSERT_TRUE(Sh("ip addr add 10.9.0.1/24 dev lbt0 && ip addr add fd00:9::1/64 dev lbt0 nodad"));
  }

  void StartMirror() {
    auto m = NetlinkMirror::Start("lbt0", [this] {
      changes_.fetch_add(1);
      while (hold_.load()) std::this_thread::sleep_for(milliseconds(5));
    });
    ASSERT_TRUE(m.ok()) << m.status();
    mirror_ = std::move(*m);
  }

  std::optional<MacAddr> Neigh4(const char* a) const {
    return mirror_->Neighbor(V4(a), IpFamily::kIpv4);
  }
  std::optional<MacAddr> Neigh6(const char* a) const {
    return mirror_->Neighbor(V6(a), IpFamily::kIpv6);
  }
  std::optional<IpAddr> Hop4(const char* a) const {
    return mirror_->NextHop(V4(a), IpFamily::kIpv4);
  }
  std::optional<IpAddr> Hop6(const char* a) const {
    return mirror_->NextHop(V6(a), IpFamily::kIpv6);
  }
  // Neighbours in the mirror with an address of 10.9.0.0/16 (ignores IPv6 multicast entries the
  // kernel creates on its own).
  int TestNeighbors() const {
    int n = 0;
    for (const NeighborEntry& e : mirror_->Neighbors()) {
      n += e.family == IpFamily::kIpv4 && e.addr.bytes[0] == 10 && e.addr.bytes[1] == 9;
    }
    return n;
  }

  // Runs `ip -batch` on the given commands, one a line.
  ::testing::AssertionResult IpBatch(const std::string& commands) {
    char path[] = "/tmp/lbnl-batch-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return ::testing::AssertionFailure() << "mkstemp: " << std::strerror(errno);
    const bool written =
        write(fd, commands.data(), commands.size()) == static_cast<ssize_t>(commands.size());
    close(fd);
    ::testing::AssertionResult result = written ? Sh(std::string("ip -batch ") + path)
                                                : ::testing::AssertionFailure()
                                                      << "cannot write " << path;
    unlink(path);
    return result;
  }

  // Captures every frame lbt1 receives.
  void OpenCapture() {
    packet_fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    ASSERT_GE(packet_fd_, 0) << std::strerror(errno);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = static_cast<int>(if_nametoindex("lbt1"));
    ASSERT_NE(sll.sll_ifindex, 0);
    ASSERT_EQ(bind(packet_fd_, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)), 0);
  }

  // Counts ARP requests (or, for IPv6, neighbour solicitations) for `target` that lbt1 receives
  // within `window`; returns early once `want` were seen.
  int CountSolicitations(IpFamily family, const IpAddr& target, milliseconds window,
                         int want = 1000) {
    int seen = 0;
    const auto deadline = steady_clock::now() + window;
    uint8_t frame[2048];
    while (seen < want) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
      if (left <= 0) break;
      pollfd pfd{packet_fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      const ssize_t n = recv(packet_fd_, frame, sizeof(frame), MSG_DONTWAIT);
      if (n < 14) continue;
      const uint16_t type = static_cast<uint16_t>(frame[12] << 8 | frame[13]);
      if (family == IpFamily::kIpv4 && type == ETH_P_ARP && n >= 42) {
        // ARP: opcode at 20, target protocol address at 38.
        seen += frame[21] == 1 && std::memcmp(frame + 38, target.bytes, 4) == 0;
      } else if (family == IpFamily::kIpv6 && type == ETH_P_IPV6 && n >= 78) {
        // IPv6 next header 58 (ICMPv6) at 20; ICMPv6 type 135 at 54; target at 62.
        seen +=
            frame[20] == 58 && frame[54] == 135 && std::memcmp(frame + 62, target.bytes, 16) == 0;
      }
    }
    return seen;
  }

  int original_ns_ = -1;
  bool in_test_ns_ = false;
  int packet_fd_ = -1;
  std::atomic<int> changes_{0};
  std::atomic<bool> hold_{false};  // while set, on_change blocks the mirror's thread
  std::unique_ptr<NetlinkMirror> mirror_;
};

TEST_F(NetlinkMirrorTest, RejectsBadInterfaceNames) {
  EXPECT_FALSE(NetlinkMirror::Start("", nullptr).ok());
  EXPECT_FALSE(NetlinkMirror::Start("a-name-longer-than-ifnamsiz", nullptr).ok());
}

TEST_F(NetlinkMirrorTest, InitialLoadSeesExistingState) {
  MakeVeth();
  ASSERT_TRUE(Sh("ip neigh replace 10.9.0.2 lladdr 02:00:00:00:00:02 dev lbt0 nud permanent"));
  ASSERT_TRUE(Sh("ip neigh replace fd00:9::2 lladdr 02:00:00:00:00:12 dev lbt0 nud permanent"));
  ASSERT_TRUE(Sh("ip route add 10.20.0.0/16 via 10.9.0.2 dev lbt0"));
  ASSERT_TRUE(Sh("ip -6 route add fd00:20::/32 via fd00:9::2 dev lbt0"));
  StartMirror();

  // Loaded before Start returned: no waiting.
  EXPECT_EQ(mirror_->ifindex(), static_cast<int>(if_nametoindex("lbt0")));
  EXPECT_EQ(Neigh4("10.9.0.2"), Mac("02:00:00:00:00:02"));
  EXPECT_EQ(Neigh6("fd00:9::2"), Mac("02:00:00:00:00:12"));
  EXPECT_EQ(Hop4("10.20.1.1"), V4("10.9.0.2"));
  EXPECT_EQ(Hop6("fd00:20::1"), V6("fd00:9::2"));
  EXPECT_EQ(TestNeighbors(), 1);
  EXPECT_EQ(changes_.load(), 0);  // the initial load is not a change
  EXPECT_EQ(mirror_->stats().resyncs, 1u);
  EXPECT_EQ(mirror_->stats().errors, 0u);
}

TEST_F(NetlinkMirrorTest, TracksNeighborsAddedChangedAndDeleted) {
  MakeVeth();
  ASSERT_TRUE(Sh("ip addr add 10.8.0.1/24 dev lbt1"));
  StartMirror();
  const uint64_t gen0 = mirror_->generation();
  EXPECT_FALSE(Neigh4("10.9.0.2").has_value());

  ASSERT_TRUE(Sh("ip neigh replace 10.9.0.2 lladdr 02:00:00:00:00:02 dev lbt0 nud permanent"));
  ASSERT_TRUE(Sh("ip neigh replace fd00:9::2 lladdr 02:00:00:00:00:12 dev lbt0 nud permanent"));
  ASSERT_TRUE(Sh("ip neigh replace 10.9.0.4 lladdr 02:00:00:00:00:04 dev lbt0 nud stale"));
  EXPECT_TRUE(WaitFor([&] { return Neigh4("10.9.0.2") == Mac("02:00:00:00:00:02"); }));
  EXPECT_TRUE(WaitFor([&] { return Neigh6("fd00:9::2") == Mac("02:00:00:00:00:12"); }));
  EXPECT_TRUE(WaitFor([&] { return Neigh4("10.9.0.4") == Mac("02:00:00:00:00:04"); }));
  EXPECT_TRUE(WaitFor([&] { return changes_.load() > 0; }));
  EXPECT_GT(mirror_->generation(), gen0);
  EXPECT_EQ(TestNeighbors(), 2);

  // A new link-layer address replaces the old one.
  ASSERT_TRUE(Sh("ip neigh replace 10.9.0.2 lladdr 02:00:00:00:00:22 dev lbt0 nud permanent"));
  EXPECT_TRUE(WaitFor([&] { return Neigh4("10.9.0.2") == Mac("02:00:00:00:00:22"); }));

  // Neighbours of another interface are not mirrored. Events arrive in order, so once the
  // later change on lbt0 is visible the earlier one on lbt1 has been seen (and ignored).
  ASSERT_TRUE(Sh("ip neigh replace 10.8.0.5 lladdr 02:00:00:00:00:05 dev lbt1 nud permanent"));
  ASSERT_TRUE(Sh("ip neigh replace 10.9.0.6 lladdr 02:00:00:00:00:06 dev lbt0 nud permanent"));
  EXPECT_TRUE(WaitFor([&] { return Neigh4("10.9.0.6").has_value(); }));
  EXPECT_FALSE(Neigh4("10.8.0.5").has_value());

  const int changes_before_delete = changes_.load();
  ASSERT_TRUE(Sh("ip neigh del 10.9.0.2 dev lbt0 && ip neigh del fd00:9::2 dev lbt0"));
  EXPECT_TRUE(WaitFor([&] { return !Neigh4("10.9.0.2").has_value(); }));
  EXPECT_TRUE(WaitFor([&] { return !Neigh6("fd00:9::2").has_value(); }));
  EXPECT_GT(changes_.load(), changes_before_delete);
  EXPECT_TRUE(Neigh4("10.9.0.4").has_value());
  EXPECT_EQ(mirror_->stats().errors, 0u);
}

// "10.9.<100 + i / 250>.<i % 250 + 1>": 10,000 distinct addresses of 10.9.0.0/16 for i < 10,000.
std::string BurstAddr(int i) {
  return "10.9." + std::to_string(100 + i / 250) + "." + std::to_string(i % 250 + 1);
}

TEST_F(NetlinkMirrorTest, ManyNeighborsInABurst) {
  MakeVeth();
  StartMirror();
  std::string batch;
  for (int i = 0; i < 1000; ++i) {
    char mac[32];
    std::snprintf(mac, sizeof(mac), "02:00:00:00:%02x:%02x", i >> 8, i & 0xff);
    batch += "neigh replace " + BurstAddr(i) + " lladdr " + mac + " dev lbt0 nud permanent\n";
  }
  ASSERT_TRUE(IpBatch(batch));
  EXPECT_TRUE(WaitFor([&] { return TestNeighbors() == 1000; })) << TestNeighbors();
  EXPECT_EQ(Neigh4(BurstAddr(999).c_str()), Mac("02:00:00:00:03:e7"));
  ASSERT_TRUE(Sh("ip neigh flush dev lbt0 nud permanent"));
  EXPECT_TRUE(WaitFor([&] { return TestNeighbors() == 0; })) << TestNeighbors();
}

TEST_F(NetlinkMirrorTest, RecoversFromOverrunWithAFullReload) {
  MakeVeth();
  StartMirror();
  // The first on_change of the burst holds the mirror's thread while 30,000 events overflow its
  // socket buffer: events are lost, and only a full reload can give the right final state.
  hold_.store(true);
  ASSERT_TRUE(Sh("ip neigh replace 10.9.0.2 lladdr 02:00:00:00:00:02 dev lbt0 nud permanent"));
  std::string batch;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10000; ++i) {
      batch += round == 1 ? "neigh del " + BurstAddr(i) + " dev lbt0\n"
                          : "neigh replace " + BurstAddr(i) +
                                " lladdr 02:00:00:00:00:01 dev lbt0 nud permanent\n";
    }
  }
  batch += "neigh del 10.9.0.2 dev lbt0\n";
  ASSERT_TRUE(IpBatch(batch));
  hold_.store(false);
  EXPECT_TRUE(WaitFor([&] { return TestNeighbors() == 10000; }, milliseconds(5000)))
      << TestNeighbors();
  EXPECT_FALSE(Neigh4("10.9.0.2").has_value());
  EXPECT_GT(mirror_->stats().overruns, 0u);
  EXPECT_GE(mirror_->stats().resyncs, 2u);
}

TEST_F(NetlinkMirrorTest, NextHopLongestPrefixOverTheInterface) {
  MakeVeth();
  ASSERT_TRUE(Sh("ip addr add 10.8.0.1/24 dev lbt1 && ip addr add fd00:8::1/64 dev lbt1 nodad"));
  ASSERT_TRUE(Sh("ip route add 10.20.0.0/16 via 10.9.0.2 dev lbt0"));  // before Start
  StartMirror();
  ASSERT_TRUE(Sh("ip route add 10.20.5.0/24 via 10.9.0.3 dev lbt0"));
  ASSERT_TRUE(Sh("ip route add 10.30.0.0/16 via 10.8.0.2 dev lbt1"));
  ASSERT_TRUE(Sh("ip route add 10.40.0.0/16 via 10.9.0.4 dev lbt0 metric 100"));
  ASSERT_TRUE(Sh("ip route add 10.40.0.0/16 via 10.9.0.5 dev lbt0 metric 50"));
  ASSERT_TRUE(Sh("ip route add 10.50.0.0/16 via 10.9.0.6 dev lbt0 table 100"));
  ASSERT_TRUE(
      Sh("ip route add 10.60.0.0/16 nexthop via 10.8.0.7 dev lbt1 "
         "nexthop via 10.9.0.7 dev lbt0"));
  ASSERT_TRUE(Sh("ip -6 route add fd00:20::/32 via fd00:9::2 dev lbt0"));
  ASSERT_TRUE(Sh("ip -6 route add fd00:30::/32 via fd00:8::2 dev lbt1"));
  ASSERT_TRUE(Sh("ip -6 route add fd00:20:5::/48 via fe80::3 dev lbt0"));
  // The last change made is visible, so all earlier ones have been applied.
  ASSERT_TRUE(WaitFor([&] { return Hop6("fd00:20:5::1").has_value(); }));

  // Longest prefix via lbt0.
  EXPECT_EQ(Hop4("10.20.1.1"), V4("10.9.0.2"));
  EXPECT_EQ(Hop4("10.20.5.9"), V4("10.9.0.3"));
  EXPECT_EQ(Hop6("fd00:20::1"), V6("fd00:9::2"));
  EXPECT_EQ(Hop6("fd00:20:5::1"), V6("fe80::3"));
  // On-link subnets: the destination itself.
  EXPECT_EQ(Hop4("10.9.0.77"), V4("10.9.0.77"));
  EXPECT_EQ(Hop6("fd00:9::77"), V6("fd00:9::77"));
  // Lowest metric among equal prefixes.
  EXPECT_EQ(Hop4("10.40.1.1"), V4("10.9.0.5"));
  // Multipath: the next hop through lbt0.
  EXPECT_EQ(Hop4("10.60.1.1"), V4("10.9.0.7"));
  // Routes via another interface, outside every route, or in another table: none.
  EXPECT_EQ(Hop4("10.30.0.1"), std::nullopt);
  EXPECT_EQ(Hop4("10.8.0.2"), std::nullopt);
  EXPECT_EQ(Hop6("fd00:30::1"), std::nullopt);
  EXPECT_EQ(Hop6("fd00:8::2"), std::nullopt);
  EXPECT_EQ(Hop4("192.0.2.1"), std::nullopt);
  EXPECT_EQ(Hop6("2001:db8::1"), std::nullopt);
  EXPECT_EQ(Hop4("10.50.1.1"), std::nullopt);

  // Removing the more specific route falls back to the shorter one.
  ASSERT_TRUE(Sh("ip route del 10.20.5.0/24"));
  EXPECT_TRUE(WaitFor([&] { return Hop4("10.20.5.9") == V4("10.9.0.2"); }));
  ASSERT_TRUE(Sh("ip route del 10.40.0.0/16 metric 50"));
  EXPECT_TRUE(WaitFor([&] { return Hop4("10.40.1.1") == V4("10.9.0.4"); }));
  // Replacing a route with one via another interface removes it.
  ASSERT_TRUE(Sh("ip route replace 10.20.0.0/16 via 10.8.0.2 dev lbt1"));
  EXPECT_TRUE(WaitFor([&] { return !Hop4("10.20.1.1").has_value(); }));
  // A default route via lbt0 covers everything, even what lbt1 routes more specifically.
  ASSERT_TRUE(Sh("ip route add default via 10.9.0.254 dev lbt0"));
  ASSERT_TRUE(Sh("ip -6 route add default via fd00:9::fe dev lbt0"));
  EXPECT_TRUE(WaitFor([&] { return Hop6("2001:db8::1") == V6("fd00:9::fe"); }));
  EXPECT_EQ(Hop4("192.0.2.1"), V4("10.9.0.254"));
  EXPECT_EQ(Hop4("10.30.0.1"), V4("10.9.0.254"));
  EXPECT_EQ(Hop4("10.20.1.1"), V4("10.9.0.254"));
  EXPECT_GT(changes_.load(), 0);
  EXPECT_EQ(mirror_->stats().errors, 0u);
}

TEST_F(NetlinkMirrorTest, LinkDownDropsRoutesTheKernelFlushesSilently) {
  MakeVeth();
  ASSERT_TRUE(Sh("ip route add 10.20.0.0/16 via 10.9.0.2 dev lbt0"));
  StartMirror();
  ASSERT_EQ(Hop4("10.20.1.1"), V4("10.9.0.2"));
  ASSERT_TRUE(Sh("ip link set lbt0 down"));
  EXPECT_TRUE(WaitFor([&] { return !Hop4("10.20.1.1").has_value(); }));
  EXPECT_TRUE(WaitFor([&] { return !Hop4("10.9.0.77").has_value(); }));
  ASSERT_TRUE(Sh("ip link set lbt0 up"));
  EXPECT_TRUE(WaitFor([&] { return Hop4("10.9.0.77") == V4("10.9.0.77"); }));
  EXPECT_FALSE(Hop4("10.20.1.1").has_value());  // the kernel does not restore it either
}

TEST_F(NetlinkMirrorTest, AddressRemovalDropsRoutesTheKernelFlushesSilently) {
  MakeVeth();
  ASSERT_TRUE(Sh("ip route add 10.20.0.0/16 via 10.9.0.2 dev lbt0"));
  // Let the carrier settle (linkwatch reports it late), so no link event hides what is tested.
  ASSERT_TRUE(WaitFor([] { return Sh("ip link show lbt0 | grep -q 'state UP'"); }));
  StartMirror();
  ASSERT_EQ(Hop4("10.20.1.1"), V4("10.9.0.2"));
  // Removing the last IPv4 address flushes the routes via the interface without notifications.
  ASSERT_TRUE(Sh("ip addr del 10.9.0.1/24 dev lbt0"));
  EXPECT_TRUE(WaitFor([&] { return !Hop4("10.20.1.1").has_value(); }));
  EXPECT_EQ(Hop6("fd00:9::77"), V6("fd00:9::77"));
}

TEST_F(NetlinkMirrorTest, InterfaceAppearsLaterAndGoes) {
  StartMirror();  // lbt0 does not exist yet
  EXPECT_EQ(mirror_->ifindex(), 0);
  EXPECT_FALSE(Hop4("10.9.0.77").has_value());

  MakeVeth();
  ASSERT_TRUE(Sh("ip neigh replace 10.9.0.2 lladdr 02:00:00:00:00:02 dev lbt0 nud permanent"));
  ASSERT_TRUE(Sh("ip route add 10.20.0.0/16 via 10.9.0.2 dev lbt0"));
  EXPECT_TRUE(WaitFor([&] { return mirror_->ifindex() != 0; }));
  EXPECT_TRUE(WaitFor([&] { return Neigh4("10.9.0.2").has_value(); }));
  EXPECT_TRUE(WaitFor([&] { return Hop4("10.20.1.1") == V4("10.9.0.2"); }));
  EXPECT_EQ(Hop6("fd00:9::5"), V6("fd00:9::5"));

  const int changes_before = changes_.load();
  ASSERT_TRUE(Sh("ip link del lbt0"));
  EXPECT_TRUE(WaitFor([&] { return mirror_->ifindex() == 0; }));
  EXPECT_TRUE(WaitFor([&] {
    return mirror_->Neighbors().empty() && !Hop4("10.20.1.1").has_value() &&
           !Hop4("10.9.0.77").has_value() && !Hop6("fd00:9::5").has_value();
  }));
  EXPECT_GT(changes_.load(), changes_before);

  // Back again, under a new index.
  MakeVeth();
  ASSERT_TRUE(Sh("ip neigh replace 10.9.0.3 lladdr 02:00:00:00:00:03 dev lbt0 nud permanent"));
  EXPECT_TRUE(WaitFor([&] { return Neigh4("10.9.0.3").has_value(); }));
  EXPECT_EQ(mirror_->ifindex(), static_cast<int>(if_nametoindex("lbt0")));
  EXPECT_FALSE(Neigh4("10.9.0.2").has_value());
}

TEST_F(NetlinkMirrorTest, InterfaceRenamedAwayAndBack) {
  MakeVeth();
  StartMirror();
  const int index = mirror_->ifindex();
  ASSERT_NE(index, 0);
  ASSERT_TRUE(Hop4("10.9.0.77").has_value());
  ASSERT_TRUE(Sh("ip link set lbt0 down && ip link set lbt0 name lbt9"));
  EXPECT_TRUE(WaitFor([&] { return mirror_->ifindex() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return !Hop6("fd00:9::77").has_value(); }));
  ASSERT_TRUE(Sh("ip link set lbt9 name lbt0 && ip link set lbt0 up"));
  EXPECT_TRUE(WaitFor([&] { return mirror_->ifindex() == index; }));
  // Routes restored by the kernel (IPv4 connected route on up) are mirrored again.
  EXPECT_TRUE(WaitFor([&] { return Hop4("10.9.0.77") == V4("10.9.0.77"); }));
}

TEST_F(NetlinkMirrorTest, ResolveSendsOneSolicitationPerSecond) {
  MakeVeth();
  // Kernel retransmissions every 5 s, so that any second request within the test's window
  // would come from the mirror.
  ASSERT_TRUE(WriteFile("/proc/sys/net/ipv4/neigh/lbt0/retrans_time_ms", "5000"));
  ASSERT_TRUE(WriteFile("/proc/sys/net/ipv6/neigh/lbt0/retrans_time_ms", "5000"));
  OpenCapture();
  StartMirror();

  const IpAddr v4 = V4("10.9.0.7");
  const IpAddr v6 = V6("fd00:9::7");
  mirror_->Resolve(v4, IpFamily::kIpv4);
  mirror_->Resolve(v6, IpFamily::kIpv6);
  EXPECT_EQ(CountSolicitations(IpFamily::kIpv4, v4, milliseconds(2000), 1), 1);
  EXPECT_EQ(CountSolicitations(IpFamily::kIpv6, v6, milliseconds(2000), 1), 1);
  EXPECT_FALSE(Neigh4("10.9.0.7").has_value());  // INCOMPLETE: nobody answers

  mirror_->Resolve(v4, IpFamily::kIpv4);  // within the second: dropped
  EXPECT_EQ(CountSolicitations(IpFamily::kIpv4, v4, milliseconds(500)), 0);
  NetlinkMirrorStats s = mirror_->stats();
  EXPECT_EQ(s.resolves_sent, 2u);
  EXPECT_EQ(s.resolves_limited, 1u);

  std::this_thread::sleep_for(milliseconds(600));
  mirror_->Resolve(v4, IpFamily::kIpv4);  // more than a second later: sent again
  EXPECT_TRUE(WaitFor([&] { return mirror_->stats().resolves_sent == 3; }));
  EXPECT_EQ(mirror_->stats().errors, 0u);
}

TEST_F(NetlinkMirrorTest, ResolveLearnsTheNeighborThatAnswers) {
  MakeVeth();
  // lbt1 owns the addresses and answers; accept_local lets it take lbt0's (local) source.
  ASSERT_TRUE(Sh("ip addr add 10.9.0.3/24 dev lbt1 && ip addr add fd00:9::3/64 dev lbt1 nodad"));
  ASSERT_TRUE(WriteFile("/proc/sys/net/ipv4/conf/lbt1/accept_local", "1"));
  ASSERT_TRUE(WriteFile("/proc/sys/net/ipv4/conf/lbt0/accept_local", "1"));
  StartMirror();
  ASSERT_FALSE(Neigh4("10.9.0.3").has_value());
  mirror_->Resolve(V4("10.9.0.3"), IpFamily::kIpv4);
  mirror_->Resolve(V6("fd00:9::3"), IpFamily::kIpv6);
  EXPECT_TRUE(WaitFor([&] { return Neigh4("10.9.0.3") == Mac(kLbt1Mac); }));
  EXPECT_TRUE(WaitFor([&] { return Neigh6("fd00:9::3") == Mac(kLbt1Mac); }));
  EXPECT_GT(changes_.load(), 0);
}

TEST_F(NetlinkMirrorTest, ResolveWithoutInterfaceDoesNothing) {
  StartMirror();
  mirror_->Resolve(V4("10.9.0.7"), IpFamily::kIpv4);
  mirror_->Resolve(V4("10.9.0.7"), IpFamily::kNone);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(mirror_->stats().resolves_sent, 0u);
  EXPECT_EQ(mirror_->stats().errors, 0u);
}

TEST_F(NetlinkMirrorTest, DestructorReturnsPromptly) {
  MakeVeth();
  StartMirror();
  const auto start = steady_clock::now();
  mirror_.reset();
  EXPECT_LT(steady_clock::now() - start, milliseconds(500));
}

}  // namespace
}  // namespace lb
