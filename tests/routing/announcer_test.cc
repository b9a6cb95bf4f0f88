// Announcer without a real BIRD: option checks, what lands on disk when BIRD is down, and the
// order of commands and files against a scripted control-socket peer (accepting or rejecting
// the config). The real daemons are in announcer_netns_test.
#include "routing/announcer.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace lb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') out.push_back(e->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

class AnnouncerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/announcer_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    mkdir((dir_ + "/etc").c_str(), 0755);
    options_.bird.router_id = "10.0.0.11";
    options_.config_path = dir_ + "/etc/bird.conf";
    options_.socket_path = dir_ + "/ctl";
    options_.timeout = absl::Seconds(2);
  }
  void TearDown() override {
    if (listen_fd_ >= 0) {
      shutdown(listen_fd_, SHUT_RDWR);
      close(listen_fd_);
    }
    if (peer_.joinable()) peer_.join();
    std::system(("rm -rf " + dir_).c_str());
  }

  // A control-socket peer for one connection: greets, records each command, and answers it
  // with the next of `replies`.
  void ServeBird(std::vector<std::string> replies) {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, options_.socket_path.c_str(), sizeof(a.sun_path) - 1);
    ASSERT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(listen_fd_, 4), 0);
    peer_ = std::thread([this, replies] {
      const int c = accept(listen_fd_, nullptr, nullptr);
      if (c < 0) return;
      const std::string hello = "0001 BIRD 2.0.12 ready.\n";
      (void)!write(c, hello.data(), hello.size());
      for (const std::string& r : replies) {
        std::string line;
        char ch;
        while (read(c, &ch, 1) == 1 && ch != '\n') line += ch;
        commands_.push_back(line);
        // What BIRD would find in the file when it reads it.
        if (line.rfind("configure", 0) == 0) seen_config_ = ReadFile(options_.config_path);
        (void)!write(c, r.data(), r.size());
      }
      close(c);
    });
  }

  std::string dir_;
  AnnouncerOptions options_;
  int listen_fd_ = -1;
  std::thread peer_;
  std::vector<std::string> commands_;
  std::string seen_config_;
};

TEST_F(AnnouncerTest, CreateChecksOptions) {
  EXPECT_TRUE(Announcer::Create(options_).ok());
  AnnouncerOptions o = options_;
  o.bird.router_id = "x";
  absl::Status s = Announcer::Create(o).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("router_id"));
  o = options_;
  o.config_path = "";
  EXPECT_TRUE(absl::IsInvalidArgument(Announcer::Create(o).status()));
  o = options_;
  o.socket_path = "";
  EXPECT_TRUE(absl::IsInvalidArgument(Announcer::Create(o).status()));
  o = options_;
  o.timeout = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(Announcer::Create(o).status()));
  o = options_;
  o.config_group = "no-such-group-here";
  s = Announcer::Create(o).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("config_group"));
  o = options_;
  o.bird.vips = {"not checked: Apply supplies the VIPs"};
  EXPECT_TRUE(Announcer::Create(o).ok());
}

TEST_F(AnnouncerTest, BadVipWritesNothing) {
  std::unique_ptr<Announcer> a = *Announcer::Create(options_);
  const absl::Status s = a->Apply({"10.0.100.1", "10.0.100"});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("vips[1]"));
  EXPECT_TRUE(ListDir(dir_ + "/etc").empty());
}

TEST_F(AnnouncerTest, BirdDownInstallsTheConfigAndSaysUnavailable) {
  std::unique_ptr<Announcer> a = *Announcer::Create(options_);
  const absl::Status s = a->Apply({"10.0.100.1"});
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("retry"));
  EXPECT_THAT(ListDir(dir_ + "/etc"), ElementsAre("bird.conf"));
  EXPECT_THAT(ReadFile(options_.config_path), HasSubstr("stubnet 10.0.100.1/32"));
  struct stat st;
  ASSERT_EQ(stat(options_.config_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // may hold OSPF secrets
  EXPECT_TRUE(a->applied_vips().empty());
  EXPECT_TRUE(absl::IsUnavailable(a->AnnouncedPrefixes().status()));
  const RoutingStatus status = a->Status();
  EXPECT_FALSE(status.bird_reachable);
  EXPECT_THAT(status.error, HasSubstr(options_.socket_path));
}

TEST_F(AnnouncerTest, ChecksTheCandidateThenLoadsTheInstalledFile) {
  std::unique_ptr<Announcer> a = *Announcer::Create(options_);
  ServeBird({"0002-Reading configuration from x\n0020 Configuration OK\n",
             "0002-Reading configuration from x\n0003 Reconfigured\n"});
  ASSERT_TRUE(a->Apply({"10.0.100.1", "2001:db8::1"}).ok());
  peer_.join();
  EXPECT_THAT(commands_, ElementsAre("configure check \"" + options_.config_path + ".new\"",
                                     "configure \"" + options_.config_path + "\""));
  EXPECT_THAT(seen_config_, HasSubstr("stubnet 2001:db8::1/128"));
  EXPECT_THAT(ListDir(dir_ + "/etc"), ElementsAre("bird.conf"));
  EXPECT_THAT(a->applied_vips(), ElementsAre("10.0.100.1", "2001:db8::1"));
}

TEST_F(AnnouncerTest, RejectedConfigLeavesTheInstalledFileAlone) {
  ASSERT_TRUE(WriteFileAtomically(options_.config_path, "# the config BIRD runs\n").ok());
  std::unique_ptr<Announcer> a = *Announcer::Create(options_);
  ServeBird({"0002-Reading configuration from x\n8002 x:7:3 syntax error, unexpected '{'\n"});
  const absl::Status s = a->Apply({"10.0.100.1"});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("x:7:3 syntax error, unexpected '{'"));
  EXPECT_EQ(ReadFile(options_.config_path), "# the config BIRD runs\n");
  EXPECT_THAT(ListDir(dir_ + "/etc"), ElementsAre("bird.conf"));  // no .new left behind
}

TEST_F(AnnouncerTest, ReadsBackOwnStubnetsOnly) {
  options_.bird.ipv6 = false;
  std::unique_ptr<Announcer> a = *Announcer::Create(options_);
  ServeBird(
      {"1016-\n area 0.0.0.0\n \n \trouter 10.0.0.1\n \t\tstubnet 10.0.100.9/32 metric 10\n"
       " \n \trouter 10.0.0.11\n \t\tdistance 0\n \t\tstubnet 10.0.0.0/24 metric 10\n"
       " \t\tstubnet 10.0.100.1/32 metric 10\n0000 \n"});
  absl::StatusOr<std::vector<std::string>> p = a->AnnouncedPrefixes();
  ASSERT_TRUE(p.ok()) << p.status();
  // Not the other router's, not the interface subnet.
  EXPECT_THAT(*p, ElementsAre("10.0.100.1/32"));
  peer_.join();
  EXPECT_THAT(commands_, ElementsAre("show ospf state all lb_ospf4"));
}

TEST_F(AnnouncerTest, ConfigGroupMakesTheFileGroupReadable) {
  options_.config_group = "daemon";  // exists on Debian; any group will do
  std::unique_ptr<Announcer> a = *Announcer::Create(options_);
  EXPECT_TRUE(absl::IsUnavailable(a->Apply({"10.0.100.1"})));
  struct stat st;
  ASSERT_EQ(stat(options_.config_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(st.st_gid, 1u);  // daemon
}

TEST(WriteFileAtomically, ReplacesAndLeavesNoTemporary) {
  char tmpl[] = "/tmp/announcer_test.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/f";
  ASSERT_TRUE(WriteFileAtomically(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "two").ok());
  EXPECT_EQ(ReadFile(path), "two");
  EXPECT_THAT(ListDir(dir), ElementsAre("f"));
  EXPECT_FALSE(WriteFileAtomically(dir + "/missing/f", "x").ok());
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace lb
