// lbctl: command-line client of lbnode's gRPC API (lb.v1.LoadBalancer). Every RPC has a
// command; output is a human-readable table, or JSON with --json. --target may be given several
// times to act on a fleet: the command runs against each node in turn.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "lb/v1/service.grpc.pb.h"

namespace {

using lb::v1::LoadBalancer;

// Exit codes (also in --help).
constexpr int kExitOk = 0;
constexpr int kExitRpcError = 1;     // the node refused the request (bad argument, not found...)
constexpr int kExitUsage = 2;        // bad command line or input file
constexpr int kExitUnreachable = 3;  // a node could not be reached (UNAVAILABLE, deadline)

struct Globals {
  std::vector<std::string> targets;
  bool json = false;
  double timeout_s = 10;
  std::string tls_ca, tls_cert, tls_key;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::shared_ptr<grpc::Channel> Channel(const Globals& g, const std::string& target) {
  if (target.rfind("unix:", 0) == 0 || target.front() == '/') {
    const std::string t = target.front() == '/' ? "unix:" + target : target;
    return grpc::CreateChannel(t, grpc::InsecureChannelCredentials());
  }
  if (g.tls_ca.empty()) {
    throw UsageError("--target " + target +
                     ": TCP targets need TLS (--tls-ca, and --tls-cert/--tls-key for mutual TLS)");
  }
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadFile(g.tls_ca);
  if (!g.tls_cert.empty()) o.pem_cert_chain = ReadFile(g.tls_cert);
  if (!g.tls_key.empty()) o.pem_private_key = ReadFile(g.tls_key);
  return grpc::CreateChannel(target, grpc::SslCredentials(o));
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Parses "10.0.0.1:80/tcp", "[2001:db8::1]:443", "10.0.0.1" (all ports), "10.0.0.1:53/udp".
lb::v1::VipKey ParseVip(const std::string& text) {
  lb::v1::VipKey k;
  std::string s = text;
  k.set_protocol(lb::v1::PROTOCOL_TCP);
  if (size_t slash = s.rfind('/'); slash != std::string::npos) {
    const std::string proto = s.substr(slash + 1);
    if (proto == "tcp") {
      k.set_protocol(lb::v1::PROTOCOL_TCP);
    } else if (proto == "udp") {
      k.set_protocol(lb::v1::PROTOCOL_UDP);
    } else {
      throw UsageError("VIP " + text + ": protocol must be tcp or udp");
    }
    s = s.substr(0, slash);
  }
  std::string addr = s, port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos) throw UsageError("VIP " + text + ": missing ']'");
    addr = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') throw UsageError("VIP " + text + ": expected ':' after ']'");
      port = s.substr(close + 2);
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    addr = s.substr(0, s.find(':'));
    port = s.substr(s.find(':') + 1);
  }
  uint32_t p = 0;
  if (!port.empty() && (!absl::SimpleAtoi(port, &p) || p > 65535)) {
    throw UsageError("VIP " + text + ": bad port \"" + port + "\"");
  }
  k.set_address(addr);
  k.set_port(p);
  return k;
}

std::string VipText(const lb::v1::VipKey& k) {
  const bool v6 = k.address().find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", k.address(), v6 ? "]" : "", ":", k.port(), "/",
                      k.protocol() == lb::v1::PROTOCOL_UDP ? "udp" : "tcp");
}

lb::v1::VipKey KeyOf(const lb::v1::Vip& v) {
  lb::v1::VipKey k;
  k.set_address(v.address());
  k.set_port(v.port());
  k.set_protocol(v.protocol());
  return k;
}

lb::v1::ForwardingMode ParseMode(const std::string& m) {
  if (m == "dr") return lb::v1::FORWARDING_MODE_DR;
  if (m == "tun") return lb::v1::FORWARDING_MODE_TUN;
  if (m == "gue") return lb::v1::FORWARDING_MODE_GUE;
  if (m == "nat") return lb::v1::FORWARDING_MODE_NAT;
  throw UsageError("--mode " + m + ": must be dr, tun, gue or nat");
}

std::string ModeName(lb::v1::ForwardingMode m) {
  switch (m) {
    case lb::v1::FORWARDING_MODE_DR:
      return "dr";
    case lb::v1::FORWARDING_MODE_TUN:
      return "tun";
    case lb::v1::FORWARDING_MODE_GUE:
      return "gue";
    case lb::v1::FORWARDING_MODE_NAT:
      return "nat";
    default:
      return "?";
  }
}

lb::v1::BackendState ParseState(const std::string& s) {
  if (s == "active") return lb::v1::BACKEND_STATE_ACTIVE;
  if (s == "draining") return lb::v1::BACKEND_STATE_DRAINING;
  if (s == "down") return lb::v1::BACKEND_STATE_DOWN;
  throw UsageError("--state " + s + ": must be active, draining or down");
}

std::string StateName(lb::v1::BackendState s) {
  switch (s) {
    case lb::v1::BACKEND_STATE_DRAINING:
      return "draining";
    case lb::v1::BACKEND_STATE_DOWN:
      return "down";
    default:
      return "active";
  }
}

std::string Time(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%H:%M:%E3S", absl::FromUnixMillis(unix_ms), absl::LocalTimeZone());
}

// A table printed with aligned columns.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const {
    std::vector<size_t> width;
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size(); ++i) {
        if (width.size() <= i) width.push_back(0);
        width[i] = std::max(width[i], r[i].size());
      }
    }
    std::string out;
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
      }
      out += line + "\n";
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Result of one RPC against one target.
struct Outcome {
  grpc::Status status;
  std::string text;  // human or JSON rendering of the response
};

using Call = std::function<Outcome(LoadBalancer::Stub&, const Globals&)>;

std::unique_ptr<grpc::ClientContext> Ctx(const Globals& g) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(g.timeout_s * 1000)));
  return ctx;
}

template <typename Resp>
Outcome Render(const grpc::Status& st, const Resp& resp, const Globals& g,
               const std::function<std::string(const Resp&)>& human) {
  if (!st.ok()) return {st, ""};
  return {st, g.json ? ToJson(resp) : human(resp)};
}

const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    default:
      return "ERROR";
  }
}

// Runs `call` on every target; prints results; returns the exit code.
int RunAll(const Globals& g, const Call& call) {
  int rc = kExitOk;
  const bool many = g.targets.size() > 1;
  if (g.json && many) std::cout << "[\n";
  for (size_t i = 0; i < g.targets.size(); ++i) {
    const std::string& t = g.targets[i];
    Outcome o;
    try {
      auto stub = LoadBalancer::NewStub(Channel(g, t));
      o = call(*stub, g);
    } catch (const UsageError& e) {
      std::cerr << "lbctl: " << e.what() << "\n";
      return kExitUsage;
    }
    if (!o.status.ok()) {
      const bool unreachable = o.status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                               o.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      rc = std::max(rc, unreachable ? kExitUnreachable : kExitRpcError);
      std::cerr << "lbctl: " << t << ": " << CodeName(o.status.error_code()) << ": "
                << o.status.error_message() << "\n";
      if (g.json && many) {
        std::cout << "  {\"target\": \"" << t << "\", \"error\": \""
                  << CodeName(o.status.error_code()) << "\"}"
                  << (i + 1 < g.targets.size() ? "," : "") << "\n";
      }
      continue;
    }
    if (g.json && many) {
      std::cout << "  {\"target\": \"" << t << "\", \"response\": " << o.text << "}"
                << (i + 1 < g.targets.size() ? "," : "") << "\n";
    } else {
      if (many) std::cout << "== " << t << "\n";
      std::cout << o.text;
      if (!o.text.empty() && o.text.back() != '\n') std::cout << "\n";
    }
  }
  if (g.json && many) std::cout << "]\n";
  return rc;
}

std::string VersionLine(uint64_t v) { return absl::StrCat("ok: config version ", v, "\n"); }

std::string RenderStatus(const lb::v1::GetStatusResponse& s) {
  std::string out;
  absl::StrAppend(&out, "node:            ", s.node_name(), " (", s.version(), ")\n");
  absl::StrAppend(&out, "dataplane:       ", s.dataplane_up() ? "up" : "DOWN", ", ",
                  s.workers_size(), " worker(s)");
  for (const auto& w : s.workers()) {
    absl::StrAppend(&out, " [", w.id(), ": ", w.alive() ? "alive" : "STUCK", "]");
  }
  absl::StrAppend(&out, "\nconfig version:  ", s.config_version(), "\n");
  absl::StrAppend(&out, "health checks:   ",
                  s.health_checks_ready() ? "ready" : "waiting for first verdicts", "\n");
  absl::StrAppend(&out, "drained:         ", s.node_drained() ? "yes" : "no", "\n");
  if (s.node_drained()) {
    const auto& d = s.drain();
    absl::StrAppend(
        &out, "  drain:         requested ", Time(d.requested_at_unix_ms()), ", routes withdrawn ",
        Time(d.withdrawn_at_unix_ms()), ", ", d.connections_open(), " connection(s) open",
        d.connections_zero_at_unix_ms() ? ", zero at " + Time(d.connections_zero_at_unix_ms()) : "",
        d.timed_out() ? ", TIMED OUT" : "", "\n");
  }
  absl::StrAppend(&out, "announced:       ",
                  s.announced_vips().empty() ? "(none)" : absl::StrJoin(s.announced_vips(), " "),
                  "\n");
  const auto& r = s.routing();
  absl::StrAppend(&out,
                  "routing:         ", r.bird_reachable() ? "BIRD reachable" : "BIRD not reachable",
                  r.bird_error().empty() ? "" : " (" + r.bird_error() + ")", "\n");
  for (const auto& p : r.protocols()) absl::StrAppend(&out, "  protocol ", p, "\n");
  for (const auto& n : r.neighbors()) absl::StrAppend(&out, "  neighbor ", n, "\n");
  return out;
}

std::string RenderVips(const lb::v1::ListVipsResponse& r) {
  if (r.vips().empty()) return "no VIPs\n";
  std::string out;
  Table vt({"VIP", "MODE", "ANNOUNCE", "REASON", "DRAINED", "HEALTHY", "BACKENDS"});
  for (const auto& v : r.vips()) {
    std::string ann = lb::v1::AnnounceState_Name(v.announce_state());
    ann = ann.substr(std::string("ANNOUNCE_STATE_").size());
    vt.Add({VipText(KeyOf(v.vip())), ModeName(v.vip().mode()), ann, v.withdraw_reason(),
            v.drained() ? "yes" : "no", absl::StrCat(v.healthy_backends()),
            absl::StrCat(v.backends_size())});
  }
  out += vt.Render();
  Table bt({"VIP", "BACKEND", "WEIGHT", "STATE", "HEALTH", "IN MAGLEV", "LAST ERROR"});
  for (const auto& v : r.vips()) {
    for (const auto& b : v.backends()) {
      bt.Add({VipText(KeyOf(v.vip())), b.backend().address(),
              absl::StrCat(b.backend().has_weight() ? b.backend().weight() : 1),
              StateName(b.backend().state()),
              !b.checked()  ? "unchecked"
              : b.healthy() ? "healthy"
                            : "UNHEALTHY",
              b.in_maglev() ? "yes" : "no", b.last_error()});
    }
  }
  out += "\n" + bt.Render();
  return out;
}

std::string RenderStats(const lb::v1::GetStatsResponse& r) {
  std::string out;
  Table vt({"VIP", "BACKEND", "PACKETS", "BYTES", "CONNECTIONS", "HEALTH"});
  for (const auto& v : r.vips()) {
    vt.Add({VipText(v.vip()), "*", absl::StrCat(v.traffic().packets()),
            absl::StrCat(v.traffic().bytes()), absl::StrCat(v.connections()), ""});
    for (const auto& b : v.backends()) {
      vt.Add({"", b.address(), absl::StrCat(b.traffic().packets()),
              absl::StrCat(b.traffic().bytes()), "", b.healthy() ? "healthy" : "UNHEALTHY"});
    }
  }
  out += vt.Render();
  absl::StrAppend(&out, "\nconnection tables: ", r.conn_table_live(), " live of ",
                  r.conn_table_capacity(), "\n");
  std::string counters;
  for (const auto& [k, v] : r.counters()) {
    if (v) absl::StrAppend(&counters, " ", k, "=", v);
  }
  absl::StrAppend(&out, "counters:", counters.empty() ? " (all zero)" : counters, "\n");
  std::string drops;
  for (const auto& [k, v] : r.drops()) {
    if (v) absl::StrAppend(&drops, " ", k, "=", v);
  }
  absl::StrAppend(&out, "drops:", drops.empty() ? " none" : drops, "\n");
  std::string workers;
  for (const auto& w : r.workers()) absl::StrAppend(&workers, " ", w.id(), ":", w.rx_packets());
  absl::StrAppend(&out, "rx per worker:", workers, "\n");
  return out;
}

std::string RenderReport(const lb::v1::DrainReport& d) {
  return absl::StrCat(
      "drained: requested ", Time(d.requested_at_unix_ms()), ", routes withdrawn ",
      Time(d.withdrawn_at_unix_ms()), ", ", d.connections_open(), " connection(s) open",
      d.connections_zero_at_unix_ms() ? ", zero at " + Time(d.connections_zero_at_unix_ms()) : "",
      d.timed_out() ? ", TIMED OUT" : "", "\n");
}

std::string RenderEvent(const lb::v1::Event& e) {
  std::string kind = lb::v1::Event_Kind_Name(e.kind());
  if (kind.rfind("KIND_", 0) == 0) kind = kind.substr(5);
  return absl::StrCat(Time(e.unix_ms()), " ", kind, e.has_vip() ? " " + VipText(e.vip()) : "", " ",
                      e.message());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lbctl: drive lbnode nodes through their gRPC API (lb.v1.LoadBalancer)."};
  app.footer(
      "VIPs are written ADDRESS[:PORT][/tcp|/udp]: 10.0.0.1:80/tcp, [2001:db8::1]:443, "
      "10.0.0.1:0/udp (port 0 or none = all ports; protocol default tcp).\n"
      "Targets: unix:/path or /path (Unix socket), or host:port (TLS: --tls-ca, and --tls-cert "
      "--tls-key for mutual TLS). Default unix:/run/lbnode/lbnode.sock.\n"
      "Exit codes: 0 ok; 1 a node refused the request (INVALID_ARGUMENT, NOT_FOUND, "
      "ALREADY_EXISTS, FAILED_PRECONDITION, RESOURCE_EXHAUSTED...); 2 usage error; 3 a node "
      "could not be reached (UNAVAILABLE, DEADLINE_EXCEEDED). With several targets, the worst.");
  app.require_subcommand(1);
  Globals g;
  app.add_option("-t,--target", g.targets, "node API address; repeat for a fleet");
  app.add_flag("--json", g.json, "print JSON (protobuf field names) instead of tables");
  app.add_option("--timeout", g.timeout_s, "seconds per RPC (default 10)");
  app.add_option("--tls-ca", g.tls_ca, "PEM CA that signed the nodes' certificates");
  app.add_option("--tls-cert", g.tls_cert, "PEM client certificate (mutual TLS)");
  app.add_option("--tls-key", g.tls_key, "PEM client key (mutual TLS)");

  Call call;
  std::atomic<bool> watch_mode{false};

  // status
  app.add_subcommand("status", "node status: dataplane, workers, routing, drain, config version")
      ->callback([&] {
        call = [](LoadBalancer::Stub& s, const Globals& g) {
          lb::v1::GetStatusResponse r;
          auto ctx = Ctx(g);
          auto st = s.GetStatus(ctx.get(), {}, &r);
          return Render<lb::v1::GetStatusResponse>(st, r, g, RenderStatus);
        };
      });

  // vip
  auto* vip = app.add_subcommand("vip", "create, delete or list VIPs");
  vip->require_subcommand(1);
  vip->add_subcommand("list", "VIPs with announce state and backend health")->callback([&] {
    call = [](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::ListVipsResponse r;
      auto ctx = Ctx(g);
      auto st = s.ListVips(ctx.get(), {}, &r);
      return Render<lb::v1::ListVipsResponse>(st, r, g, RenderVips);
    };
  });
  struct CreateArgs {
    std::string vip, mode = "tun", check = "none", check_path, check_host;
    uint32_t table_size = 0, check_port = 0, check_status = 0, interval_ms = 0, timeout_ms = 0,
             rise = 0, fall = 0;
    std::vector<std::string> backends;
  } ca;
  auto* create = vip->add_subcommand("create", "create a VIP (optionally with its backends)");
  create->add_option("vip", ca.vip, "ADDRESS[:PORT][/tcp|/udp]")->required();
  create->add_option("--mode", ca.mode, "dr, tun, gue or nat (default tun)");
  create->add_option("--table-size", ca.table_size, "Maglev table size, prime (default 65537)");
  create->add_option("-b,--backend", ca.backends,
                     "backend ADDRESS[,weight[,port]]; repeat for several");
  create->add_option("--check", ca.check, "health check: none, tcp or http (default none)");
  create->add_option("--check-port", ca.check_port, "port probed (default the service port)");
  create->add_option("--check-path", ca.check_path, "HTTP path (default /)");
  create->add_option("--check-host", ca.check_host, "HTTP Host header");
  create->add_option("--check-status", ca.check_status, "expected HTTP status (default 2xx/3xx)");
  create->add_option("--interval-ms", ca.interval_ms, "probe interval (default 2000)");
  create->add_option("--timeout-ms", ca.timeout_ms, "probe timeout (default 1000)");
  create->add_option("--rise", ca.rise, "successes to become healthy (default 2)");
  create->add_option("--fall", ca.fall, "failures to become unhealthy (default 3)");
  create->callback([&] {
    lb::v1::CreateVipRequest req;
    const lb::v1::VipKey k = ParseVip(ca.vip);
    lb::v1::Vip* v = req.mutable_vip();
    v->set_address(k.address());
    v->set_port(k.port());
    v->set_protocol(k.protocol());
    v->set_mode(ParseMode(ca.mode));
    v->set_maglev_table_size(ca.table_size);
    for (const std::string& b : ca.backends) {
      std::vector<std::string> parts = absl::StrSplit(b, ',');
      lb::v1::Backend* be = v->add_backends();
      be->set_address(parts[0]);
      uint32_t n = 0;
      if (parts.size() > 1) {
        if (!absl::SimpleAtoi(parts[1], &n)) throw UsageError("--backend " + b + ": bad weight");
        be->set_weight(n);
      }
      if (parts.size() > 2) {
        if (!absl::SimpleAtoi(parts[2], &n)) throw UsageError("--backend " + b + ": bad port");
        be->set_port(n);
      }
    }
    lb::v1::HealthCheck* hc = v->mutable_health_check();
    if (ca.check == "none") {
      hc->set_type(lb::v1::HealthCheck::TYPE_NONE);
    } else if (ca.check == "tcp") {
      hc->set_type(lb::v1::HealthCheck::TYPE_TCP);
    } else if (ca.check == "http") {
      hc->set_type(lb::v1::HealthCheck::TYPE_HTTP);
    } else {
      throw UsageError("--check " + ca.check + ": must be none, tcp or http");
    }
    hc->set_port(ca.check_port);
    hc->set_path(ca.check_path);
    hc->set_host(ca.check_host);
    hc->set_expected_status(ca.check_status);
    hc->set_interval_ms(ca.interval_ms);
    hc->set_timeout_ms(ca.timeout_ms);
    hc->set_rise(ca.rise);
    hc->set_fall(ca.fall);
    call = [req](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::CreateVipResponse r;
      auto ctx = Ctx(g);
      auto st = s.CreateVip(ctx.get(), req, &r);
      return Render<lb::v1::CreateVipResponse>(
          st, r, g, [](const auto& r) { return VersionLine(r.version()); });
    };
  });
  std::string del_vip;
  auto* del = vip->add_subcommand("delete", "delete a VIP");
  del->add_option("vip", del_vip, "ADDRESS[:PORT][/tcp|/udp]")->required();
  del->callback([&] {
    lb::v1::DeleteVipRequest req;
    *req.mutable_vip() = ParseVip(del_vip);
    call = [req](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::DeleteVipResponse r;
      auto ctx = Ctx(g);
      auto st = s.DeleteVip(ctx.get(), req, &r);
      return Render<lb::v1::DeleteVipResponse>(
          st, r, g, [](const auto& r) { return VersionLine(r.version()); });
    };
  });

  // backend
  auto* backend = app.add_subcommand("backend", "add, remove or update a VIP's backends");
  backend->require_subcommand(1);
  struct BackendArgs {
    std::string vip, address, state;
    std::optional<uint32_t> weight;
    uint32_t port = 0;
  } ba;
  auto* badd = backend->add_subcommand("add", "add a backend to a VIP");
  badd->add_option("vip", ba.vip, "ADDRESS[:PORT][/tcp|/udp]")->required();
  badd->add_option("address", ba.address, "backend address")->required();
  badd->add_option("--weight", ba.weight, "relative share of new flows (default 1)");
  badd->add_option("--state", ba.state, "active, draining or down (default active)");
  badd->add_option("--port", ba.port, "full NAT: the backend's port");
  badd->callback([&] {
    lb::v1::AddBackendRequest req;
    *req.mutable_vip() = ParseVip(ba.vip);
    req.mutable_backend()->set_address(ba.address);
    if (ba.weight) req.mutable_backend()->set_weight(*ba.weight);
    if (!ba.state.empty()) req.mutable_backend()->set_state(ParseState(ba.state));
    req.mutable_backend()->set_port(ba.port);
    call = [req](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::AddBackendResponse r;
      auto ctx = Ctx(g);
      auto st = s.AddBackend(ctx.get(), req, &r);
      return Render<lb::v1::AddBackendResponse>(
          st, r, g, [](const auto& r) { return VersionLine(r.version()); });
    };
  });
  auto* brm = backend->add_subcommand("remove", "remove a backend from a VIP");
  brm->add_option("vip", ba.vip, "ADDRESS[:PORT][/tcp|/udp]")->required();
  brm->add_option("address", ba.address, "backend address")->required();
  brm->callback([&] {
    lb::v1::RemoveBackendRequest req;
    *req.mutable_vip() = ParseVip(ba.vip);
    req.set_address(ba.address);
    call = [req](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::RemoveBackendResponse r;
      auto ctx = Ctx(g);
      auto st = s.RemoveBackend(ctx.get(), req, &r);
      return Render<lb::v1::RemoveBackendResponse>(
          st, r, g, [](const auto& r) { return VersionLine(r.version()); });
    };
  });
  auto* bup = backend->add_subcommand("update", "change a backend's weight and/or state");
  bup->add_option("vip", ba.vip, "ADDRESS[:PORT][/tcp|/udp]")->required();
  bup->add_option("address", ba.address, "backend address")->required();
  bup->add_option("--weight", ba.weight, "relative share of new flows");
  bup->add_option("--state", ba.state, "active, draining or down");
  bup->callback([&] {
    lb::v1::UpdateBackendRequest req;
    *req.mutable_vip() = ParseVip(ba.vip);
    req.set_address(ba.address);
    if (ba.weight) req.set_weight(*ba.weight);
    if (!ba.state.empty()) req.set_state(ParseState(ba.state));
    call = [req](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::UpdateBackendResponse r;
      auto ctx = Ctx(g);
      auto st = s.UpdateBackend(ctx.get(), req, &r);
      return Render<lb::v1::UpdateBackendResponse>(
          st, r, g, [](const auto& r) { return VersionLine(r.version()); });
    };
  });

  // apply / config
  struct ApplyArgs {
    std::string file;
    bool dry_run = false, force = false;
  } aa;
  auto* apply = app.add_subcommand(
      "apply",
      "replace the whole service config with FILE (text format of lb.v1.ServiceConfig, "
      "or JSON if the name ends in .json); idempotent");
  apply->add_option("file", aa.file, "config file")->required()->check(CLI::ExistingFile);
  apply->add_flag("--dry-run", aa.dry_run, "validate and show what would change; change nothing");
  apply->add_flag("--force", aa.force, "accept a version older than the node's (rollback)");
  apply->callback([&] {
    lb::v1::ApplyConfigRequest req;
    const std::string text = ReadFile(aa.file);
    if (aa.file.size() > 5 && aa.file.substr(aa.file.size() - 5) == ".json") {
      auto st = google::protobuf::util::JsonStringToMessage(text, req.mutable_config());
      if (!st.ok()) throw UsageError(aa.file + ": " + st.ToString());
    } else if (!google::protobuf::TextFormat::ParseFromString(text, req.mutable_config())) {
      throw UsageError(aa.file + ": not a text-format lb.v1.ServiceConfig (see stderr above)");
    }
    req.set_dry_run(aa.dry_run);
    req.set_force(aa.force);
    call = [req](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::ApplyConfigResponse r;
      auto ctx = Ctx(g);
      auto st = s.ApplyConfig(ctx.get(), req, &r);
      return Render<lb::v1::ApplyConfigResponse>(st, r, g, [&req](const auto& r) {
        std::string out =
            absl::StrCat(req.dry_run() ? "dry run: " : "", r.changed() ? "changed" : "unchanged",
                         ", version ", r.version(), "\n");
        for (const auto& v : r.vips_added()) absl::StrAppend(&out, "  + ", v, "\n");
        for (const auto& v : r.vips_removed()) absl::StrAppend(&out, "  - ", v, "\n");
        for (const auto& v : r.vips_changed()) absl::StrAppend(&out, "  ~ ", v, "\n");
        return out;
      });
    };
  });
  auto* config = app.add_subcommand("config", "show the node's service config");
  config->add_subcommand("get", "print the service config (text format; JSON with --json)")
      ->callback([&] {
        call = [](LoadBalancer::Stub& s, const Globals& g) {
          lb::v1::GetConfigResponse r;
          auto ctx = Ctx(g);
          auto st = s.GetConfig(ctx.get(), {}, &r);
          if (!st.ok()) return Outcome{st, ""};
          if (g.json) return Outcome{st, ToJson(r.config())};
          std::string text;
          google::protobuf::TextFormat::PrintToString(r.config(), &text);
          return Outcome{st, text};
        };
      });
  config->require_subcommand(1);

  // drain / undrain
  struct DrainArgs {
    std::string vip;
    bool wait = false;
    uint32_t timeout_s = 0;
  } da;
  auto* drain = app.add_subcommand(
      "drain",
      "withdraw the node's routes (or one VIP's with --vip); established connections "
      "keep flowing. --wait follows the drain until connections reach zero");
  drain->add_option("--vip", da.vip, "drain only this VIP");
  drain->add_flag("--wait", da.wait, "poll and print progress until done or timed out");
  drain->add_option("--timeout", da.timeout_s, "seconds to wait for connections (default 300)");
  drain->callback([&] {
    const bool one = !da.vip.empty();
    const lb::v1::VipKey key = one ? ParseVip(da.vip) : lb::v1::VipKey();
    const DrainArgs args = da;
    call = [one, key, args](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::DrainReport report;
      grpc::Status st;
      auto ctx = Ctx(g);
      if (one) {
        lb::v1::DrainVipRequest req;
        *req.mutable_vip() = key;
        req.set_timeout_s(args.timeout_s);
        lb::v1::DrainVipResponse r;
        st = s.DrainVip(ctx.get(), req, &r);
        report = r.report();
      } else {
        lb::v1::DrainNodeRequest req;
        req.set_timeout_s(args.timeout_s);
        lb::v1::DrainNodeResponse r;
        st = s.DrainNode(ctx.get(), req, &r);
        report = r.report();
      }
      if (!st.ok() || !args.wait) {
        return Render<lb::v1::DrainReport>(st, report, g, RenderReport);
      }
      // Follow progress through GetStatus / ListVips.
      std::string last;
      while (true) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        auto c = Ctx(g);
        if (one) {
          lb::v1::ListVipsResponse r;
          st = s.ListVips(c.get(), {}, &r);
          if (!st.ok()) return Outcome{st, ""};
          for (const auto& v : r.vips()) {
            if (VipText(KeyOf(v.vip())) == VipText(key) && v.drained()) report = v.drain();
          }
        } else {
          lb::v1::GetStatusResponse r;
          st = s.GetStatus(c.get(), {}, &r);
          if (!st.ok()) return Outcome{st, ""};
          report = r.drain();
        }
        if (!report.drained()) return Outcome{st, "drain cancelled (undrained)\n"};
        const std::string line = RenderReport(report);
        if (!g.json && line != last) std::cerr << line;
        last = line;
        if (report.connections_zero_at_unix_ms() != 0 || report.timed_out()) break;
      }
      return Render<lb::v1::DrainReport>(st, report, g, RenderReport);
    };
  });
  std::string undrain_vip;
  auto* undrain = app.add_subcommand("undrain", "announce again (the node, or one VIP)");
  undrain->add_option("--vip", undrain_vip, "undrain only this VIP");
  undrain->callback([&] {
    const bool one = !undrain_vip.empty();
    const lb::v1::VipKey key = one ? ParseVip(undrain_vip) : lb::v1::VipKey();
    call = [one, key](LoadBalancer::Stub& s, const Globals& g) {
      auto ctx = Ctx(g);
      grpc::Status st;
      if (one) {
        lb::v1::UndrainVipRequest req;
        *req.mutable_vip() = key;
        lb::v1::UndrainVipResponse r;
        st = s.UndrainVip(ctx.get(), req, &r);
      } else {
        lb::v1::UndrainNodeResponse r;
        st = s.UndrainNode(ctx.get(), {}, &r);
      }
      return Outcome{st, g.json ? "{}" : "ok: undrained\n"};
    };
  });

  // stats
  bool conns = false;
  auto* stats = app.add_subcommand("stats", "per-VIP and per-backend traffic, drops, counters");
  stats->add_flag("-c,--connections", conns,
                  "count live connections per VIP (scans the connection tables)");
  stats->callback([&] {
    const bool c = conns;
    call = [c](LoadBalancer::Stub& s, const Globals& g) {
      lb::v1::GetStatsRequest req;
      req.set_count_connections(c);
      lb::v1::GetStatsResponse r;
      auto ctx = Ctx(g);
      auto st = s.GetStats(ctx.get(), req, &r);
      return Render<lb::v1::GetStatsResponse>(st, r, g, RenderStats);
    };
  });

  // watch
  bool initial = false;
  double watch_for = 0;
  auto* watch = app.add_subcommand("watch",
                                   "stream events (health, announce/withdraw, config, "
                                   "drain, watchdog) until interrupted");
  watch->add_flag("--initial", initial, "first print the current state of every VIP and backend");
  watch->add_option("--for", watch_for, "stop after this many seconds (default: never)");
  watch->callback([&] { watch_mode = true; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  } catch (const UsageError& e) {
    std::cerr << "lbctl: " << e.what() << "\n";
    return kExitUsage;
  }
  if (g.targets.empty()) g.targets.push_back("unix:/run/lbnode/lbnode.sock");

  if (watch_mode) {
    // One stream per target, printed as events arrive, prefixed by the target when several.
    std::mutex out_mu;
    std::atomic<int> rc{kExitOk};
    std::vector<std::thread> threads;
    for (const std::string& t : g.targets) {
      threads.emplace_back([&, t] {
        std::shared_ptr<grpc::Channel> ch;
        try {
          ch = Channel(g, t);
        } catch (const UsageError& e) {
          std::lock_guard<std::mutex> lock(out_mu);
          std::cerr << "lbctl: " << e.what() << "\n";
          rc = kExitUsage;
          return;
        }
        auto stub = LoadBalancer::NewStub(ch);
        grpc::ClientContext ctx;
        if (watch_for > 0) {
          ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(static_cast<int64_t>(watch_for * 1000)));
        }
        lb::v1::WatchRequest req;
        req.set_initial_state(initial);
        auto reader = stub->Watch(&ctx, req);
        lb::v1::Event e;
        while (reader->Read(&e)) {
          std::lock_guard<std::mutex> lock(out_mu);
          if (g.json) {
            std::string line;
            google::protobuf::util::JsonPrintOptions o;
            o.preserve_proto_field_names = true;
            (void)google::protobuf::util::MessageToJsonString(e, &line, o);
            std::cout << line << std::endl;
          } else {
            std::cout << (g.targets.size() > 1 ? t + " " : "") << RenderEvent(e) << std::endl;
          }
        }
        const grpc::Status st = reader->Finish();
        if (!st.ok() && st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
          std::lock_guard<std::mutex> lock(out_mu);
          std::cerr << "lbctl: " << t << ": " << CodeName(st.error_code()) << ": "
                    << st.error_message() << "\n";
          rc = st.error_code() == grpc::StatusCode::UNAVAILABLE ? kExitUnreachable : kExitRpcError;
        }
      });
    }
    for (auto& th : threads) th.join();
    return rc;
  }
  return RunAll(g, call);
}
