// lb_health_probe: runs lbnode's HealthChecker against targets given on the command line and
// prints one line per state change, for operators checking what the node would see, and for the
// namespace test. Lines go to stdout, flushed at once; times are Unix seconds:
//   1764085801.123 event key=web4 unknown->healthy reason="first probe: HTTP 200"
//   1764085801.124 all_checked_once after 0.412 s
//   1764085809.000 status key=web4 state=healthy probes=17 failures=3 last_result="HTTP 200" ...
// The status lines come once, at exit (SIGINT, SIGTERM or --exit_after_s).
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "control/health_checker.h"

namespace lb {
namespace {

std::string Stamp(absl::Time t) {
  const int64_t ms = absl::ToUnixMillis(t);
  return absl::StrFormat("%d.%03d", ms / 1000, ms % 1000);
}

void Print(const std::string& line) {
  std::fputs((Stamp(absl::Now()) + " " + line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

std::string Quoted(const std::string& s) { return absl::StrCat("\"", absl::CEscape(s), "\""); }

// "KEY,TYPE,ADDRESS,PORT[,PATH]"
bool ParseTarget(const std::string& arg, const HealthCheckSpec& base, HealthChecker::Target* t) {
  const std::vector<std::string> f = absl::StrSplit(arg, ',');
  uint32_t port = 0;
  if (f.size() < 4 || f.size() > 5 || !absl::SimpleAtoi(f[3], &port) || port > 65535) return false;
  t->key = f[0];
  t->address = f[2];
  t->port = static_cast<uint16_t>(port);
  t->spec = base;
  if (f[1] == "tcp") {
    t->spec.type = HealthCheckType::kTcp;
  } else if (f[1] == "http") {
    t->spec.type = HealthCheckType::kHttp;
  } else if (f[1] == "none") {
    t->spec.type = HealthCheckType::kNone;
  } else {
    return false;
  }
  if (f.size() == 5) t->spec.http_path = f[4];
  return true;
}

int Run(const std::vector<std::string>& target_args, const HealthCheckSpec& base,
        double exit_after_s) {
  std::vector<HealthChecker::Target> targets;
  for (const std::string& arg : target_args) {
    HealthChecker::Target t;
    if (!ParseTarget(arg, base, &t)) {
      std::fprintf(stderr, "bad --target %s: want KEY,tcp|http|none,ADDRESS,PORT[,PATH]\n",
                   arg.c_str());
      return 2;
    }
    targets.push_back(std::move(t));
  }

  // Blocked before the checker starts its thread, so only sigtimedwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  HealthChecker checker([](const HealthChecker::Event& e) {
    Print(absl::StrCat("event key=", e.key, " ", HealthStateName(e.old_state), "->",
                       HealthStateName(e.new_state), " reason=", Quoted(e.reason)));
  });
  const absl::Time start = absl::Now();
  if (absl::Status st = checker.SetTargets(targets); !st.ok()) {
    std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
    return 2;
  }
  bool announced = false;
  while (exit_after_s <= 0 || absl::Now() - start < absl::Seconds(exit_after_s)) {
    const timespec tick{0, 50 * 1000 * 1000};
    if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) break;
    if (!announced && checker.AllCheckedOnce()) {
      announced = true;
      Print(absl::StrFormat("all_checked_once after %.3f s",
                            absl::ToDoubleSeconds(absl::Now() - start)));
    }
  }
  checker.Stop();
  for (const HealthChecker::TargetStatus& s : checker.Snapshot()) {
    Print(absl::StrCat("status key=", s.key, " state=", HealthStateName(s.state),
                       " probes=", s.total_probes, " failures=", s.total_failures,
                       " last_result=", Quoted(s.last_result), " last_error=", Quoted(s.last_error),
                       " last_change=", Stamp(s.last_change)));
  }
  return 0;
}

}  // namespace
}  // namespace lb

int main(int argc, char** argv) {
  CLI::App app{
      "lb_health_probe: lbnode's health checker on the command line; prints state changes."};
  std::vector<std::string> targets;
  lb::HealthCheckSpec spec;
  std::string host;
  double exit_after_s = 0;
  app.add_option("-t,--target", targets, "KEY,tcp|http|none,ADDRESS,PORT[,PATH] (repeatable)")
      ->required();
  app.add_option("--interval_ms", spec.interval_ms, "time between probes of a target")
      ->capture_default_str();
  app.add_option("--timeout_ms", spec.timeout_ms, "probe timeout")->capture_default_str();
  app.add_option("--rise", spec.rise, "successes to become healthy")->capture_default_str();
  app.add_option("--fall", spec.fall, "failures to become unhealthy")->capture_default_str();
  app.add_option("--bind", spec.bind_interface, "interface the probes leave from");
  app.add_option("--host", spec.http_host, "HTTP Host header (default: the address)");
  app.add_option("--status", spec.http_status, "expected HTTP status (default: any 2xx/3xx)");
  app.add_option("--exit_after_s", exit_after_s, "exit after this long (default: on a signal)");
  CLI11_PARSE(app, argc, argv);
  return lb::Run(targets, spec, exit_after_s);
}
