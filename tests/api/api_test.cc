// The gRPC API against a real lbnode process: every RPC, every error code, apply idempotence,
// persistence across restarts, concurrent clients, the event stream and the metrics endpoint.
// lbnode runs with a net_ring uplink (no NIC, no hugepages, no namespace), its own state
// directory, API socket, metrics port and EAL file prefix.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "lb/v1/service.grpc.pb.h"

namespace lb {
namespace {

using grpc::StatusCode;
using v1::LoadBalancer;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int NextId() {
  static std::atomic<int> n{0};
  return n++;
}

// One lbnode process with its own directory. Stop() sends SIGTERM and waits; the destructor
// makes sure the process is gone.
class Lbnode {
 public:
  explicit Lbnode(std::string dir = "") : id_(NextId()) {
    if (dir.empty()) {
      char tmpl[] = "/tmp/lbapiXXXXXX";
      dir_ = mkdtemp(tmpl);
      owns_dir_ = true;
    } else {
      dir_ = dir;
    }
    metrics_port_ = 20000 + (getpid() * 7 + id_ * 13) % 20000;
  }
  ~Lbnode() {
    Stop();
    if (owns_dir_) std::filesystem::remove_all(dir_);
  }

  std::string socket() const { return dir_ + "/api.sock"; }
  const std::string& dir() const { return dir_; }
  int metrics_port() const { return metrics_port_; }
  std::string log() const { return ReadAll(dir_ + "/lbnode.log"); }

  // Writes the config (plus `extra` text) and starts lbnode; waits until the API answers.
  ::testing::AssertionResult Start(const std::string& extra = "") {
    std::ofstream(dir_ + "/node.textproto") << Config() << extra;
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open((dir_ + "/lbnode.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(LBNODE_BIN, LBNODE_BIN, "--config", (dir_ + "/node.textproto").c_str(), nullptr);
      _exit(127);
    }
    // Connect once the socket exists: a channel that failed to connect backs off for seconds.
    for (int i = 0; i < 200 && !std::filesystem::exists(socket()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
    stub_ = LoadBalancer::NewStub(
        grpc::CreateCustomChannel("unix:" + socket(), grpc::InsecureChannelCredentials(), args));
    for (int i = 0; i < 200; ++i) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure() << "lbnode exited early:\n" << log();
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      v1::GetStatusResponse r;
      if (stub_->GetStatus(&ctx, {}, &r).ok()) {
        return ::testing::AssertionSuccess();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return ::testing::AssertionFailure() << "lbnode API not up in 20 s:\n" << log();
  }

  // Runs lbnode to completion (for configs it must refuse); returns its exit code.
  int RunExpectingExit(const std::string& extra) {
    std::ofstream(dir_ + "/node.textproto") << Config() << extra;
    const std::string cmd = absl::StrCat("timeout 30 ", LBNODE_BIN, " --config ", dir_,
                                         "/node.textproto >>", dir_, "/lbnode.log 2>&1");
    const int rc = system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  // SIGTERM, then wait up to 10 s (SIGKILL after). Returns the exit status.
  int Stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }

  LoadBalancer::Stub& api() { return *stub_; }
  std::string api_extra;  // more fields of the config's api block

 private:
  std::string Config() const {
    return absl::StrCat(R"(dataplane {
  eal_args: ["-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", "lbapi)",
                        getpid(), "_", id_, R"(", "--vdev", "net_ring0",
             "--log-level", "lib.eal:error", "--no-telemetry"]
  uplink: "net_ring0"
  conn_table_size: 65536
}
node {
  tunnel_source_ipv4: "192.0.2.1"
  tunnel_source_ipv6: "2001:db8::1"
  static_neighbors { address: "10.1.0.1" mac: "02:00:00:00:01:01" }
  static_neighbors { address: "10.1.0.2" mac: "02:00:00:00:01:02" }
  static_neighbors { address: "10.1.0.3" mac: "02:00:00:00:01:03" }
}
node_name: "apitest"
state_dir: ")",
                        dir_, R"(/state"
api { unix_socket: ")",
                        socket(), "\" ", api_extra, R"( }
metrics { listen: "127.0.0.1:)",
                        metrics_port_, R"(" }
)");
  }

  int id_;
  std::string dir_;
  bool owns_dir_ = false;
  int metrics_port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<LoadBalancer::Stub> stub_;
};

v1::Vip MakeVip(const std::string& addr, uint32_t port, int backends = 3) {
  v1::Vip v;
  v.set_address(addr);
  v.set_port(port);
  v.set_protocol(v1::PROTOCOL_TCP);
  v.set_mode(v1::FORWARDING_MODE_TUN);
  for (int i = 1; i <= backends; ++i) v.add_backends()->set_address(absl::StrCat("10.1.0.", i));
  return v;
}

v1::VipKey Key(const std::string& addr, uint32_t port) {
  v1::VipKey k;
  k.set_address(addr);
  k.set_port(port);
  k.set_protocol(v1::PROTOCOL_TCP);
  return k;
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (DPDK EAL)";
    ASSERT_TRUE(node_.Start());
  }

  grpc::Status Create(const v1::Vip& vip, uint64_t* version = nullptr) {
    grpc::ClientContext ctx;
    v1::CreateVipRequest req;
    *req.mutable_vip() = vip;
    v1::CreateVipResponse resp;
    grpc::Status st = node_.api().CreateVip(&ctx, req, &resp);
    if (version) *version = resp.version();
    return st;
  }
  v1::ServiceConfig Config() {
    grpc::ClientContext ctx;
    v1::GetConfigResponse r;
    EXPECT_TRUE(node_.api().GetConfig(&ctx, {}, &r).ok());
    return r.config();
  }
  v1::ListVipsResponse List() {
    grpc::ClientContext ctx;
    v1::ListVipsResponse r;
    EXPECT_TRUE(node_.api().ListVips(&ctx, {}, &r).ok());
    return r;
  }
  v1::GetStatusResponse Status() {
    grpc::ClientContext ctx;
    v1::GetStatusResponse r;
    EXPECT_TRUE(node_.api().GetStatus(&ctx, {}, &r).ok());
    return r;
  }
  grpc::Status Apply(const v1::ServiceConfig& c, v1::ApplyConfigResponse* r, bool dry = false,
                     bool force = false) {
    grpc::ClientContext ctx;
    v1::ApplyConfigRequest req;
    *req.mutable_config() = c;
    req.set_dry_run(dry);
    req.set_force(force);
    return node_.api().ApplyConfig(&ctx, req, r);
  }

  Lbnode node_;
};

TEST_F(ApiTest, CreateListDeleteVip) {
  uint64_t version = 0;
  ASSERT_TRUE(Create(MakeVip("10.0.0.1", 80), &version).ok());
  EXPECT_EQ(version, 1u);
  const v1::ListVipsResponse l = List();
  ASSERT_EQ(l.vips_size(), 1);
  EXPECT_EQ(l.vips(0).vip().address(), "10.0.0.1");
  EXPECT_EQ(l.vips(0).backends_size(), 3);
  EXPECT_EQ(l.vips(0).healthy_backends(), 3u);
  EXPECT_EQ(Status().config_version(), 1u);

  grpc::ClientContext ctx;
  v1::DeleteVipRequest del;
  *del.mutable_vip() = Key("10.0.0.1", 80);
  v1::DeleteVipResponse dr;
  ASSERT_TRUE(node_.api().DeleteVip(&ctx, del, &dr).ok());
  EXPECT_EQ(dr.version(), 2u);
  EXPECT_EQ(List().vips_size(), 0);
  grpc::ClientContext ctx2;
  EXPECT_EQ(node_.api().DeleteVip(&ctx2, del, &dr).error_code(), StatusCode::NOT_FOUND);
}

TEST_F(ApiTest, BackendsAddRemoveUpdate) {
  ASSERT_TRUE(Create(MakeVip("2001:db8::10", 443, 1)).ok());
  const v1::VipKey k = [] {
    v1::VipKey k = Key("2001:DB8::10", 443);  // another spelling of the same VIP
    return k;
  }();
  {
    grpc::ClientContext ctx;
    v1::AddBackendRequest req;
    *req.mutable_vip() = k;
    req.mutable_backend()->set_address("10.1.0.2");
    req.mutable_backend()->set_weight(5);
    v1::AddBackendResponse r;
    ASSERT_TRUE(node_.api().AddBackend(&ctx, req, &r).ok());
    grpc::ClientContext ctx2;
    EXPECT_EQ(node_.api().AddBackend(&ctx2, req, &r).error_code(), StatusCode::ALREADY_EXISTS);
  }
  {
    grpc::ClientContext ctx;
    v1::UpdateBackendRequest req;
    *req.mutable_vip() = k;
    req.set_address("10.1.0.2");
    req.set_state(v1::BACKEND_STATE_DRAINING);
    v1::UpdateBackendResponse r;
    ASSERT_TRUE(node_.api().UpdateBackend(&ctx, req, &r).ok());
  }
  v1::ListVipsResponse l = List();
  ASSERT_EQ(l.vips(0).backends_size(), 2);
  EXPECT_EQ(l.vips(0).backends(1).backend().weight(), 5u);
  EXPECT_EQ(l.vips(0).backends(1).backend().state(), v1::BACKEND_STATE_DRAINING);
  EXPECT_FALSE(l.vips(0).backends(1).in_maglev());
  EXPECT_TRUE(l.vips(0).backends(0).in_maglev());
  {
    grpc::ClientContext ctx;
    v1::RemoveBackendRequest req;
    *req.mutable_vip() = k;
    req.set_address("10.1.0.1");
    v1::RemoveBackendResponse r;
    ASSERT_TRUE(node_.api().RemoveBackend(&ctx, req, &r).ok());
    grpc::ClientContext ctx2;
    EXPECT_EQ(node_.api().RemoveBackend(&ctx2, req, &r).error_code(), StatusCode::NOT_FOUND);
  }
  l = List();
  ASSERT_EQ(l.vips(0).backends_size(), 1);
  EXPECT_EQ(l.vips(0).backends(0).backend().address(), "10.1.0.2");
  EXPECT_EQ(l.vips(0).withdraw_reason(), "routing disabled");
}

// Every error code, with a message naming the field, and no change behind it.
TEST_F(ApiTest, ErrorsNameTheFieldAndChangeNothing) {
  ASSERT_TRUE(Create(MakeVip("10.0.0.2", 80)).ok());
  const v1::ServiceConfig before = Config();
  const auto expect = [&](grpc::Status st, StatusCode code, const std::string& text) {
    EXPECT_EQ(st.error_code(), code) << st.error_message();
    EXPECT_NE(st.error_message().find(text), std::string::npos)
        << "'" << text << "' not in: " << st.error_message();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(Config(), before));
  };
  v1::Vip bad = MakeVip("10.0.0", 80);
  expect(Create(bad), StatusCode::INVALID_ARGUMENT, "address");
  bad = MakeVip("10.0.0.3", 80);
  bad.set_mode(v1::FORWARDING_MODE_UNSPECIFIED);
  expect(Create(bad), StatusCode::INVALID_ARGUMENT, "mode");
  bad = MakeVip("10.0.0.3", 80);
  bad.mutable_backends(1)->set_address("banana");
  expect(Create(bad), StatusCode::INVALID_ARGUMENT, "backends[1].address");
  bad = MakeVip("10.0.0.3", 80);
  bad.mutable_health_check()->set_type(v1::HealthCheck::TYPE_HTTP);
  bad.mutable_health_check()->set_interval_ms(500);
  bad.mutable_health_check()->set_timeout_ms(800);
  expect(Create(bad), StatusCode::INVALID_ARGUMENT, "health_check.timeout_ms");
  bad = MakeVip("10.0.0.3", 80);
  bad.set_maglev_table_size(65536);
  expect(Create(bad), StatusCode::INVALID_ARGUMENT, "maglev_table_size");
  {
    grpc::ClientContext ctx;
    v1::CreateVipResponse r;
    expect(node_.api().CreateVip(&ctx, v1::CreateVipRequest(), &r), StatusCode::INVALID_ARGUMENT,
           "vip");
  }
  expect(Create(MakeVip("10.0.0.2", 80)), StatusCode::ALREADY_EXISTS, "10.0.0.2:80/tcp");
  {
    grpc::ClientContext ctx;
    v1::AddBackendRequest req;
    *req.mutable_vip() = Key("10.0.0.99", 80);
    req.mutable_backend()->set_address("10.1.0.1");
    v1::AddBackendResponse r;
    expect(node_.api().AddBackend(&ctx, req, &r), StatusCode::NOT_FOUND, "10.0.0.99");
  }
  {
    grpc::ClientContext ctx;
    v1::UpdateBackendRequest req;
    *req.mutable_vip() = Key("10.0.0.2", 80);
    req.set_address("10.1.0.1");
    v1::UpdateBackendResponse r;
    expect(node_.api().UpdateBackend(&ctx, req, &r), StatusCode::INVALID_ARGUMENT, "weight");
  }
  {
    grpc::ClientContext ctx;
    v1::DrainVipRequest req;
    *req.mutable_vip() = Key("10.0.0.98", 80);
    v1::DrainVipResponse r;
    expect(node_.api().DrainVip(&ctx, req, &r), StatusCode::NOT_FOUND, "10.0.0.98");
  }
  // Maglev slots: four tables of 2^24-3 fit, a fifth exceeds the node's budget.
  v1::ServiceConfig big = before;
  big.set_version(before.version() + 10);
  for (int i = 0; i < 5; ++i) {
    v1::Vip v = MakeVip(absl::StrCat("10.0.1.", i), 80, 0);
    v.set_maglev_table_size(16777213);
    *big.add_vips() = v;
  }
  v1::ApplyConfigResponse ar;
  expect(Apply(big, &ar), StatusCode::RESOURCE_EXHAUSTED, "maglev_table_size");
  // An older version: refused unless forced.
  v1::ServiceConfig old;
  old.set_version(0);
  expect(Apply(old, &ar), StatusCode::FAILED_PRECONDITION, "version");
  EXPECT_EQ(Status().config_version(), before.version());
}

TEST_F(ApiTest, ApplyIsIdempotentAndVersioned) {
  v1::ServiceConfig c;
  c.set_version(5);
  *c.add_vips() = MakeVip("10.0.0.5", 80);
  *c.add_vips() = MakeVip("10.0.0.6", 0);
  v1::ApplyConfigResponse r;
  ASSERT_TRUE(Apply(c, &r, /*dry=*/true).ok());
  EXPECT_TRUE(r.changed());
  EXPECT_EQ(r.vips_added_size(), 2);
  EXPECT_EQ(Status().config_version(), 0u) << "dry run changed the node";
  ASSERT_TRUE(Apply(c, &r).ok());
  EXPECT_TRUE(r.changed());
  EXPECT_EQ(r.version(), 5u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Apply(c, &r).ok());
    EXPECT_FALSE(r.changed()) << "re-applying the same config changed something";
    EXPECT_EQ(r.version(), 5u);
  }
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(Config(), c));
  // Same version, different content: a conflict.
  v1::ServiceConfig other = c;
  other.mutable_vips()->RemoveLast();
  EXPECT_EQ(Apply(other, &r).error_code(), StatusCode::FAILED_PRECONDITION);
  other.set_version(4);
  EXPECT_EQ(Apply(other, &r).error_code(), StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(Apply(other, &r, false, /*force=*/true).ok());
  EXPECT_EQ(r.vips_removed_size(), 1);
  EXPECT_EQ(Status().config_version(), 4u);
  EXPECT_EQ(List().vips_size(), 1);
}

TEST_F(ApiTest, DrainAndUndrainNodeAndVip) {
  ASSERT_TRUE(Create(MakeVip("10.0.0.7", 80)).ok());
  ASSERT_TRUE(Create(MakeVip("10.0.0.8", 80)).ok());
  {
    grpc::ClientContext ctx;
    v1::DrainVipRequest req;
    *req.mutable_vip() = Key("10.0.0.7", 80);
    v1::DrainVipResponse r;
    ASSERT_TRUE(node_.api().DrainVip(&ctx, req, &r).ok());
    EXPECT_TRUE(r.report().drained());
    EXPECT_GT(r.report().requested_at_unix_ms(), 0);
  }
  v1::ListVipsResponse l = List();
  EXPECT_TRUE(l.vips(0).drained());
  EXPECT_FALSE(l.vips(1).drained());
  {
    grpc::ClientContext ctx;
    v1::DrainNodeResponse r;
    ASSERT_TRUE(node_.api().DrainNode(&ctx, {}, &r).ok());
    EXPECT_TRUE(r.report().drained());
    EXPECT_EQ(r.report().vips_size(), 2);
  }
  // Connections reach zero (there is no traffic) and the report says when.
  bool zero = false;
  for (int i = 0; i < 50 && !zero; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    zero = Status().drain().connections_zero_at_unix_ms() != 0;
  }
  EXPECT_TRUE(zero) << Status().DebugString();
  EXPECT_TRUE(Status().node_drained());
  {
    grpc::ClientContext ctx;
    v1::UndrainNodeResponse r;
    ASSERT_TRUE(node_.api().UndrainNode(&ctx, {}, &r).ok());
    grpc::ClientContext ctx2;
    v1::UndrainVipRequest req;
    *req.mutable_vip() = Key("10.0.0.7", 80);
    v1::UndrainVipResponse r2;
    ASSERT_TRUE(node_.api().UndrainVip(&ctx2, req, &r2).ok());
  }
  EXPECT_FALSE(Status().node_drained());
  EXPECT_FALSE(List().vips(0).drained());
}

TEST_F(ApiTest, RestartRestoresStateAndDrain) {
  ASSERT_TRUE(Create(MakeVip("10.0.0.9", 80)).ok());
  {
    grpc::ClientContext ctx;
    v1::UpdateBackendRequest req;
    *req.mutable_vip() = Key("10.0.0.9", 80);
    req.set_address("10.1.0.3");
    req.set_weight(7);
    v1::UpdateBackendResponse r;
    ASSERT_TRUE(node_.api().UpdateBackend(&ctx, req, &r).ok());
    grpc::ClientContext ctx2;
    v1::DrainVipRequest dreq;
    *dreq.mutable_vip() = Key("10.0.0.9", 80);
    v1::DrainVipResponse dr;
    ASSERT_TRUE(node_.api().DrainVip(&ctx2, dreq, &dr).ok());
  }
  const v1::ServiceConfig before = Config();
  EXPECT_EQ(node_.Stop(), 0) << node_.log();
  EXPECT_TRUE(std::filesystem::exists(node_.dir() + "/state/state.textproto"));
  // The config file now also lists services: the saved state must win over them.
  ASSERT_TRUE(node_.Start(R"(services { version: 99 vips { address: "10.9.9.9" port: 1
      protocol: PROTOCOL_TCP mode: FORWARDING_MODE_TUN } })"));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(Config(), before))
      << Config().DebugString();
  EXPECT_EQ(Status().config_version(), 2u);
  EXPECT_TRUE(List().vips(0).drained());
  EXPECT_NE(node_.log().find("restored state"), std::string::npos);
}

TEST_F(ApiTest, ConcurrentClients) {
  constexpr int kThreads = 8, kPerThread = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = LoadBalancer::NewStub(
          grpc::CreateChannel("unix:" + node_.socket(), grpc::InsecureChannelCredentials()));
      for (int i = 0; i < kPerThread; ++i) {
        grpc::ClientContext ctx;
        v1::CreateVipRequest req;
        *req.mutable_vip() = MakeVip(absl::StrCat("10.2.", t, ".", i), 80, 2);
        req.mutable_vip()->set_maglev_table_size(251);
        v1::CreateVipResponse r;
        if (!stub->CreateVip(&ctx, req, &r).ok()) ++failures;
        grpc::ClientContext ctx2;
        v1::GetStatsResponse s;
        if (!stub->GetStats(&ctx2, {}, &s).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(List().vips_size(), kThreads * kPerThread);
  EXPECT_EQ(Status().config_version(), static_cast<uint64_t>(kThreads * kPerThread));
  grpc::ClientContext ctx;
  v1::GetStatsRequest req;
  req.set_count_connections(true);
  v1::GetStatsResponse s;
  ASSERT_TRUE(node_.api().GetStats(&ctx, req, &s).ok());
  EXPECT_EQ(s.vips_size(), kThreads * kPerThread);
  EXPECT_EQ(s.conn_table_capacity(), 65536u);
  EXPECT_TRUE(s.drops().count("no_backend")) << "drop reasons are listed even when zero";
}

TEST_F(ApiTest, WatchStreamsEvents) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::WatchRequest req;
  auto reader = node_.api().Watch(&ctx, req);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the stream is subscribed
  ASSERT_TRUE(Create(MakeVip("10.0.0.10", 80)).ok());
  {
    grpc::ClientContext c2;
    v1::DrainNodeResponse r;
    ASSERT_TRUE(node_.api().DrainNode(&c2, {}, &r).ok());
  }
  std::vector<v1::Event> got;
  v1::Event e;
  while (got.size() < 2 && reader->Read(&e)) got.push_back(e);
  ctx.TryCancel();
  reader->Finish();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].kind(), v1::Event::KIND_CONFIG_APPLIED);
  EXPECT_EQ(got[0].version(), 1u);
  EXPECT_NE(got[0].message().find("10.0.0.10:80/tcp"), std::string::npos);
  EXPECT_EQ(got[1].kind(), v1::Event::KIND_DRAIN);
}

TEST_F(ApiTest, MetricsPassPromtool) {
  ASSERT_TRUE(Create(MakeVip("10.0.0.11", 80)).ok());
  httplib::Client cli("127.0.0.1", node_.metrics_port());
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res) << "no answer from the metrics endpoint";
  EXPECT_EQ(res->status, 200);
  const std::string& body = res->body;
  EXPECT_NE(body.find("lbnode_vip_packets_total{vip=\"10.0.0.11:80/tcp\"} 0"), std::string::npos)
      << body;
  EXPECT_NE(body.find("lbnode_backend_healthy{vip=\"10.0.0.11:80/tcp\",backend=\"10.1.0.2\"} 1"),
            std::string::npos);
  EXPECT_NE(body.find("lbnode_drops_total{reason=\"no_backend\"}"), std::string::npos);
  EXPECT_NE(body.find("lbnode_conn_table_capacity 65536"), std::string::npos);
  const std::string file = node_.dir() + "/metrics.txt";
  std::ofstream(file) << body;
  if (system("command -v promtool >/dev/null") != 0) GTEST_SKIP() << "promtool not installed";
  const std::string cmd = absl::StrCat("promtool check metrics < ", file, " > ", file, ".out 2>&1");
  EXPECT_EQ(system(cmd.c_str()), 0) << ReadAll(file + ".out");
}

// Configs lbnode must refuse at start, without forwarding or half-starting.
TEST(ApiStartup, RefusesPlaintextTcpAndCorruptState) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (DPDK EAL)";
  {
    Lbnode node;
    node.api_extra = "tcp_listen: \"0.0.0.0:50051\"";
    EXPECT_NE(node.RunExpectingExit(""), 0);
    EXPECT_NE(node.log().find("api.tcp_listen"), std::string::npos) << node.log();
  }
  {
    Lbnode node;
    std::filesystem::create_directories(node.dir() + "/state");
    std::ofstream(node.dir() + "/state/state.textproto") << "services { vips { address: ";
    EXPECT_NE(node.RunExpectingExit(""), 0);
    EXPECT_NE(node.log().find("state.textproto"), std::string::npos) << node.log();
  }
}

}  // namespace
}  // namespace lb
