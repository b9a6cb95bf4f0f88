#include "control/metrics.h"

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace lb {
namespace {

std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

class Writer {
 public:
  // Declares a metric family once.
  void Family(const std::string& name, const char* type, const char* help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(const std::string& name, const std::string& labels, uint64_t value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                    value, "\n");
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Label(const char* k, const std::string& v) {
  return absl::StrCat(k, "=\"", Escape(v), "\"");
}

std::string VipLabel(const v1::VipKey& k) {
  auto s = VipKeyString(k);
  return Label("vip", s.ok() ? *s : k.address());
}

}  // namespace

std::string RenderMetrics(const NodeController& ctl) {
  const v1::GetStatsResponse stats = ctl.GetStats(/*count_connections=*/true);
  const v1::GetStatusResponse status = ctl.GetStatus();
  const NodeController::AnnounceView ann = ctl.Announcements();
  Writer w;
  w.Family("lbnode_up", "gauge", "1 while the dataplane forwards.");
  w.Sample("lbnode_up", "", status.dataplane_up() ? 1 : 0);
  w.Family("lbnode_config_version", "gauge", "Version of the service config in force.");
  w.Sample("lbnode_config_version", "", status.config_version());
  w.Family("lbnode_node_drained", "gauge", "1 while the node is drained.");
  w.Sample("lbnode_node_drained", "", status.node_drained() ? 1 : 0);
  w.Family("lbnode_health_checks_ready", "gauge",
           "1 once every backend had a first health verdict.");
  w.Sample("lbnode_health_checks_ready", "", status.health_checks_ready() ? 1 : 0);
  w.Family("lbnode_bird_up", "gauge", "1 while BIRD answers on its control socket.");
  w.Sample("lbnode_bird_up", "", ann.bird_ok ? 1 : 0);

  w.Family("lbnode_vip_announced", "gauge", "1 while this node announces the VIP address.");
  for (const auto& [prefix, on] : ann.prefixes) {
    w.Sample("lbnode_vip_announced", Label("prefix", prefix), on ? 1 : 0);
  }

  for (const auto& [name, value] : stats.counters()) {
    const std::string metric = absl::StrCat("lbnode_", name, "_total");
    w.Family(metric, "counter", absl::StrCat("Dataplane counter ", name, ".").c_str());
    w.Sample(metric, "", value);
  }
  w.Family("lbnode_drops_total", "counter", "Packets dropped, by reason.");
  for (const auto& [reason, value] : stats.drops()) {
    if (reason.rfind("parse_", 0) == 0) continue;  // the breakdown of "malformed", below
    w.Sample("lbnode_drops_total", Label("reason", reason), value);
  }
  w.Family("lbnode_malformed_total", "counter",
           "Malformed packets (drops with reason malformed), by what the parser found.");
  for (const auto& [reason, value] : stats.drops()) {
    if (reason.rfind("parse_", 0) != 0) continue;
    w.Sample("lbnode_malformed_total", Label("reason", reason.substr(6)), value);
  }

  w.Family("lbnode_conn_table_capacity", "gauge", "Connection-table entries, all workers.");
  w.Sample("lbnode_conn_table_capacity", "", stats.conn_table_capacity());
  w.Family("lbnode_conn_table_live", "gauge", "Live connection-table entries, all workers.");
  w.Sample("lbnode_conn_table_live", "", stats.conn_table_live());

  w.Family("lbnode_vip_packets_total", "counter", "Packets forwarded for a VIP.");
  for (const auto& v : stats.vips()) {
    w.Sample("lbnode_vip_packets_total", VipLabel(v.vip()), v.traffic().packets());
  }
  w.Family("lbnode_vip_bytes_total", "counter", "Bytes forwarded for a VIP.");
  for (const auto& v : stats.vips()) {
    w.Sample("lbnode_vip_bytes_total", VipLabel(v.vip()), v.traffic().bytes());
  }
  w.Family("lbnode_vip_connections", "gauge", "Live connections of a VIP in this node's tables.");
  for (const auto& v : stats.vips()) {
    w.Sample("lbnode_vip_connections", VipLabel(v.vip()), v.connections());
  }
  w.Family("lbnode_backend_packets_total", "counter", "Packets sent to a backend.");
  for (const auto& v : stats.vips()) {
    for (const auto& b : v.backends()) {
      w.Sample("lbnode_backend_packets_total",
               absl::StrCat(VipLabel(v.vip()), ",", Label("backend", b.address())),
               b.traffic().packets());
    }
  }
  w.Family("lbnode_backend_bytes_total", "counter", "Bytes sent to a backend.");
  for (const auto& v : stats.vips()) {
    for (const auto& b : v.backends()) {
      w.Sample("lbnode_backend_bytes_total",
               absl::StrCat(VipLabel(v.vip()), ",", Label("backend", b.address())),
               b.traffic().bytes());
    }
  }
  w.Family("lbnode_backend_healthy", "gauge", "1 while a backend passes its health check.");
  for (const auto& v : stats.vips()) {
    for (const auto& b : v.backends()) {
      w.Sample("lbnode_backend_healthy",
               absl::StrCat(VipLabel(v.vip()), ",", Label("backend", b.address())),
               b.healthy() ? 1 : 0);
    }
  }
  w.Family("lbnode_worker_alive", "gauge", "1 while a worker makes progress (watchdog).");
  for (const auto& wk : status.workers()) {
    w.Sample("lbnode_worker_alive", Label("worker", absl::StrCat(wk.id())), wk.alive() ? 1 : 0);
  }
  w.Family("lbnode_worker_rx_packets_total", "counter", "Packets a worker took from the uplink.");
  for (const auto& wk : stats.workers()) {
    w.Sample("lbnode_worker_rx_packets_total", Label("worker", absl::StrCat(wk.id())),
             wk.rx_packets());
  }
  return w.Take();
}

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, const NodeController* controller) {
  std::string host;
  std::string port_text;
  if (!listen.empty() && listen.front() == '[') {
    const size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("metrics.listen: bad address ", listen));
    }
    host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics.listen: \"", listen, "\" is not address:port"));
    }
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
  }
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics.listen: bad port in ", listen));
  }
  auto out = std::unique_ptr<MetricsServer>(new MetricsServer());
  out->impl_ = std::make_unique<Impl>();
  out->impl_->server.Get("/metrics", [controller](const httplib::Request&, httplib::Response& r) {
    r.set_content(RenderMetrics(*controller), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (!out->impl_->server.bind_to_port(host.c_str(), port)) {
    return absl::UnavailableError(absl::StrCat("metrics.listen: cannot listen on ", listen));
  }
  out->impl_->thread = std::thread([impl = out->impl_.get()] { impl->server.listen_after_bind(); });
  return out;
}

MetricsServer::~MetricsServer() {
  if (impl_) {
    impl_->server.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
  }
}

}  // namespace lb
