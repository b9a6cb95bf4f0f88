// The birdc reply parser on replies captured from BIRD 2.0.12 (and broken ones), and
// BirdClient against peers that misbehave: nobody listening, a listener that never answers,
// one that answers garbage or hangs up mid-reply. Real BIRD is in announcer_netns_test.
#include "routing/bird_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"

namespace lb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Captured from BIRD 2.0.12 (a node with OSPF on n0, neighbour 10.201.0.1 as DR).
constexpr char kShowProtocols[] =
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-device1    Device     ---        up     17:50:49.252  \n"
    " bfd1       BFD        ---        up     17:50:49.252  \n"
    " o4         OSPF       master4    up     17:50:49.252  Running\n"
    " o6         OSPF       master6    start  2024-01-02 17:50:49  Alone\n"
    " k4         Kernel     master4    down   17:50:49.252  Error: Kernel table conflict\n"
    "0000 \n";

constexpr char kNeighbors[] =
    "1013-o4:\n"
    " Router ID   \tPri\t     State     \tDTime\tInterface  Router IP\n"
    " 10.201.0.1  \t255\tFull/DR   \t 3.719\tn0         10.201.0.1\n"
    " 10.201.0.12 \t0\t2-Way/DROther\t 3.102\tn0         10.201.0.12\n"
    " \n"
    " o6:\n"
    " Router ID   \tPri\t     State     \tDTime\tInterface  Router IP\n"
    " 10.201.0.1  \t255\tExStart/DR   \t 3.365\tn0         fe80::5cb2:a1ff:fe15:66d5\n"
    "0000 \n";

constexpr char kOspfStateV2[] =
    "1016-\n"
    " area 0.0.0.0\n"
    " \n"
    " \trouter 10.201.0.1\n"
    " \t\tdistance 10\n"
    " \t\tnetwork 10.201.0.0/24 metric 10\n"
    " \n"
    " \trouter 10.201.0.11\n"
    " \t\tdistance 0\n"
    " \t\tnetwork 10.201.0.0/24 metric 10\n"
    " \t\tstubnet 10.201.100.1/32 metric 10\n"
    " \t\tstubnet 10.201.100.2/32 metric 10\n"
    " \n"
    " \tnetwork 10.201.0.0/24\n"
    " \t\tdr 10.201.0.1\n"
    " \t\tdistance 10\n"
    " \t\trouter 10.201.0.1\n"
    " \t\trouter 10.201.0.11\n"
    "0000 \n";

constexpr char kOspfStateV3[] =
    "1016-\n"
    " area 0.0.0.0\n"
    " \n"
    " \trouter 10.201.0.1\n"
    " \t\tunreachable\n"
    " \n"
    " \trouter 10.201.0.11\n"
    " \t\tdistance 0\n"
    " \t\tnetwork [10.201.0.1-2] metric 10\n"
    " \t\tstubnet fd20:100::1/128 metric 10\n"
    " \n"
    " \tnetwork [10.201.0.1-2]\n"
    " \t\tdistance 10\n"
    " \t\trouter 10.201.0.1\n"
    " \t\trouter 10.201.0.11\n"
    "0000 \n";

TEST(BirdReplyParser, SplitsCodesAndContinuations) {
  absl::StatusOr<BirdReply> r = ParseBirdReply(kShowProtocols);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->lines.size(), 7u);
  EXPECT_EQ(r->lines[0].code, 2002);
  EXPECT_EQ(r->lines[2].code, 1002);  // " bfd1 ..." continues the 1002 block
  EXPECT_EQ(r->lines[2].text, "bfd1       BFD        ---        up     17:50:49.252  ");
  EXPECT_EQ(r->final_code(), 0);
  EXPECT_TRUE(BirdReplyStatus(*r).ok());
}

TEST(BirdReplyParser, ByteByByteEqualsWhole) {
  BirdReplyParser p;
  const std::string text = kNeighbors;
  for (size_t i = 0; i < text.size(); ++i) {
    ASSERT_FALSE(p.done()) << "done early at byte " << i;
    ASSERT_TRUE(p.Feed(text.substr(i, 1)).ok());
  }
  ASSERT_TRUE(p.done());
  EXPECT_EQ(p.reply().Text(), ParseBirdReply(text)->Text());
}

TEST(BirdReplyParser, FinalCodeWithoutTextOrSpace) {
  absl::StatusOr<BirdReply> r = ParseBirdReply("0000\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->final_code(), 0);
}

TEST(BirdReplyParser, RejectsMalformed) {
  for (const char* bad : {
           "hello\n",                        // no code
           " orphan continuation\n0000 \n",  // continuation first
           "12a4 x\n",                       // not 4 digits
           "0001+ x\n",                      // bad separator
           "0000 \nextra\n",                 // data after the final line
           "0000 \n0000 \n",                 // two final lines
           "1002-row\n\n0000 \n",            // empty line without the leading space
       }) {
    EXPECT_FALSE(ParseBirdReply(bad).ok()) << absl::CEscape(bad);
  }
  EXPECT_FALSE(ParseBirdReply("1002-unfinished\n").ok());  // no final line
  EXPECT_FALSE(ParseBirdReply("0000 no newline").ok());
}

TEST(BirdReplyParser, BoundsLineAndReplyLength) {
  BirdReplyParser p;
  EXPECT_FALSE(p.Feed(std::string(kMaxBirdLine + 1, 'x')).ok());
  BirdReplyParser q;
  const std::string row = "1002-" + std::string(1000, 'x') + "\n";
  absl::Status s;
  for (size_t n = 0; n <= kMaxBirdReply / row.size() && s.ok(); ++n) s = q.Feed(row);
  EXPECT_FALSE(s.ok());
}

TEST(BirdReplyStatus, MapsErrorCodesAndKeepsBirdText) {
  absl::Status s = BirdReplyStatus(*ParseBirdReply(
      "0002-Reading configuration from /nonexist\n8002 /nonexist: No such file or directory\n"));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("8002: /nonexist: No such file or directory"));
  s = BirdReplyStatus(*ParseBirdReply("9001 syntax error, unexpected CF_SYM_UNDEFINED\n"));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  s = BirdReplyStatus(*ParseBirdReply("8003 No protocols match\n"));
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  s = BirdReplyStatus(*ParseBirdReply("8007 Access denied\n"));
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  s = BirdReplyStatus(*ParseBirdReply("8005 Protocol is down\n"));
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_TRUE(BirdReplyStatus(*ParseBirdReply("0003 Reconfigured\n")).ok());
}

TEST(ParseShowProtocols, Rows) {
  absl::StatusOr<std::vector<BirdProtocol>> p = ParseShowProtocols(*ParseBirdReply(kShowProtocols));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 5u);
  EXPECT_EQ((*p)[0].name, "device1");
  EXPECT_EQ((*p)[0].info, "");
  EXPECT_EQ((*p)[2].name, "o4");
  EXPECT_EQ((*p)[2].proto, "OSPF");
  EXPECT_EQ((*p)[2].table, "master4");
  EXPECT_EQ((*p)[2].state, "up");
  EXPECT_EQ((*p)[2].since, "17:50:49.252");
  EXPECT_EQ((*p)[2].info, "Running");
  EXPECT_EQ((*p)[3].state, "start");
  EXPECT_EQ((*p)[3].since, "2024-01-02 17:50:49");  // iso long: two words
  EXPECT_EQ((*p)[3].info, "Alone");
  EXPECT_EQ((*p)[4].info, "Error: Kernel table conflict");
  EXPECT_FALSE(ParseShowProtocols(*ParseBirdReply("1002-o4 OSPF\n0000 \n")).ok());
}

TEST(ParseOspfNeighbors, Rows) {
  absl::StatusOr<std::vector<OspfNeighbor>> n = ParseOspfNeighbors(*ParseBirdReply(kNeighbors));
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(n->size(), 3u);
  EXPECT_EQ((*n)[0].protocol, "o4");
  EXPECT_EQ((*n)[0].router_id, "10.201.0.1");
  EXPECT_EQ((*n)[0].priority, 255);
  EXPECT_EQ((*n)[0].state, "Full");
  EXPECT_EQ((*n)[0].role, "DR");
  EXPECT_TRUE((*n)[0].full());
  EXPECT_EQ((*n)[0].interface, "n0");
  EXPECT_EQ((*n)[0].address, "10.201.0.1");
  EXPECT_EQ((*n)[1].state, "2-Way");
  EXPECT_EQ((*n)[1].role, "DROther");
  EXPECT_FALSE((*n)[1].full());
  EXPECT_EQ((*n)[2].protocol, "o6");
  EXPECT_EQ((*n)[2].state, "ExStart");
  EXPECT_EQ((*n)[2].address, "fe80::5cb2:a1ff:fe15:66d5");
}

TEST(ParseOspfNeighbors, ProtocolDownAndMalformed) {
  absl::StatusOr<std::vector<OspfNeighbor>> n =
      ParseOspfNeighbors(*ParseBirdReply("1013-o4: is not up\n0000 \n"));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(n->empty());
  EXPECT_FALSE(ParseOspfNeighbors(*ParseBirdReply("1013-o4:\n 10.0.0.1 255 Full\n0000 \n")).ok());
  EXPECT_FALSE(
      ParseOspfNeighbors(*ParseBirdReply("1013-o4:\n x 255 Full/DR 3.0 n0 10.0.0.1\n0000 \n"))
          .ok());
  EXPECT_FALSE(
      ParseOspfNeighbors(*ParseBirdReply("1013-o4:\n 10.0.0.1 hi Full/DR 3.0 n0 10.0.0.1\n0000 \n"))
          .ok());
}

TEST(ParseOspfState, RoutersAndTheirStubnets) {
  absl::StatusOr<std::vector<OspfStateRouter>> s = ParseOspfState(*ParseBirdReply(kOspfStateV2));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 2u);  // the "router" lines inside the network block are not routers
  EXPECT_EQ((*s)[0].router_id, "10.201.0.1");
  EXPECT_TRUE((*s)[0].stubnets.empty());
  EXPECT_EQ((*s)[1].area, "0.0.0.0");
  EXPECT_EQ((*s)[1].router_id, "10.201.0.11");
  EXPECT_THAT((*s)[1].stubnets, ElementsAre("10.201.100.1/32", "10.201.100.2/32"));

  s = ParseOspfState(*ParseBirdReply(kOspfStateV3));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 2u);
  EXPECT_FALSE((*s)[0].reachable);
  EXPECT_THAT((*s)[1].stubnets, ElementsAre("fd20:100::1/128"));

  s = ParseOspfState(*ParseBirdReply("1016-lb_ospf4: is not up\n0000 \n"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->empty());
  EXPECT_FALSE(ParseOspfState(*ParseBirdReply("1016-\n area 0\n \trouter x\n0000 \n")).ok());
}

TEST(IsBirdSymbol, Names) {
  EXPECT_TRUE(IsBirdSymbol("lb_ospf4"));
  EXPECT_FALSE(IsBirdSymbol(""));
  EXPECT_FALSE(IsBirdSymbol("4o"));
  EXPECT_FALSE(IsBirdSymbol("o4; configure"));
}

// A unix socket in a fresh temporary directory, served by `serve(fd)` on a thread for each
// accepted connection (or never accepted, with serve empty).
class FakePeer {
 public:
  explicit FakePeer(std::function<void(int)> serve) {
    char tmpl[] = "/tmp/bird_client_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/ctl";
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
    if (serve) {
      thread_ = std::thread([this, serve] {
        const int c = accept(listen_fd_, nullptr, nullptr);
        if (c < 0) return;
        serve(c);
        close(c);
      });
    }
  }
  ~FakePeer() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    if (thread_.joinable()) thread_.join();
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  int listen_fd_ = -1;
  std::thread thread_;
};

void Send(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), (ssize_t)s.size());
}

// Reads one command line.
std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

TEST(BirdClient, NobodyListeningIsUnavailable) {
  absl::StatusOr<std::unique_ptr<BirdClient>> c =
      BirdClient::Connect("/tmp/bird_client_test.nonexistent/ctl", absl::Seconds(1));
  EXPECT_TRUE(absl::IsUnavailable(c.status())) << c.status();
}

TEST(BirdClient, SilentListenerIsUnavailableWithinTheTimeout) {
  FakePeer peer(nullptr);  // listens, never accepts, never greets
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<BirdClient>> c =
      BirdClient::Connect(peer.path(), absl::Milliseconds(300));
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsUnavailable(c.status())) << c.status();
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Milliseconds(1500));
}

TEST(BirdClient, GarbageGreetingIsUnavailable) {
  FakePeer peer([](int fd) { Send(fd, "SSH-2.0-OpenSSH\n"); });
  absl::StatusOr<std::unique_ptr<BirdClient>> c =
      BirdClient::Connect(peer.path(), absl::Seconds(2));
  EXPECT_TRUE(absl::IsUnavailable(c.status())) << c.status();
}

TEST(BirdClient, CommandReplyErrorAndHangUp) {
  std::atomic<bool> got_show{false};
  FakePeer peer([&](int fd) {
    Send(fd, "0001 BIRD 2.0.12 ready.\n");
    if (ReadLine(fd) == "show protocols") {
      got_show = true;
      // Split across writes, as a busy BIRD may.
      std::string r = kShowProtocols;
      Send(fd, r.substr(0, 30));
      usleep(20000);
      Send(fd, r.substr(30));
    }
    if (ReadLine(fd) == "configure check \"/x.conf\"") {
      Send(fd, "0002-Reading configuration from /x.conf\n8002 /x.conf:3:1 syntax error\n");
    }
    ReadLine(fd);
    Send(fd, "1013-o4:\n");  // then hangs up mid-reply
  });
  absl::StatusOr<std::unique_ptr<BirdClient>> c =
      BirdClient::Connect(peer.path(), absl::Seconds(2));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->greeting(), "BIRD 2.0.12 ready.");
  absl::StatusOr<std::vector<BirdProtocol>> p = (*c)->ShowProtocols();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(got_show);
  EXPECT_EQ(p->size(), 5u);
  absl::Status s = (*c)->CheckConfig("/x.conf");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("/x.conf:3:1 syntax error"));
  EXPECT_TRUE(absl::IsUnavailable((*c)->OspfNeighbors("o4").status()));
  // The connection is gone; later commands say so instead of hanging.
  EXPECT_TRUE(absl::IsUnavailable((*c)->Command("show status").status()));
}

TEST(BirdClient, StalledReplyTimesOut) {
  FakePeer peer([](int fd) {
    Send(fd, "0001 BIRD 2.0.12 ready.\n");
    ReadLine(fd);
    Send(fd, "1002-half a reply");  // and nothing more
    usleep(1500000);
  });
  absl::StatusOr<std::unique_ptr<BirdClient>> c =
      BirdClient::Connect(peer.path(), absl::Milliseconds(300));
  ASSERT_TRUE(c.ok()) << c.status();
  const absl::Time start = absl::Now();
  EXPECT_TRUE(absl::IsUnavailable((*c)->Command("show protocols").status()));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1200));
}

TEST(BirdClient, RefusesInjection) {
  FakePeer peer([](int fd) {
    Send(fd, "0001 BIRD 2.0.12 ready.\n");
    ReadLine(fd);
  });
  absl::StatusOr<std::unique_ptr<BirdClient>> c =
      BirdClient::Connect(peer.path(), absl::Seconds(2));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(absl::IsInvalidArgument((*c)->Command("show status\ndown").status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*c)->Configure("/a\"; down")));
  EXPECT_TRUE(absl::IsInvalidArgument((*c)->OspfNeighbors("o4 all").status()));
}

}  // namespace
}  // namespace lb
