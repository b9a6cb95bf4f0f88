// HealthChecker against real sockets on 127.0.0.1 and ::1: servers that accept and close, answer
// HTTP with a chosen status, or accept and never answer; validation; state kept across
// SetTargets; no file descriptor left behind by thousands of failing probes.
#include "control/health_checker.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lb {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Event = HealthChecker::Event;
using Target = HealthChecker::Target;

bool WaitFor(const std::function<bool()>& pred, milliseconds timeout = milliseconds(3000)) {
  const auto deadline = steady_clock::now() + timeout;
  while (!pred()) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

int CountEntries(const char* dir) {
  DIR* d = opendir(dir);
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}
int OpenFds() { return CountEntries("/proc/self/fd"); }
int Threads() { return CountEntries("/proc/self/task"); }

double SecondsSince(steady_clock::time_point t) {
  return std::chrono::duration<double>(steady_clock::now() - t).count();
}

// A server on the loopback address of `family`, run by one thread.
class TestServer {
 public:
  enum class Mode {
    kAcceptClose,  // accepts and closes at once
    kHttp,         // reads the request, answers `status` with an empty body, closes
    kSilent,       // accepts, reads and never answers
  };

  // port 0: an ephemeral one. Returns nullptr if the address family is unavailable.
  static std::unique_ptr<TestServer> Start(int family, Mode mode, uint16_t port = 0) {
    auto s = std::unique_ptr<TestServer>(new TestServer(mode));
    s->listen_fd_ = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd_ < 0) return nullptr;
    const int one = 1;
    setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    }
    if (bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        listen(s->listen_fd_, 1024) != 0 ||
        getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return nullptr;
    }
    s->port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    s->thread_ = std::thread([p = s.get()] { p->Run(); });
    return s;
  }

  ~TestServer() { Close(); }

  // Stops listening (new connections are refused) and closes every connection.
  void Close() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
    for (int fd : held_) close(fd);
    held_.clear();
  }

  uint16_t port() const { return port_; }
  void set_status(int status) { status_ = status; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::vector<steady_clock::time_point> accept_times() {
    std::lock_guard<std::mutex> lock(mu_);
    return accept_times_;
  }

 private:
  explicit TestServer(Mode mode) : mode_(mode) {}

  void Run() {
    while (!stop_) {
      std::vector<pollfd> pfds{{listen_fd_, POLLIN, 0}};
      for (int fd : held_) pfds.push_back({fd, POLLIN, 0});
      if (poll(pfds.data(), pfds.size(), 10) <= 0) continue;
      // Silent connections: drain whatever arrives, close on EOF or reset, never answer.
      std::vector<int> keep;
      for (size_t i = 1; i < pfds.size(); ++i) {
        char buf[512];
        if (pfds[i].revents != 0 && recv(pfds[i].fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0) {
          close(pfds[i].fd);
        } else {
          keep.push_back(pfds[i].fd);
        }
      }
      held_ = std::move(keep);
      if (!(pfds[0].revents & POLLIN)) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        accept_times_.push_back(steady_clock::now());
      }
      if (mode_ == Mode::kSilent) {
        held_.push_back(fd);
      } else if (mode_ == Mode::kHttp) {
        Serve(fd);
      } else {
        close(fd);
      }
    }
  }

  void Serve(int fd) {
    std::string request;
    char buf[1024];
    while (request.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) break;
      const ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r <= 0) break;
      request.append(buf, static_cast<size_t>(r));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
    }
    const std::string reply =
        "HTTP/1.1 " + std::to_string(status_.load()) + " Test\r\nContent-Length: 0\r\n\r\n";
    (void)!send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    close(fd);
  }

  const Mode mode_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> status_{200};
  std::vector<int> held_;  // server thread, then Close()
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::vector<steady_clock::time_point> accept_times_;
};

// A port nothing listens on: bound once, then released.
uint16_t ClosedPort() {
  auto s = TestServer::Start(AF_INET, TestServer::Mode::kAcceptClose);
  const uint16_t port = s->port();
  s->Close();
  return port;
}

// Collects the checker's events.
class Recorder {
 public:
  std::function<void(const Event&)> Callback() {
    return [this](const Event& e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
    };
  }
  std::vector<Event> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  // Events are delivered after the state they report is visible: wait for them.
  bool WaitForEvents(const std::string& key, size_t n) {
    return WaitFor([&] { return events_for(key).size() >= n; });
  }
  std::vector<Event> events_for(const std::string& key) {
    std::vector<Event> out;
    for (const Event& e : events()) {
      if (e.key == key) out.push_back(e);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<Event> events_;
};

HealthCheckSpec Fast(HealthCheckType type) {
  HealthCheckSpec s;
  s.type = type;
  s.interval_ms = 50;
  s.timeout_ms = 40;
  s.rise = 2;
  s.fall = 3;
  return s;
}

std::optional<HealthChecker::TargetStatus> StatusOf(const HealthChecker& c,
                                                    const std::string& key) {
  for (auto& s : c.Snapshot()) {
    if (s.key == key) return s;
  }
  return std::nullopt;
}

auto StateIs(const HealthChecker& c, const std::string& key, HealthState state) {
  return [&c, key, state] { return c.State(key) == state; };
}

TEST(HealthCheckerTest, TcpGoesDownAfterFallAndComesBackAfterRise) {
  auto server = TestServer::Start(AF_INET, TestServer::Mode::kAcceptClose);
  ASSERT_NE(server, nullptr);
  const uint16_t port = server->port();
  Recorder rec;
  HealthChecker checker(rec.Callback());
  ASSERT_TRUE(
      checker.SetTargets({{"vip|tcp", "127.0.0.1", port, Fast(HealthCheckType::kTcp)}}).ok());
  ASSERT_TRUE(WaitFor(StateIs(checker, "vip|tcp", HealthState::kHealthy)));

  server->Close();
  const auto closed_at = steady_clock::now();
  ASSERT_TRUE(WaitFor(StateIs(checker, "vip|tcp", HealthState::kUnhealthy)));
  std::printf("down detected after %.3f s (interval 50 ms, fall 3)\n", SecondsSince(closed_at));
  const auto down = StatusOf(checker, "vip|tcp");
  EXPECT_EQ(down->last_error, "connect: Connection refused");
  EXPECT_FALSE(down->healthy);

  server = TestServer::Start(AF_INET, TestServer::Mode::kAcceptClose, port);
  ASSERT_NE(server, nullptr);
  const auto reopened_at = steady_clock::now();
  ASSERT_TRUE(WaitFor(StateIs(checker, "vip|tcp", HealthState::kHealthy)));
  std::printf("up detected after %.3f s (interval 50 ms, rise 2)\n", SecondsSince(reopened_at));

  ASSERT_TRUE(rec.WaitForEvents("vip|tcp", 3));
  const std::vector<Event> events = rec.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].old_state, HealthState::kUnknown);
  EXPECT_EQ(events[0].new_state, HealthState::kHealthy);
  EXPECT_EQ(events[0].reason, "connected (first success)");
  EXPECT_TRUE(events[1].old_healthy());
  EXPECT_FALSE(events[1].new_healthy());
  EXPECT_EQ(events[1].reason, "connect: Connection refused (3 consecutive failures)");
  EXPECT_EQ(events[2].new_state, HealthState::kHealthy);
  EXPECT_EQ(events[2].reason, "connected (2 consecutive successes)");
  const auto up = StatusOf(checker, "vip|tcp");
  EXPECT_TRUE(up->healthy);
  EXPECT_EQ(up->last_result, "connected");
  EXPECT_EQ(up->last_error, "connect: Connection refused");  // kept after recovery
  EXPECT_GE(up->total_failures, 3u);
  EXPECT_GE(up->total_probes, up->total_failures + 3);
}

TEST(HealthCheckerTest, HttpFollowsStatusCodeOverIpv6) {
  auto server = TestServer::Start(AF_INET6, TestServer::Mode::kHttp);
  if (server == nullptr) GTEST_SKIP() << "no IPv6 loopback";
  Recorder rec;
  HealthChecker checker(rec.Callback());
  HealthCheckSpec spec = Fast(HealthCheckType::kHttp);
  spec.http_path = "/healthz?full=1";
  spec.http_host = "backend.example";
  spec.fall = 2;
  ASSERT_TRUE(checker.SetTargets({{"web", "::1", server->port(), spec}}).ok());
  ASSERT_TRUE(WaitFor(StateIs(checker, "web", HealthState::kHealthy)));
  const std::vector<std::string> requests = server->requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_THAT(requests[0], StartsWith("GET /healthz?full=1 HTTP/1.1\r\n"));
  EXPECT_THAT(requests[0], HasSubstr("\r\nHost: backend.example\r\n"));

  server->set_status(503);
  ASSERT_TRUE(WaitFor(StateIs(checker, "web", HealthState::kUnhealthy)));
  EXPECT_EQ(StatusOf(checker, "web")->last_error, "HTTP 503");
  server->set_status(302);  // redirects count as healthy when no status is configured
  ASSERT_TRUE(WaitFor(StateIs(checker, "web", HealthState::kHealthy)));

  ASSERT_TRUE(rec.WaitForEvents("web", 3));
  const std::vector<Event> events = rec.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].reason, "HTTP 200 (first success)");
  EXPECT_EQ(events[1].reason, "HTTP 503 (2 consecutive failures)");
  EXPECT_EQ(events[2].reason, "HTTP 302 (2 consecutive successes)");
}

TEST(HealthCheckerTest, HttpExpectedStatusAndDefaultHostHeader) {
  auto server = TestServer::Start(AF_INET, TestServer::Mode::kHttp);
  ASSERT_NE(server, nullptr);
  Recorder rec;
  HealthChecker checker(rec.Callback());
  HealthCheckSpec spec = Fast(HealthCheckType::kHttp);
  spec.http_status = 204;
  ASSERT_TRUE(checker.SetTargets({{"k", "127.0.0.1", server->port(), spec}}).ok());
  ASSERT_TRUE(WaitFor(StateIs(checker, "k", HealthState::kUnhealthy)));
  ASSERT_TRUE(rec.WaitForEvents("k", 1));
  EXPECT_EQ(rec.events().at(0).reason, "HTTP 200 (3 consecutive failures)");
  EXPECT_THAT(server->requests().at(0),
              HasSubstr("\r\nHost: 127.0.0.1:" + std::to_string(server->port()) + "\r\n"));
  server->set_status(204);
  ASSERT_TRUE(WaitFor(StateIs(checker, "k", HealthState::kHealthy)));
}

TEST(HealthCheckerTest, ServerThatNeverAnswersTimesOut) {
  auto server = TestServer::Start(AF_INET, TestServer::Mode::kSilent);
  ASSERT_NE(server, nullptr);
  Recorder rec;
  HealthChecker checker(rec.Callback());
  // The TCP check passes: the connection is accepted. Only HTTP sees the silence.
  ASSERT_TRUE(checker
                  .SetTargets({{"http", "127.0.0.1", server->port(), Fast(HealthCheckType::kHttp)},
                               {"tcp", "127.0.0.1", server->port(), Fast(HealthCheckType::kTcp)}})
                  .ok());
  ASSERT_TRUE(checker.WaitAllCheckedOnce(absl::Seconds(3)));
  ASSERT_TRUE(rec.WaitForEvents("http", 1));
  EXPECT_EQ(checker.State("http"), HealthState::kUnhealthy);
  EXPECT_EQ(checker.State("tcp"), HealthState::kHealthy);
  EXPECT_EQ(rec.events_for("http").at(0).reason,
            "timeout after 40 ms awaiting the HTTP status (3 consecutive failures)");
}

TEST(HealthCheckerTest, NewTargetsUpOnFirstSuccessDownAfterFall) {
  Recorder rec;
  HealthChecker checker(rec.Callback());
  EXPECT_TRUE(checker.AllCheckedOnce());  // nothing to check
  HealthCheckSpec spec = Fast(HealthCheckType::kTcp);
  spec.interval_ms = 200;
  spec.timeout_ms = 50;
  spec.fall = 3;
  HealthCheckSpec none;
  none.type = HealthCheckType::kNone;
  const uint16_t late_port = ClosedPort();  // its server starts after the first probe
  const auto set_at = steady_clock::now();
  ASSERT_TRUE(checker
                  .SetTargets({{"refused", "127.0.0.1", ClosedPort(), spec},
                               {"late", "127.0.0.1", late_port, spec},
                               {"none", "192.0.2.1", 0, none}})
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return StatusOf(checker, "late")->total_probes >= 1; }));
  // One failure is no verdict: the backend may just not be reachable yet.
  EXPECT_EQ(checker.State("late"), HealthState::kUnknown);
  EXPECT_FALSE(StatusOf(checker, "late")->checked_at_least_once);
  EXPECT_FALSE(checker.AllCheckedOnce());
  auto server = TestServer::Start(AF_INET, TestServer::Mode::kAcceptClose, late_port);
  ASSERT_NE(server, nullptr);

  ASSERT_TRUE(checker.WaitAllCheckedOnce(absl::Seconds(3)));
  const double took = SecondsSince(set_at);
  std::printf("verdicts for new targets after %.3f s (interval 200 ms, timeout 50 ms, fall 3)\n",
              took);
  EXPECT_LT(took, 3 * 0.2 + 0.05 + 0.2);  // fall * interval + timeout, plus slack
  ASSERT_TRUE(rec.WaitForEvents("refused", 1));
  ASSERT_TRUE(rec.WaitForEvents("late", 1));
  ASSERT_TRUE(rec.WaitForEvents("none", 1));
  EXPECT_EQ(checker.State("refused"), HealthState::kUnhealthy);
  EXPECT_EQ(rec.events_for("refused")[0].old_state, HealthState::kUnknown);
  EXPECT_EQ(rec.events_for("refused")[0].reason,
            "connect: Connection refused (3 consecutive failures)");
  EXPECT_EQ(checker.State("late"), HealthState::kHealthy);
  EXPECT_EQ(rec.events_for("late")[0].reason, "connected (first success)");
  EXPECT_GE(StatusOf(checker, "late")->total_failures, 1u);
  EXPECT_EQ(checker.State("none"), HealthState::kHealthy);
  EXPECT_EQ(rec.events_for("none")[0].reason, "no health check");
  EXPECT_TRUE(StatusOf(checker, "none")->checked_at_least_once);
  EXPECT_EQ(checker.State("absent"), std::nullopt);
}

TEST(HealthCheckerTest, ValidationNamesTheFieldAndChangesNothing) {
  Recorder rec;
  HealthChecker checker(rec.Callback());
  const Target good{"good", "127.0.0.1", ClosedPort(), Fast(HealthCheckType::kTcp)};
  ASSERT_TRUE(checker.SetTargets({good}).ok());

  struct Case {
    std::function<void(Target&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](Target& t) { t.address = "10.0.0"; },
       "targets[1].address: not an IP address: \"10.0.0\""},
      {[](Target& t) { t.address = "backend.example"; }, "targets[1].address: not an IP address"},
      {[](Target& t) { t.address = "fe80::1%nosuch0"; }, "targets[1].address: unknown interface"},
      {[](Target& t) { t.key = ""; }, "targets[1].key: empty"},
      {[](Target& t) { t.key = "good"; }, "targets[1].key: duplicate \"good\""},
      {[](Target& t) { t.port = 0; }, "targets[1].port: 0 and spec.port is 0"},
      {[](Target& t) { t.spec.type = static_cast<HealthCheckType>(9); }, "targets[1].spec.type"},
      {[](Target& t) { t.spec.interval_ms = 5; }, "targets[1].spec.interval_ms: 5 is outside"},
      {[](Target& t) { t.spec.timeout_ms = 0; }, "targets[1].spec.timeout_ms: 0"},
      {[](Target& t) { t.spec.timeout_ms = t.spec.interval_ms = 500; },
       "targets[1].spec.timeout_ms: 500 must be less than interval_ms (500)"},
      {[](Target& t) { t.spec.rise = 0; }, "targets[1].spec.rise: 0 is outside 1..1000"},
      {[](Target& t) { t.spec.fall = 0; }, "targets[1].spec.fall: 0 is outside 1..1000"},
      {[](Target& t) { t.spec.bind_interface = "an-interface-name"; },
       "targets[1].spec.bind_interface: not an interface name"},
      {[](Target& t) {
         t.spec.type = HealthCheckType::kHttp;
         t.spec.http_path = "healthz";
       },
       "targets[1].spec.http_path: must start with '/'"},
      {[](Target& t) {
         t.spec.type = HealthCheckType::kHttp;
         t.spec.http_path = "/a b";
       },
       "targets[1].spec.http_path"},
      {[](Target& t) {
         t.spec.type = HealthCheckType::kHttp;
         t.spec.http_host = "a\r\nX-Evil: 1";
       },
       "targets[1].spec.http_host"},
      {[](Target& t) {
         t.spec.type = HealthCheckType::kHttp;
         t.spec.http_status = 42;
       },
       "targets[1].spec.http_status: 42 is outside 100..599"},
  };
  for (const Case& c : cases) {
    Target bad{"other", "::1", 80, Fast(HealthCheckType::kTcp)};
    c.change(bad);
    const absl::Status st = checker.SetTargets({good, bad});
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.message));
  }
  const auto snapshot = checker.Snapshot();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].key, "good");

  // Fields a check type does not use are not checked: spec.port supplies a missing target port.
  Target spec_port{"spec-port", "::1", 0, Fast(HealthCheckType::kTcp)};
  spec_port.spec.port = 8080;
  HealthCheckSpec none;
  none.type = HealthCheckType::kNone;
  none.timeout_ms = 10000;
  EXPECT_TRUE(checker.SetTargets({good, spec_port, {"none", "::1", 0, none}}).ok());
}

TEST(HealthCheckerTest, SetTargetsKeepsUnchangedTargets) {
  auto server = TestServer::Start(AF_INET, TestServer::Mode::kAcceptClose);
  ASSERT_NE(server, nullptr);
  Recorder rec;
  HealthChecker checker(rec.Callback());
  const Target a{"a", "127.0.0.1", server->port(), Fast(HealthCheckType::kTcp)};
  Target b{"b", "127.0.0.1", server->port(), Fast(HealthCheckType::kTcp)};
  ASSERT_TRUE(checker.SetTargets({a, b}).ok());
  ASSERT_TRUE(checker.WaitAllCheckedOnce(absl::Seconds(3)));
  ASSERT_TRUE(WaitFor([&] { return StatusOf(checker, "a")->total_probes >= 3; }));
  const auto a_before = *StatusOf(checker, "a");

  b.spec.interval_ms = 60;  // a changed spec: b starts over
  const Target c{"c", "127.0.0.1", server->port(), Fast(HealthCheckType::kTcp)};
  ASSERT_TRUE(checker.SetTargets({c, b, a}).ok());
  EXPECT_EQ(checker.State("a"), HealthState::kHealthy);
  const auto a_after = *StatusOf(checker, "a");
  EXPECT_GE(a_after.total_probes, a_before.total_probes);
  EXPECT_EQ(a_after.last_change, a_before.last_change);
  ASSERT_TRUE(checker.WaitAllCheckedOnce(absl::Seconds(3)));
  ASSERT_TRUE(rec.WaitForEvents("b", 2));
  ASSERT_TRUE(rec.WaitForEvents("c", 1));
  EXPECT_EQ(rec.events_for("a").size(), 1u);  // only its first verdict
  ASSERT_EQ(rec.events_for("b").size(), 2u);
  EXPECT_EQ(rec.events_for("b")[1].old_state, HealthState::kUnknown);
  EXPECT_EQ(rec.events_for("c").size(), 1u);

  ASSERT_TRUE(checker.SetTargets({a}).ok());
  EXPECT_EQ(checker.State("b"), std::nullopt);
  EXPECT_EQ(checker.Snapshot().size(), 1u);
}

TEST(HealthCheckerTest, BindInterface) {
  auto server = TestServer::Start(AF_INET, TestServer::Mode::kAcceptClose);
  ASSERT_NE(server, nullptr);
  Recorder rec;
  HealthChecker checker(rec.Callback());
  HealthCheckSpec lo = Fast(HealthCheckType::kTcp);
  lo.bind_interface = "lo";
  HealthCheckSpec missing = Fast(HealthCheckType::kTcp);
  missing.bind_interface = "nosuch0";
  ASSERT_TRUE(checker
                  .SetTargets({{"lo", "127.0.0.1", server->port(), lo},
                               {"missing", "127.0.0.1", server->port(), missing}})
                  .ok());
  ASSERT_TRUE(checker.WaitAllCheckedOnce(absl::Seconds(3)));
  EXPECT_EQ(checker.State("lo"), HealthState::kHealthy) << StatusOf(checker, "lo")->last_error;
  EXPECT_EQ(checker.State("missing"), HealthState::kUnhealthy);
  EXPECT_EQ(StatusOf(checker, "missing")->last_error, "bind to device nosuch0: No such device");
}

TEST(HealthCheckerTest, CallbackRunsOnCheckerThreadAndMayCallIn) {
  auto server = TestServer::Start(AF_INET, TestServer::Mode::kAcceptClose);
  ASSERT_NE(server, nullptr);
  std::atomic<bool> called{false};
  std::atomic<bool> other_thread{false};
  std::atomic<size_t> seen{0};
  HealthChecker* self = nullptr;
  const auto test_thread = std::this_thread::get_id();
  HealthChecker checker([&](const Event&) {
    other_thread = std::this_thread::get_id() != test_thread;
    seen = self->Snapshot().size();  // no deadlock: called outside the checker's lock
    called = true;
  });
  self = &checker;
  ASSERT_TRUE(
      checker.SetTargets({{"k", "127.0.0.1", server->port(), Fast(HealthCheckType::kTcp)}}).ok());
  ASSERT_TRUE(WaitFor([&] { return called.load(); }));
  EXPECT_TRUE(other_thread);
  EXPECT_EQ(seen, 1u);
}

TEST(HealthCheckerTest, HundredsOfTargetsOneThreadProbesSpreadOverTheInterval) {
  auto server = TestServer::Start(AF_INET, TestServer::Mode::kAcceptClose);
  ASSERT_NE(server, nullptr);
  const int threads_before = Threads();
  Recorder rec;
  HealthChecker checker(rec.Callback());
  HealthCheckSpec spec = Fast(HealthCheckType::kTcp);
  spec.interval_ms = 1000;
  spec.timeout_ms = 500;
  constexpr int kTargets = 300;
  std::vector<Target> targets;
  for (int i = 0; i < kTargets; ++i) {
    targets.push_back({absl::StrCat("t", i), "127.0.0.1", server->port(), spec});
  }
  const auto set_at = steady_clock::now();
  ASSERT_TRUE(checker.SetTargets(targets).ok());
  ASSERT_TRUE(checker.WaitAllCheckedOnce(absl::Seconds(3)));
  EXPECT_EQ(Threads(), threads_before + 1);
  for (const auto& s : checker.Snapshot()) EXPECT_TRUE(s.healthy) << s.key << ": " << s.last_error;

  // First probes: uniform over [0, 1 s), not one burst. The kernel completes a probe's handshake
  // before the server thread's accept() records it, so the last few may still be queued.
  ASSERT_TRUE(WaitFor([&] { return server->accept_times().size() >= size_t{kTargets}; }));
  std::vector<steady_clock::time_point> times = server->accept_times();
  times.resize(kTargets);
  std::sort(times.begin(), times.end());
  const double spread = std::chrono::duration<double>(times.back() - times.front()).count();
  size_t busiest = 0;  // most connections in any 50 ms window
  for (size_t i = 0, j = 0; j < times.size(); ++j) {
    while (times[j] - times[i] > milliseconds(50)) ++i;
    busiest = std::max(busiest, j - i + 1);
  }
  std::printf(
      "%d first probes spread over %.3f s (interval 1 s), at most %zu in 50 ms, "
      "all verdicts after %.3f s\n",
      kTargets, spread, busiest, std::chrono::duration<double>(times.back() - set_at).count());
  EXPECT_GT(spread, 0.7);
  EXPECT_LT(busiest, 60u);  // 15 expected
}

TEST(HealthCheckerTest, ManyFailingProbesLeakNoDescriptors) {
  const int fds_before = OpenFds();
  {
    auto silent = TestServer::Start(AF_INET, TestServer::Mode::kSilent);
    ASSERT_NE(silent, nullptr);
    Recorder rec;
    HealthChecker checker(rec.Callback());
    HealthCheckSpec spec = Fast(HealthCheckType::kHttp);
    spec.interval_ms = 20;
    spec.timeout_ms = 10;
    HealthCheckSpec bind_fails = spec;
    bind_fails.bind_interface = "nosuch0";
    std::vector<Target> targets;
    const uint16_t refused_port = ClosedPort();
    for (int i = 0; i < 100; ++i) {
      targets.push_back({absl::StrCat("refused", i), "127.0.0.1", refused_port, spec});
      targets.push_back({absl::StrCat("refused6-", i), "::1", refused_port, spec});
    }
    for (int i = 0; i < 50; ++i) {
      targets.push_back({absl::StrCat("silent", i), "127.0.0.1", silent->port(), spec});
      targets.push_back({absl::StrCat("nobind", i), "127.0.0.1", silent->port(), bind_fails});
    }
    ASSERT_TRUE(checker.SetTargets(targets).ok());
    std::this_thread::sleep_for(milliseconds(500));
    ASSERT_TRUE(checker.SetTargets({}).ok());  // abandons whatever is in flight
    ASSERT_TRUE(checker.SetTargets(targets).ok());
    std::this_thread::sleep_for(milliseconds(500));
    uint64_t probes = 0, failures = 0;
    for (const auto& s : checker.Snapshot()) {
      probes += s.total_probes;
      failures += s.total_failures;
    }
    std::printf("%zu targets: %lu probes, %lu failures in the last 0.5 s\n", targets.size(),
                static_cast<unsigned long>(probes), static_cast<unsigned long>(failures));
    EXPECT_EQ(probes, failures);
    EXPECT_GT(failures, 2000u);
    EXPECT_GT(checker.Snapshot().size(), 0u);
    EXPECT_THAT(StatusOf(checker, "silent0")->last_error, StartsWith("timeout after 10 ms "));
    // The destructor stops with probes in flight.
  }
  EXPECT_EQ(OpenFds(), fds_before);
}

TEST(HealthCheckerTest, StopIsIdempotentAndFinal) {
  auto silent = TestServer::Start(AF_INET, TestServer::Mode::kSilent);
  ASSERT_NE(silent, nullptr);
  std::atomic<int> events{0};
  HealthChecker checker([&](const Event&) { ++events; });
  ASSERT_TRUE(
      checker.SetTargets({{"silent", "127.0.0.1", silent->port(), Fast(HealthCheckType::kHttp)}})
          .ok());
  std::this_thread::sleep_for(milliseconds(100));
  checker.Stop();
  const int after_stop = events;
  checker.Stop();
  EXPECT_EQ(checker.SetTargets({}).code(), absl::StatusCode::kFailedPrecondition);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(events, after_stop);
  EXPECT_EQ(checker.Snapshot().size(), 1u);  // the last state stays readable
}

}  // namespace
}  // namespace lb
