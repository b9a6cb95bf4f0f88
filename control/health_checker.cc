#include "control/health_checker.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lb {
namespace {

constexpr uint32_t kMinIntervalMs = 10;
constexpr uint32_t kMaxIntervalMs = 3600 * 1000;
constexpr uint32_t kMaxRiseFall = 1000;
constexpr uint64_t kWakeId = 0;
// An HTTP status line longer than this is not one.
constexpr size_t kMaxStatusLine = 512;
constexpr int kMaxEvents = 64;

std::string Errno(absl::string_view what, int err) {
  return absl::StrCat(what, ": ", std::strerror(err));
}

// Visible ASCII only: no spaces, no control characters (they would break the request).
bool IsToken(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

absl::Status Bad(size_t index, absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("targets[", index, "].", field, ": ", message));
}

int ToMs(std::chrono::steady_clock::duration d) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60 * 1000));
}

// "HTTP/1.1 200 OK" -> 200.
std::optional<int> ParseStatusLine(absl::string_view line) {
  if (!absl::StartsWith(line, "HTTP/")) return std::nullopt;
  const size_t sp = line.find(' ');
  if (sp == absl::string_view::npos || line.size() < sp + 4) return std::nullopt;
  const absl::string_view code = line.substr(sp + 1, 3);
  if (line.size() > sp + 4 && line[sp + 4] != ' ') return std::nullopt;
  if (!std::all_of(code.begin(), code.end(), absl::ascii_isdigit)) return std::nullopt;
  int status = 0;
  if (!absl::SimpleAtoi(code, &status)) return std::nullopt;
  return status;
}

}  // namespace

const char* HealthStateName(HealthState s) {
  switch (s) {
    case HealthState::kUnknown:
      return "unknown";
    case HealthState::kHealthy:
      return "healthy";
    case HealthState::kUnhealthy:
      return "unhealthy";
  }
  return "?";
}

HealthChecker::HealthChecker(std::function<void(const Event&)> on_change)
    : on_change_(std::move(on_change)), rng_(std::random_device{}()) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    setup_status_ = absl::InternalError(Errno("epoll_create1", errno));
    return;
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    setup_status_ = absl::InternalError(Errno("eventfd", errno));
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    setup_status_ = absl::InternalError(Errno("epoll_ctl", errno));
    return;
  }
  thread_ = std::thread([this] { Run(); });
}

HealthChecker::~HealthChecker() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

void HealthChecker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (auto& [key, e] : entries_) Abandon(*e);
}

void HealthChecker::Wake() {
  if (wake_fd_ < 0) return;
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

absl::Status HealthChecker::Prepare(const Target& t, size_t index, Prepared* out) {
  const HealthCheckSpec& s = t.spec;
  if (t.key.empty()) return Bad(index, "key", "empty");
  out->target = t;

  // Numeric parsing only: a name here would need DNS, which would block the checker thread.
  std::string host = t.address;
  std::string scope;
  if (const size_t pct = host.find('%'); pct != std::string::npos) {
    scope = host.substr(pct + 1);
    host.resize(pct);
  }
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  const bool is_v4 = scope.empty() && inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1;
  const bool is_v6 = !is_v4 && inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1;
  if (!is_v4 && !is_v6) {
    return Bad(index, "address",
               absl::StrCat("not an IP address: \"", absl::CEscape(t.address), "\""));
  }
  if (!scope.empty()) {
    v6.sin6_scope_id = if_nametoindex(scope.c_str());
    if (v6.sin6_scope_id == 0 && !absl::SimpleAtoi(scope, &v6.sin6_scope_id)) {
      return Bad(index, "address", absl::StrCat("unknown interface in scope: \"", scope, "\""));
    }
  }

  if (s.type == HealthCheckType::kNone) return absl::OkStatus();
  if (s.type != HealthCheckType::kTcp && s.type != HealthCheckType::kHttp) {
    return Bad(index, "spec.type", "unknown check type");
  }
  out->port = s.port != 0 ? s.port : t.port;
  if (out->port == 0) return Bad(index, "port", "0 and spec.port is 0: no port to probe");
  if (s.interval_ms < kMinIntervalMs || s.interval_ms > kMaxIntervalMs) {
    return Bad(index, "spec.interval_ms",
               absl::StrCat(s.interval_ms, " is outside ", kMinIntervalMs, "..", kMaxIntervalMs));
  }
  if (s.timeout_ms == 0) return Bad(index, "spec.timeout_ms", "0");
  if (s.timeout_ms >= s.interval_ms) {
    return Bad(index, "spec.timeout_ms",
               absl::StrCat(s.timeout_ms, " must be less than interval_ms (", s.interval_ms, ")"));
  }
  if (s.rise == 0 || s.rise > kMaxRiseFall) {
    return Bad(index, "spec.rise", absl::StrCat(s.rise, " is outside 1..", kMaxRiseFall));
  }
  if (s.fall == 0 || s.fall > kMaxRiseFall) {
    return Bad(index, "spec.fall", absl::StrCat(s.fall, " is outside 1..", kMaxRiseFall));
  }
  if (!s.bind_interface.empty() &&
      (s.bind_interface.size() >= IFNAMSIZ || !IsToken(s.bind_interface) ||
       s.bind_interface.find('/') != std::string::npos)) {
    return Bad(index, "spec.bind_interface",
               absl::StrCat("not an interface name: \"", absl::CEscape(s.bind_interface), "\""));
  }

  if (is_v4) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(out->port);
    std::memcpy(&out->addr, &v4, sizeof(v4));
    out->addr_len = sizeof(v4);
  } else {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(out->port);
    std::memcpy(&out->addr, &v6, sizeof(v6));
    out->addr_len = sizeof(v6);
  }

  if (s.type == HealthCheckType::kHttp) {
    if (s.http_path.empty() || s.http_path[0] != '/' || !IsToken(s.http_path)) {
      return Bad(index, "spec.http_path",
                 absl::StrCat("must start with '/' and hold no spaces or control characters: \"",
                              absl::CEscape(s.http_path), "\""));
    }
    if (!IsToken(s.http_host)) {
      return Bad(
          index, "spec.http_host",
          absl::StrCat("holds spaces or control characters: \"", absl::CEscape(s.http_host), "\""));
    }
    if (s.http_status != 0 && (s.http_status < 100 || s.http_status > 599)) {
      return Bad(index, "spec.http_status", absl::StrCat(s.http_status, " is outside 100..599"));
    }
    std::string host_header = s.http_host;
    if (host_header.empty()) {
      host_header = is_v4 ? host : absl::StrCat("[", host, "]");
      if (out->port != 80) absl::StrAppend(&host_header, ":", out->port);
    }
    out->request = absl::StrCat("GET ", s.http_path, " HTTP/1.1\r\nHost: ", host_header,
                                "\r\nUser-Agent: lbnode-health\r\nConnection: close\r\n\r\n");
  }
  return absl::OkStatus();
}

absl::Status HealthChecker::SetTargets(std::vector<Target> targets) {
  if (!setup_status_.ok()) return setup_status_;
  std::vector<Prepared> prepared(targets.size());
  std::set<std::string> keys;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (absl::Status st = Prepare(targets[i], i, &prepared[i]); !st.ok()) return st;
    if (!keys.insert(targets[i].key).second) {
      return Bad(i, "key", absl::StrCat("duplicate \"", absl::CEscape(targets[i].key), "\""));
    }
  }

  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::FailedPreconditionError("health checker stopped");
  const Clock::time_point now = Clock::now();
  const absl::Time wall_now = absl::Now();
  std::map<std::string, std::unique_ptr<Entry>> next;
  for (Prepared& p : prepared) {
    std::string key = p.target.key;
    auto old = entries_.find(key);
    if (old != entries_.end() && old->second->p.target.address == p.target.address &&
        old->second->p.target.port == p.target.port &&
        old->second->p.target.spec == p.target.spec) {
      next.emplace(std::move(key), std::move(old->second));
      entries_.erase(old);
      continue;
    }
    auto e = std::make_unique<Entry>();
    const uint32_t interval = p.target.spec.interval_ms;
    e->p = std::move(p);
    e->last_change = wall_now;
    e->next_start = now;
    if (e->p.target.spec.type != HealthCheckType::kNone) {
      e->next_start += std::chrono::microseconds(
          std::uniform_int_distribution<int64_t>(0, int64_t{interval} * 1000 - 1)(rng_));
    }
    next.emplace(std::move(key), std::move(e));
  }
  for (auto& [key, e] : entries_) Abandon(*e);  // removed or replaced
  entries_ = std::move(next);
  Wake();
  return absl::OkStatus();
}

std::optional<HealthState> HealthChecker::State(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second->state;
}

std::vector<HealthChecker::TargetStatus> HealthChecker::Snapshot() const {
  absl::MutexLock lock(&mu_);
  std::vector<TargetStatus> out;
  out.reserve(entries_.size());
  for (const auto& [key, e] : entries_) {
    TargetStatus s;
    s.key = key;
    s.address = e->p.target.address;
    s.port = e->p.port;
    s.state = e->state;
    s.healthy = e->state == HealthState::kHealthy;
    s.checked_at_least_once = e->state != HealthState::kUnknown;
    s.consecutive_ok = e->consecutive_ok;
    s.consecutive_fail = e->consecutive_fail;
    s.last_result = e->last_result;
    s.last_error = e->last_error;
    s.last_change = e->last_change;
    s.total_probes = e->total_probes;
    s.total_failures = e->total_failures;
    out.push_back(std::move(s));
  }
  return out;
}

bool HealthChecker::AllCheckedOnce() const {
  absl::MutexLock lock(&mu_);
  return std::all_of(entries_.begin(), entries_.end(),
                     [](const auto& kv) { return kv.second->state != HealthState::kUnknown; });
}

bool HealthChecker::WaitAllCheckedOnce(absl::Duration timeout) const {
  auto all_checked = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::all_of(entries_.begin(), entries_.end(),
                       [](const auto& kv) { return kv.second->state != HealthState::kUnknown; });
  };
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&all_checked), timeout);
}

void HealthChecker::Run() {
  std::vector<Event> events;
  std::vector<Event> deliver;
  epoll_event ready[kMaxEvents];
  int timeout_ms = 0;
  while (true) {
    const int n = epoll_wait(epoll_fd_, ready, kMaxEvents, timeout_ms);
    // Not expected (EBADF or EINVAL would be bugs); do not spin on it.
    if (n < 0 && errno != EINTR) absl::SleepFor(absl::Milliseconds(10));
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      for (int i = 0; i < n; ++i) {
        if (ready[i].data.u64 == kWakeId) {
          uint64_t count;
          (void)!read(wake_fd_, &count, sizeof(count));
          continue;
        }
        // The probe may have been abandoned by SetTargets since epoll_wait returned.
        auto it = in_flight_.find(ready[i].data.u64);
        if (it != in_flight_.end()) OnReady(*it->second, ready[i].events, events);
      }
      const Clock::time_point now = Clock::now();
      Clock::time_point next = now + std::chrono::seconds(60);
      for (auto& [key, e] : entries_) {
        if (e->phase != Phase::kIdle && now >= e->deadline) {
          const char* phase = e->phase == Phase::kConnecting ? "connecting"
                              : e->phase == Phase::kSending  ? "sending the HTTP request"
                                                             : "awaiting the HTTP status";
          Finish(*e, false,
                 absl::StrCat("timeout after ", e->p.target.spec.timeout_ms, " ms ", phase),
                 events);
        }
        if (e->phase == Phase::kIdle && e->next_start != Clock::time_point::max() &&
            now >= e->next_start) {
          StartProbe(*e, now, events);
        }
        if (e->phase != Phase::kIdle) {
          next = std::min(next, e->deadline);
        } else if (e->next_start != Clock::time_point::max()) {
          next = std::min(next, e->next_start);
        }
      }
      timeout_ms = ToMs(next - now);
      events.swap(deliver);
    }
    // Outside the lock: the callback may call back into the checker.
    for (const Event& ev : deliver) {
      if (on_change_) on_change_(ev);
    }
    deliver.clear();
  }
}

bool HealthChecker::Watch(Entry& e, uint32_t epoll_events, bool add) {
  epoll_event ev{};
  ev.events = epoll_events;
  ev.data.u64 = e.probe_id;
  return epoll_ctl(epoll_fd_, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, e.fd, &ev) == 0;
}

void HealthChecker::StartProbe(Entry& e, Clock::time_point now, std::vector<Event>& events) {
  const HealthCheckSpec& s = e.p.target.spec;
  // The schedule keeps its phase: the next probe is one interval after this one was due.
  const auto interval = std::chrono::milliseconds(s.interval_ms);
  e.next_start += interval;
  if (e.next_start <= now) e.next_start = now + interval;  // fell behind: do not burst
  if (s.type == HealthCheckType::kNone) {
    e.next_start = Clock::time_point::max();
    Finish(e, true, "no health check", events);
    return;
  }

  e.deadline = now + std::chrono::milliseconds(s.timeout_ms);
  e.sent = 0;
  e.response.clear();
  e.probe_id = next_probe_id_++;
  e.phase = Phase::kConnecting;
  e.fd = socket(e.p.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (e.fd < 0) return Finish(e, false, Errno("socket", errno), events);
  in_flight_[e.probe_id] = &e;
  if (!s.bind_interface.empty() &&
      setsockopt(e.fd, SOL_SOCKET, SO_BINDTODEVICE, s.bind_interface.data(),
                 s.bind_interface.size()) != 0) {
    return Finish(e, false, Errno(absl::StrCat("bind to device ", s.bind_interface), errno),
                  events);
  }
  // Close with a reset: a probe that ends in TIME_WAIT on the node would hold a local port for a
  // minute; hundreds of backends probed every few seconds would pile up thousands.
  const linger abort_on_close{1, 0};
  setsockopt(e.fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
  if (connect(e.fd, reinterpret_cast<const sockaddr*>(&e.p.addr), e.p.addr_len) == 0) {
    if (!Watch(e, EPOLLOUT, true)) return Finish(e, false, Errno("epoll_ctl", errno), events);
    return OnReady(e, EPOLLOUT, events);
  }
  if (errno != EINPROGRESS) return Finish(e, false, Errno("connect", errno), events);
  if (!Watch(e, EPOLLOUT, true)) return Finish(e, false, Errno("epoll_ctl", errno), events);
}

void HealthChecker::OnReady(Entry& e, uint32_t epoll_events, std::vector<Event>& events) {
  const HealthCheckSpec& s = e.p.target.spec;
  if (e.phase == Phase::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(e.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return Finish(e, false, Errno("connect", err), events);
    if (!(epoll_events & EPOLLOUT)) return;  // not connected yet
    if (s.type == HealthCheckType::kTcp) return Finish(e, true, "connected", events);
    e.phase = Phase::kSending;
  }
  if (e.phase == Phase::kSending) {
    while (e.sent < e.p.request.size()) {
      const ssize_t w =
          send(e.fd, e.p.request.data() + e.sent, e.p.request.size() - e.sent, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // still watching EPOLLOUT
        if (errno == EINTR) continue;
        return Finish(e, false, Errno("send", errno), events);
      }
      e.sent += static_cast<size_t>(w);
    }
    e.phase = Phase::kReading;
    if (!Watch(e, EPOLLIN, false)) return Finish(e, false, Errno("epoll_ctl", errno), events);
    return;  // a reply cannot be there yet in any useful sense; wait for EPOLLIN
  }
  // kReading: only the status line matters.
  char buf[kMaxStatusLine];
  while (true) {
    const ssize_t r = recv(e.fd, buf, sizeof(buf), 0);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      return Finish(e, false, Errno("recv", errno), events);
    }
    if (r == 0) {
      return Finish(e, false, "connection closed before the HTTP status line", events);
    }
    e.response.append(buf, static_cast<size_t>(r));
    const size_t eol = e.response.find('\n');
    if (eol == std::string::npos) {
      if (e.response.size() >= kMaxStatusLine) {
        return Finish(e, false, "HTTP status line too long", events);
      }
      continue;
    }
    absl::string_view line(e.response.data(), eol);
    if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
    const std::optional<int> status = ParseStatusLine(line);
    if (!status) {
      return Finish(
          e, false,
          absl::StrCat("not an HTTP status line: \"", absl::CHexEscape(line.substr(0, 40)), "\""),
          events);
    }
    const bool ok = s.http_status != 0 ? *status == s.http_status : *status >= 200 && *status < 400;
    return Finish(e, ok, absl::StrCat("HTTP ", *status), events);
  }
}

void HealthChecker::Abandon(Entry& e) {
  if (e.fd >= 0) close(e.fd);  // also leaves the epoll set
  e.fd = -1;
  in_flight_.erase(e.probe_id);
  e.phase = Phase::kIdle;
  e.response.clear();
  e.response.shrink_to_fit();
}

void HealthChecker::Finish(Entry& e, bool ok, std::string result, std::vector<Event>& events) {
  Abandon(e);
  const HealthCheckSpec& s = e.p.target.spec;
  ++e.total_probes;
  if (ok) {
    ++e.consecutive_ok;
    e.consecutive_fail = 0;
  } else {
    ++e.total_failures;
    ++e.consecutive_fail;
    e.consecutive_ok = 0;
    e.last_error = result;
  }
  const HealthState old = e.state;
  const auto times = [](uint32_t n, const char* one, const char* many) {
    return absl::StrCat(" (", n, " consecutive ", n == 1 ? one : many, ")");
  };
  std::string reason;
  if (s.type == HealthCheckType::kNone) {
    e.state = HealthState::kHealthy;
    reason = result;
  } else if (old != HealthState::kHealthy && ok &&
             (old == HealthState::kUnknown || e.consecutive_ok >= s.rise)) {
    e.state = HealthState::kHealthy;
    reason = old == HealthState::kUnknown
                 ? absl::StrCat(result, " (first success)")
                 : absl::StrCat(result, times(e.consecutive_ok, "success", "successes"));
  } else if (old != HealthState::kUnhealthy && !ok && e.consecutive_fail >= s.fall) {
    e.state = HealthState::kUnhealthy;
    reason = absl::StrCat(result, times(e.consecutive_fail, "failure", "failures"));
  }
  e.last_result = std::move(result);
  if (e.state != old) {
    e.last_change = absl::Now();
    events.push_back(Event{e.p.target.key, old, e.state, std::move(reason)});
  }
}

}  // namespace lb
