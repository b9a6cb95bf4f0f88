// lbnode: the load-balancer node daemon. Reads its config file (text format of
// lb.v1.NodeConfig), restores the desired state saved in its state directory (or takes the
// config file's services on first start), starts the DPDK dataplane with it, sets up the
// exception-path interface (TAP) with the uplink's MAC, MTU and the node's addresses, mirrors the
// kernel's neighbour and route tables for it, serves the gRPC API (lb.v1.LoadBalancer) and the
// Prometheus metrics, runs the backend health checks and drives BIRD's announcements.
// SIGTERM/SIGINT: withdraw the routes, then stop forwarding. SIGUSR1 logs the counters.
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control/api_service.h"
#include "control/health_checker.h"
#include "control/interface_setup.h"
#include "control/log.h"
#include "control/metrics.h"
#include "control/node_controller.h"
#include "control/snapshot_builder.h"
#include "control/state_store.h"
#include "dataplane/dpdk/dataplane.h"
#include "dataplane/netlink_mirror.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "lb/v1/node.pb.h"
#include "routing/announcer.h"
#include "rte_eal.h"

namespace lb {
namespace {

std::atomic<unsigned> g_signals{0};  // bit per signal number
std::mutex g_mu;
std::condition_variable g_cv;
bool g_wake = false;

void Wake() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_wake = true;
  g_cv.notify_one();
}

void OnSignal(int sig) { g_signals.fetch_or(1u << sig); }

void InstallSignalHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaction(sig, &sa, nullptr);
}

absl::StatusOr<v1::NodeConfig> ReadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream text;
  text << in.rdbuf();
  v1::NodeConfig config;
  if (absl::Status st = ParseTextFormat(text.str(), &config); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
  }
  if (config.dataplane().uplink().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": dataplane.uplink is required"));
  }
  return config;
}

std::string FormatCounters(const DataplaneCounters& c, const Snapshot& s) {
  const WorkerCounters& t = c.total;
  std::string out = absl::StrCat(
      "counters rx_packets=", t.rx_packets, " rx_bytes=", t.rx_bytes, " to_backend=", t.to_backend,
      " to_kernel=", t.to_kernel, " from_kernel=", t.from_kernel, " echo_replies=", t.echo_replies,
      " icmp_errors=", t.icmp_errors, " nat_replies=", t.nat_replies, " handoffs=", t.handoffs,
      " conn_hits=", t.conn_hits, " conn_misses=", t.conn_misses,
      " conn_repicked=", t.conn_repicked, " conn_evicted_live=", c.conn_stats.evicted_live);
  absl::StrAppend(&out, " conn_swept=", c.conn_stats.swept,
                  " nat_reverse_restored=", t.nat_reverse_restored,
                  " nat_reallocated=", t.nat_reallocated, " uplink_imissed=", c.uplink_imissed,
                  " uplink_rx_nombuf=", c.uplink_rx_nombuf, " uplink_oerrors=", c.uplink_oerrors);
  for (size_t w = 0; w < c.worker_rx.size(); ++w) {
    absl::StrAppend(&out, " worker", w, "_rx=", c.worker_rx[w]);
  }
  for (size_t d = 0; d < static_cast<size_t>(Drop::kCount); ++d) {
    if (t.drops[d])
      absl::StrAppend(&out, " drop_", DropName(static_cast<Drop>(d)), "=", t.drops[d]);
  }
  for (size_t d = 0; d < static_cast<size_t>(ParseStatus::kCount); ++d) {
    if (t.parse_drops[d]) {
      absl::StrAppend(&out, " parse_", ParseStatusName(static_cast<ParseStatus>(d)), "=",
                      t.parse_drops[d]);
    }
  }
  for (const VipEntry& v : s.vips) {
    if (v.handle == 0) continue;
    if (HandleIndex(v.handle) >= t.vips.size()) continue;
    const PacketBytes& pb = t.vips[HandleIndex(v.handle)];
    const std::string addr = IpToString(v.key.addr, v.key.family);
    absl::StrAppend(&out, " vip[", v.key.family == IpFamily::kIpv6 ? "[" + addr + "]" : addr, ":",
                    ntohs(v.key.port), "]=", pb.packets);
  }
  for (const BackendEntry& b : s.backends) {
    if (b.handle == 0 || HandleIndex(b.handle) >= t.backends.size()) continue;
    absl::StrAppend(&out, " backend[", IpToString(b.addr, b.family),
                    "]=", t.backends[HandleIndex(b.handle)].packets);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Announcer>> MakeAnnouncer(const v1::NodeConfig& config,
                                                         const std::string& state_dir) {
  const v1::RoutingConfig& r = config.routing();
  AnnouncerOptions o;
  o.bird.router_id = r.router_id();
  o.bird.area = absl::StrCat(r.area());
  o.bird.interface = config.interface().name().empty() ? "lb0" : config.interface().name();
  if (r.hello_s()) o.bird.hello_s = r.hello_s();
  if (r.dead_s()) o.bird.dead_s = r.dead_s();
  if (r.cost()) o.bird.cost = r.cost();
  o.bird.ipv4 = true;
  o.bird.ipv6 = false;
  for (const std::string& a : config.interface().addresses()) {
    if (a.find(':') != std::string::npos) o.bird.ipv6 = true;
  }
  o.bird.bfd = r.bfd();
  if (r.bfd_interval_ms()) {
    o.bird.bfd_options.min_rx_ms = r.bfd_interval_ms();
    o.bird.bfd_options.min_tx_ms = r.bfd_interval_ms();
  }
  if (r.bfd_multiplier()) o.bird.bfd_options.multiplier = r.bfd_multiplier();
  o.bird.auth_key_file = r.auth_keys_file();
  o.bird.log_file = r.bird_log();
  o.config_path = r.bird_config().empty() ? state_dir + "/bird.conf" : r.bird_config();
  o.socket_path = r.bird_socket().empty() ? "/run/bird/bird.ctl" : r.bird_socket();
  auto a = Announcer::Create(std::move(o));
  if (!a.ok()) {
    return absl::Status(a.status().code(), absl::StrCat("routing.", a.status().message()));
  }
  return a;
}

// The health checker's targets for a service config: one per backend of every VIP with a check.
std::vector<HealthChecker::Target> HealthTargets(const v1::ServiceConfig& config,
                                                 const std::string& bind_interface) {
  std::vector<HealthChecker::Target> out;
  for (const v1::Vip& vip : config.vips()) {
    const v1::HealthCheck& hc = vip.health_check();
    if (hc.type() != v1::HealthCheck::TYPE_TCP && hc.type() != v1::HealthCheck::TYPE_HTTP) {
      continue;
    }
    auto key = VipKeyString(KeyOf(vip));
    if (!key.ok()) continue;
    for (const v1::Backend& b : vip.backends()) {
      HealthChecker::Target t;
      t.key = HealthKey(*key, b.address());
      auto ip = ParseIp(b.address());
      t.address = ip.ok() ? IpToString(ip->first, ip->second) : b.address();
      t.port = static_cast<uint16_t>(b.port() ? b.port() : vip.port());
      HealthCheckSpec& s = t.spec;
      s.type =
          hc.type() == v1::HealthCheck::TYPE_HTTP ? HealthCheckType::kHttp : HealthCheckType::kTcp;
      s.port = static_cast<uint16_t>(hc.port());
      if (hc.interval_ms()) s.interval_ms = hc.interval_ms();
      if (hc.timeout_ms()) s.timeout_ms = hc.timeout_ms();
      if (hc.rise()) s.rise = hc.rise();
      if (hc.fall()) s.fall = hc.fall();
      if (!hc.path().empty()) s.http_path = hc.path();
      s.http_host = hc.host();
      s.http_status = static_cast<uint16_t>(hc.expected_status());
      s.bind_interface = bind_interface;
      out.push_back(std::move(t));
    }
  }
  return out;
}

int Run(const std::string& config_path, bool check_only, bool fault_injection) {
  auto config = ReadConfig(config_path);
  if (!config.ok()) {
    Log(LogLevel::kError, std::string(config.status().message()));
    return 2;
  }
  if (absl::Status st = ValidateServiceConfig(config->services()); !st.ok()) {
    Log(LogLevel::kError, absl::StrCat(config_path, ": services.", st.message()));
    return 2;
  }
  if (auto n = NodeParamsFromProto(config->node(), MacAddr{}, nullptr); !n.ok()) {
    Log(LogLevel::kError, absl::StrCat(config_path, ": ", n.status().message()));
    return 2;
  }
  {
    // Every worker needs its own share of the full-NAT port range (replies find their worker by
    // port).
    const v1::NodeParams& np = config->node();
    const uint32_t lo = np.nat_port_min() ? np.nat_port_min() : 61000;
    const uint32_t hi = np.nat_port_max() ? np.nat_port_max() : 65535;
    const uint32_t workers = config->dataplane().workers() ? config->dataplane().workers() : 1;
    if (np.nat_addresses_size() > 0 && hi >= lo && hi - lo + 1 < workers) {
      Log(LogLevel::kError,
          absl::StrCat(config_path, ": node.nat_port_min: the full-NAT range ", lo, "-", hi,
                       " is smaller than the ", workers, " workers that share it"));
      return 2;
    }
  }
  if (!config->api().tcp_listen().empty() &&
      (config->api().tls_cert().empty() || config->api().tls_key().empty())) {
    Log(LogLevel::kError, absl::StrCat(config_path,
                                       ": api.tcp_listen needs api.tls_cert and api.tls_key: the "
                                       "API is never served over plaintext TCP"));
    return 2;
  }
  if (config->routing().enabled()) {
    // Validates the routing section (router id, timers, key file) without contacting BIRD.
    auto a = MakeAnnouncer(*config,
                           config->state_dir().empty() ? "/var/lib/lbnode" : config->state_dir());
    if (!a.ok()) {
      Log(LogLevel::kError, absl::StrCat(config_path, ": ", a.status().message()));
      return 2;
    }
  }
  if (check_only) {
    Log(LogLevel::kInfo, absl::StrCat(config_path, ": configuration is valid"));
    return 0;
  }
  const v1::DataplaneConfig& dpc = config->dataplane();
  std::vector<std::string> eal(dpc.eal_args().begin(), dpc.eal_args().end());
  if (absl::Status st = InitEal(eal); !st.ok()) {
    Log(LogLevel::kError, std::string(st.message()));
    return 1;
  }
  auto uplink_mac = PortMac(dpc.uplink());
  if (!uplink_mac.ok()) {
    Log(LogLevel::kError, std::string(uplink_mac.status().message()));
    return 1;
  }
  std::vector<std::pair<std::pair<IpAddr, IpFamily>, MacAddr>> statics;
  auto node = NodeParamsFromProto(config->node(), *uplink_mac, &statics);
  if (!node.ok()) return 2;

  std::unique_ptr<NetlinkMirror> mirror;  // started once the interface exists
  const auto next_hop = [&mirror](const IpAddr& a, IpFamily f) -> std::optional<IpAddr> {
    if (mirror == nullptr) return std::nullopt;
    return mirror->NextHop(a, f);
  };
  const auto static_mac = [&statics](const IpAddr& a, IpFamily f) -> std::optional<MacAddr> {
    for (const auto& [ip, mac] : statics) {
      if (ip.first == a && ip.second == f) return mac;
    }
    return std::nullopt;
  };
  const NeighborLookup lookup = [&](const IpAddr& a, IpFamily f,
                                    bool direct) -> std::optional<MacAddr> {
    if (std::optional<MacAddr> m = static_mac(a, f)) return m;
    if (mirror == nullptr) return std::nullopt;
    const std::optional<IpAddr> nh = next_hop(a, f);
    if (!nh || (direct && *nh != a)) return std::nullopt;  // DR needs the backend on-link
    if (std::optional<MacAddr> m = static_mac(*nh, f)) return m;
    return mirror->Neighbor(*nh, f);
  };
  // Full-NAT replies go to the default gateway unless the config names its MAC.
  const auto node_params = [&]() {
    NodeParams n = *node;
    for (auto [family, has, mac] :
         {std::make_tuple(IpFamily::kIpv4, &n.has_gateway_mac4, &n.gateway_mac4),
          std::make_tuple(IpFamily::kIpv6, &n.has_gateway_mac6, &n.gateway_mac6)}) {
      if (*has || mirror == nullptr) continue;
      if (std::optional<MacAddr> m = lookup(IpAddr{}, family, false)) {
        *has = true;
        *mac = *m;
      }
    }
    return n;
  };

  std::mutex builder_mu;  // the builder runs under the controller's lock; the main loop reads it
  SnapshotBuilder builder;
  NodeController::Hooks hooks;
  hooks.build = [&](const v1::ServiceConfig& effective) {
    std::lock_guard<std::mutex> lock(builder_mu);
    return builder.Build(effective, node_params(), lookup);
  };
  StateStore store(config->state_dir().empty() ? "/var/lib/lbnode" : config->state_dir());
  if (absl::Status st = store.Init(); !st.ok()) {
    Log(LogLevel::kError, std::string(st.message()));
    return 1;
  }
  NodeController::Options copts;
  copts.node_name = config->node_name();
  if (copts.node_name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    copts.node_name = host;
  }
  copts.build_version = "lbnode " LBNODE_VERSION;
  if (config->watchdog_ms()) copts.watchdog_ms = config->watchdog_ms();
  // Health checks: probes leave through the exception interface (the node's kernel stack).
  NodeController* controller_ptr = nullptr;
  HealthChecker checker([&controller_ptr](const HealthChecker::Event& e) {
    if (controller_ptr == nullptr || e.new_state == HealthState::kUnknown) return;
    controller_ptr->OnHealth(e.key, e.new_healthy(), e.reason);
    Wake();
  });
  const std::string probe_interface =
      dpc.exception().empty()
          ? ""
          : (config->interface().name().empty() ? "lb0" : config->interface().name());
  hooks.on_config = [&checker, probe_interface](const v1::ServiceConfig& c) {
    if (absl::Status st = checker.SetTargets(HealthTargets(c, probe_interface)); !st.ok()) {
      Log(LogLevel::kError, absl::StrCat("health checks: ", st.message()));
    }
  };
  // Routing: lbnode renders BIRD's config and drives it over its control socket.
  std::unique_ptr<Announcer> announcer;
  if (config->routing().enabled()) {
    auto a = MakeAnnouncer(*config, store.dir());
    if (!a.ok()) {
      Log(LogLevel::kError, std::string(a.status().message()));
      return 2;
    }
    announcer = *std::move(a);
    hooks.apply_routes = [&announcer](const std::vector<std::string>& prefixes) {
      return announcer->Apply(prefixes);
    };
    hooks.exported_routes = [&announcer] { return announcer->AnnouncedPrefixes(); };
    hooks.routing_status = [&announcer] {
      const RoutingStatus rs = announcer->Status();
      v1::RoutingStatus out;
      out.set_bird_reachable(rs.bird_reachable);
      out.set_bird_error(rs.error);
      for (const BirdProtocol& p : rs.protocols) {
        out.add_protocols(absl::StrCat(p.name, " ", p.proto, " ", p.state, " ", p.since,
                                       p.info.empty() ? "" : " ", p.info));
      }
      for (const OspfNeighbor& n : rs.neighbors) {
        out.add_neighbors(absl::StrCat(n.protocol, " ", n.router_id, " ", n.state,
                                       n.role.empty() ? "" : "/", n.role, " via ", n.address,
                                       " on ", n.interface));
      }
      return out;
    };
  }
  NodeController controller(copts, &store, hooks);
  controller_ptr = &controller;
  auto snap = controller.Restore(config->services());
  if (!snap.ok()) {
    Log(LogLevel::kError, std::string(snap.status().message()));
    return 2;
  }
  DataplaneOptions opts;
  opts.uplink = dpc.uplink();
  opts.exception = dpc.exception();
  if (dpc.workers()) opts.workers = dpc.workers();
  if (dpc.conn_table_size()) opts.conn_table_size = dpc.conn_table_size();
  if (dpc.mbufs()) opts.mbufs = dpc.mbufs();
  opts.busy_poll = dpc.busy_poll();
  auto dp = Dataplane::Start(opts, *snap);
  if (!dp.ok()) {
    Log(LogLevel::kError, std::string(dp.status().message()));
    return 1;
  }
  controller.Attach(dp->get());
  const v1::ServiceConfig running = controller.GetConfig();
  Log(LogLevel::kInfo,
      absl::StrCat("dataplane up: uplink ", opts.uplink, " (", MacToString(*uplink_mac),
                   "), exception ", opts.exception.empty() ? "none" : opts.exception, ", ",
                   opts.workers, " worker(s), ", running.vips_size(), " VIP(s), config version ",
                   running.version()));

  if (!opts.exception.empty()) {
    InterfaceSpec spec;
    spec.name = config->interface().name().empty() ? "lb0" : config->interface().name();
    spec.mac = *uplink_mac;
    spec.mtu = config->interface().mtu() ? config->interface().mtu() : 1500;
    spec.addresses.assign(config->interface().addresses().begin(),
                          config->interface().addresses().end());
    if (absl::Status st = SetUpInterface(spec); !st.ok()) {
      Log(LogLevel::kError, absl::StrCat("exception interface: ", st.message()));
      return 1;
    }
    auto m = NetlinkMirror::Start(spec.name, [] { Wake(); });
    if (!m.ok()) {
      Log(LogLevel::kError, absl::StrCat("netlink mirror: ", m.status().message()));
      return 1;
    }
    {
      std::lock_guard<std::mutex> lock(builder_mu);
      mirror = *std::move(m);
    }
    Log(LogLevel::kInfo, absl::StrCat("exception interface ", spec.name, " up: mtu ", spec.mtu,
                                      ", addresses ", absl::StrJoin(spec.addresses, " ")));
  }

  ApiService api(&controller);
  auto server = StartApiServer(config->api(), &api);
  if (!server.ok()) {
    Log(LogLevel::kError, std::string(server.status().message()));
    return 1;
  }
  std::unique_ptr<MetricsServer> metrics;
  if (!config->metrics().listen().empty()) {
    auto m = MetricsServer::Start(config->metrics().listen(), &controller);
    if (!m.ok()) {
      Log(LogLevel::kError, std::string(m.status().message()));
      return 1;
    }
    metrics = *std::move(m);
    Log(LogLevel::kInfo,
        absl::StrCat("metrics on http://", config->metrics().listen(), "/metrics"));
  }

  uint64_t mirror_generation = ~0ull;
  auto last_stats = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock<std::mutex> lock(g_mu);
      g_cv.wait_for(lock, std::chrono::milliseconds(200), [] { return g_wake; });
      g_wake = false;
    }
    const unsigned sigs = g_signals.exchange(0);
    if (sigs & ((1u << SIGTERM) | (1u << SIGINT))) break;
    if (sigs & (1u << SIGUSR2)) {
      if (fault_injection) {
        Log(LogLevel::kWarning, "fault injection (SIGUSR2): worker 0 stalls for 3 s");
        (*dp)->StallWorker(0, 3000);
      } else {
        Log(LogLevel::kWarning, "SIGUSR2 ignored (fault injection is off)");
      }
    }
    if (sigs & (1u << SIGUSR1)) {
      Log(LogLevel::kInfo, FormatCounters((*dp)->Collect(), *(*dp)->current()));
    }
    if (config->stats_interval_s() != 0 && std::chrono::steady_clock::now() - last_stats >
                                               std::chrono::seconds(config->stats_interval_s())) {
      last_stats = std::chrono::steady_clock::now();
      Log(LogLevel::kInfo, FormatCounters((*dp)->Collect(), *(*dp)->current()));
    }
    controller.Tick();
    if (mirror == nullptr) continue;
    // Next hops resolve or change in the kernel: rebuild and republish.
    if (mirror->generation() != mirror_generation) {
      mirror_generation = mirror->generation();
      controller.Rebuild();
    }
    // Ask the kernel to resolve what is still missing (rate-limited by the mirror).
    std::vector<std::pair<IpAddr, IpFamily>> unresolved;
    {
      std::lock_guard<std::mutex> lock(builder_mu);
      unresolved = builder.unresolved();
    }
    for (const auto& [addr, family] : unresolved) {
      if (std::optional<IpAddr> nh = next_hop(addr, family)) mirror->Resolve(*nh, family);
    }
  }
  Log(LogLevel::kInfo, "stopping: withdrawing routes first");
  controller.WithdrawAllForShutdown();
  if (config->routing().enabled()) {
    // Keep forwarding while the routers move the flows away (they still send here until their
    // route changes: BIRD routers compute routes on a 1 s tick).
    const uint32_t grace = config->shutdown_grace_ms() ? config->shutdown_grace_ms() : 2000;
    Log(LogLevel::kInfo, absl::StrCat("forwarding ", grace, " ms more while routers converge"));
    std::this_thread::sleep_for(std::chrono::milliseconds(grace));
  }
  api.Shutdown();
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  Log(LogLevel::kDebug, "API server stopped");
  metrics.reset();
  checker.Stop();
  Log(LogLevel::kInfo, "stopping the dataplane");
  {
    std::lock_guard<std::mutex> lock(builder_mu);
    mirror.reset();
  }
  (*dp)->StopAndClose();
  Log(LogLevel::kInfo, FormatCounters((*dp)->Collect(), *(*dp)->current()));
  dp->reset();
  return 0;
}

}  // namespace
}  // namespace lb

int main(int argc, char** argv) {
  CLI::App app{
      "lbnode: anycast L4 load-balancer node (DPDK dataplane, Maglev, DR/TUN/GUE/full NAT).\n"
      "Reads a text-format lb.v1.NodeConfig; deploy/lbnode.example.textproto documents one."};
  app.footer(
      "Serves the gRPC API (lb.v1.LoadBalancer; lbctl) on api.unix_socket, /metrics on\n"
      "metrics.listen, and drives BIRD when routing.enabled. The desired state lives in\n"
      "state_dir and wins over the file's services once saved.\n"
      "Signals: SIGTERM/SIGINT withdraw every route, keep forwarding shutdown_grace_ms, then\n"
      "stop; SIGUSR1 logs every counter. Exit codes: 0 clean stop, 1 runtime failure (EAL,\n"
      "ports, sockets), 2 bad configuration or saved state.");
  std::string config;
  bool check = false;
  app.add_option("-c,--config", config, "configuration file (text format of lb.v1.NodeConfig)")
      ->required();
  app.add_flag("--check", check, "validate the configuration file and exit");
  bool fault_injection = false;
  app.add_flag("--fault-injection", fault_injection,
               "tests only: SIGUSR2 makes worker 0 stall for 3 s (the watchdog must withdraw)");
  CLI11_PARSE(app, argc, argv);
  lb::InstallSignalHandlers();  // before the EAL starts threads, so none dies of SIGUSR1
  const int rc = lb::Run(config, check, fault_injection);
  lb::CleanupEal();  // also after a failure once the EAL was up
  return rc;
}
