#include "control/node_controller.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control/log.h"
#include "control/snapshot_builder.h"
#include "google/protobuf/util/message_differencer.h"

namespace lb {
namespace {

const char* ProtoName(v1::Protocol p) {
  return p == v1::PROTOCOL_TCP ? "tcp" : p == v1::PROTOCOL_UDP ? "udp" : "?";
}

std::string FormatKey(const std::string& addr, bool v6, uint32_t port, const char* proto) {
  return absl::StrCat(v6 ? "[" : "", addr, v6 ? "]" : "", ":", port, "/", proto);
}

// The canonical key of a snapshot VIP (same format as VipKeyString).
std::string SnapshotVipKey(const VipEntry& v) {
  return FormatKey(IpToString(v.key.addr, v.key.family), v.key.family == IpFamily::kIpv6,
                   ntohs(v.key.port), v.key.proto == IPPROTO_UDP ? "udp" : "tcp");
}

std::string Prefix(const std::string& address) {
  auto ip = ParseIp(address);
  if (!ip.ok()) return address;
  return absl::StrCat(IpToString(ip->first, ip->second),
                      ip->second == IpFamily::kIpv6 ? "/128" : "/32");
}

std::string CanonicalAddress(const std::string& address) {
  auto ip = ParseIp(address);
  return ip.ok() ? IpToString(ip->first, ip->second) : address;
}

bool HasHealthCheck(const v1::Vip& vip) {
  return vip.health_check().type() == v1::HealthCheck::TYPE_TCP ||
         vip.health_check().type() == v1::HealthCheck::TYPE_HTTP;
}

// A change whose state cannot be saved is refused whole.
absl::Status PersistError(const absl::Status& st) {
  return absl::UnavailableError(
      absl::StrCat("cannot persist the state, nothing changed: ", st.message()));
}

uint32_t Weight(const v1::Backend& b) { return b.has_weight() ? b.weight() : 1; }

bool AdminActive(const v1::Backend& b) {
  return b.state() == v1::BACKEND_STATE_ACTIVE || b.state() == v1::BACKEND_STATE_UNSPECIFIED;
}

}  // namespace

absl::StatusOr<std::string> VipKeyString(const v1::VipKey& key) {
  auto ip = ParseIp(key.address());
  if (!ip.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("vip.address: ", ip.status().message()));
  }
  if (key.port() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("vip.port: ", key.port(), " > 65535"));
  }
  if (key.protocol() != v1::PROTOCOL_TCP && key.protocol() != v1::PROTOCOL_UDP) {
    return absl::InvalidArgumentError("vip.protocol: must be PROTOCOL_TCP or PROTOCOL_UDP");
  }
  return FormatKey(IpToString(ip->first, ip->second), ip->second == IpFamily::kIpv6, key.port(),
                   ProtoName(key.protocol()));
}

v1::VipKey KeyOf(const v1::Vip& vip) {
  v1::VipKey k;
  k.set_address(vip.address());
  k.set_port(vip.port());
  k.set_protocol(vip.protocol());
  return k;
}

std::string HealthKey(const std::string& vip_key, const std::string& backend_address) {
  return absl::StrCat(vip_key, "|", CanonicalAddress(backend_address));
}

// ---------------------------------------------------------------------------------------------
// EventBus

std::optional<v1::Event> EventBus::Subscription::Next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return !queue_.empty() || closed_ || lost_ != 0; });
  if (lost_ != 0) {
    v1::Event e;
    e.set_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
    e.set_message(absl::StrCat(lost_, " event(s) lost: this watcher fell behind"));
    lost_ = 0;
    return e;
  }
  if (queue_.empty()) return std::nullopt;
  v1::Event e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

bool EventBus::Subscription::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

std::shared_ptr<EventBus::Subscription> EventBus::Subscribe() {
  auto s = std::make_shared<Subscription>();
  std::lock_guard<std::mutex> lock(mu_);
  subs_.push_back(s);
  return s;
}

void EventBus::Unsubscribe(const std::shared_ptr<Subscription>& s) {
  std::lock_guard<std::mutex> lock(mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), s), subs_.end());
}

void EventBus::Publish(const v1::Event& event) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : subs_) {
    std::lock_guard<std::mutex> sl(s->mu_);
    if (s->queue_.size() >= kQueueLimit) {
      s->queue_.pop_front();
      ++s->lost_;
    }
    s->queue_.push_back(event);
    s->cv_.notify_one();
  }
}

void EventBus::CloseAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : subs_) {
    std::lock_guard<std::mutex> sl(s->mu_);
    s->closed_ = true;
    s->cv_.notify_all();
  }
}

// ---------------------------------------------------------------------------------------------
// NodeController

NodeController::NodeController(Options options, StateStore* store, Hooks hooks)
    : options_(std::move(options)), store_(store), hooks_(std::move(hooks)) {
  started_ms_ = NowMs();
}

int64_t NodeController::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void NodeController::Emit(v1::Event::Kind kind, const std::string& vip_key,
                          const std::string& backend, bool healthy, const std::string& message) {
  v1::Event e;
  e.set_unix_ms(NowMs());
  e.set_kind(kind);
  if (!vip_key.empty()) {
    // vip_key is canonical: "[addr]:port/proto" or "addr:port/proto".
    std::string addr = vip_key.substr(0, vip_key.rfind(':'));
    if (!addr.empty() && addr.front() == '[') addr = addr.substr(1, addr.size() - 2);
    const size_t colon = vip_key.rfind(':');
    const size_t slash = vip_key.rfind('/');
    e.mutable_vip()->set_address(addr);
    e.mutable_vip()->set_port(
        static_cast<uint32_t>(std::stoul(vip_key.substr(colon + 1, slash - colon - 1))));
    e.mutable_vip()->set_protocol(vip_key.substr(slash + 1) == "udp" ? v1::PROTOCOL_UDP
                                                                     : v1::PROTOCOL_TCP);
  }
  e.set_backend(backend);
  e.set_healthy(healthy);
  e.set_version(config_.version());
  e.set_message(message);
  events_.Publish(e);
}

int NodeController::FindVipLocked(const v1::VipKey& key, std::string* canonical) const {
  auto want = VipKeyString(key);
  if (!want.ok()) return -2;
  if (canonical) *canonical = *want;
  for (int i = 0; i < config_.vips_size(); ++i) {
    auto k = VipKeyString(KeyOf(config_.vips(i)));
    if (k.ok() && *k == *want) return i;
  }
  return -1;
}

absl::StatusOr<int> NodeController::ExistingVipLocked(const v1::VipKey& k,
                                                      std::string* canonical) const {
  const int at = FindVipLocked(k, canonical);
  if (at == -2) return VipKeyString(k).status();
  if (at < 0) return absl::NotFoundError(absl::StrCat("vip: no VIP ", *canonical));
  return at;
}

bool NodeController::HealthyLocked(const std::string& vip_key, const v1::Vip& vip,
                                   const v1::Backend& b) const {
  if (!HasHealthCheck(vip)) return true;
  auto it = health_.find(HealthKey(vip_key, b.address()));
  // No verdict yet: keep the backend in (a restart or a new backend does not churn Maglev).
  if (it == health_.end() || !it->second.checked) return true;
  return it->second.healthy;
}

bool NodeController::InMaglevLocked(const std::string& vip_key, const v1::Vip& vip,
                                    const v1::Backend& b) const {
  return AdminActive(b) && Weight(b) > 0 && HealthyLocked(vip_key, vip, b);
}

v1::ServiceConfig NodeController::EffectiveLocked(const v1::ServiceConfig& config) const {
  v1::ServiceConfig out = config;
  for (v1::Vip& vip : *out.mutable_vips()) {
    if (!HasHealthCheck(vip)) continue;
    auto key = VipKeyString(KeyOf(vip));
    if (!key.ok()) continue;  // validation reports it
    for (v1::Backend& b : *vip.mutable_backends()) {
      if (!HealthyLocked(*key, vip, b)) b.set_state(v1::BACKEND_STATE_DOWN);
    }
  }
  return out;
}

absl::Status NodeController::SaveLocked(const v1::ServiceConfig& services, bool node_drained,
                                        const std::map<std::string, Drain>& vip_drains) const {
  v1::SavedState state;
  *state.mutable_services() = services;
  state.set_node_drained(node_drained);
  for (const v1::Vip& vip : services.vips()) {
    auto key = VipKeyString(KeyOf(vip));
    if (key.ok() && vip_drains.count(*key)) *state.add_drained_vips() = KeyOf(vip);
  }
  return store_->Save(state);
}

absl::Status NodeController::PublishLocked(const v1::ServiceConfig& config) {
  auto snap = hooks_.build(EffectiveLocked(config));
  if (!snap.ok()) return snap.status();
  if (hooks_.dataplane != nullptr && !hooks_.dataplane->Publish(*std::move(snap))) {
    Log(LogLevel::kError, "a worker did not pass a quiescent point within 1 s: stuck?");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> NodeController::CommitLocked(v1::ServiceConfig next,
                                                      const std::string& what, bool bump_version) {
  if (shutting_down_) return absl::UnavailableError("lbnode is shutting down");
  if (bump_version) next.set_version(config_.version() + 1);
  if (absl::Status st = ValidateServiceConfig(next); !st.ok()) return st;
  auto snap = hooks_.build(EffectiveLocked(next));
  if (!snap.ok()) return snap.status();
  // Drains of VIPs that no longer exist end with them.
  std::map<std::string, Drain> drains;
  for (const v1::Vip& vip : next.vips()) {
    auto key = VipKeyString(KeyOf(vip));
    if (key.ok() && vip_drains_.count(*key)) drains[*key] = vip_drains_[*key];
  }
  if (absl::Status st = SaveLocked(next, node_drained_, drains); !st.ok()) {
    return PersistError(st);
  }
  if (hooks_.dataplane != nullptr && !hooks_.dataplane->Publish(*std::move(snap))) {
    Log(LogLevel::kError, "a worker did not pass a quiescent point within 1 s: stuck?");
  }
  config_ = std::move(next);
  vip_drains_ = std::move(drains);
  if (hooks_.on_config) hooks_.on_config(config_);
  Log(LogLevel::kInfo, absl::StrCat("config version ", config_.version(), ": ", what));
  Emit(v1::Event::KIND_CONFIG_APPLIED, "", "", false,
       absl::StrCat("config version ", config_.version(), ": ", what));
  return config_.version();
}

absl::StatusOr<std::shared_ptr<const Snapshot>> NodeController::Restore(
    const v1::ServiceConfig& initial) {
  std::lock_guard<std::mutex> lock(mu_);
  auto saved = store_->Load();
  if (!saved.ok()) return saved.status();
  if (saved->has_value()) {
    const v1::SavedState& s = **saved;
    if (absl::Status st = ValidateServiceConfig(s.services()); !st.ok()) {
      return absl::DataLossError(absl::StrCat(store_->path(), ": saved services.", st.message()));
    }
    config_ = s.services();
    node_drained_ = s.node_drained();
    if (node_drained_) {
      node_drain_ = Drain{};
      node_drain_.active = true;
      node_drain_.requested_ms = NowMs();
    }
    for (const v1::VipKey& k : s.drained_vips()) {
      auto key = VipKeyString(k);
      if (!key.ok()) continue;
      Drain d;
      d.active = true;
      d.requested_ms = NowMs();
      vip_drains_[*key] = d;
    }
    Log(LogLevel::kInfo,
        absl::StrCat(
            "restored state from ", store_->path(), ": config version ", config_.version(), ", ",
            config_.vips_size(), " VIP(s)", node_drained_ ? ", node drained" : "",
            vip_drains_.empty() ? "" : ", ",
            vip_drains_.empty() ? "" : absl::StrCat(vip_drains_.size(), " VIP(s) drained")));
  } else {
    if (absl::Status st = ValidateServiceConfig(initial); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("services.", st.message()));
    }
    config_ = initial;
    if (absl::Status st = SaveLocked(config_, false, {}); !st.ok()) return st;
    Log(LogLevel::kInfo, absl::StrCat("no saved state in ", store_->dir(),
                                      ": starting from the config file's services (version ",
                                      config_.version(), ")"));
  }
  auto snap = hooks_.build(EffectiveLocked(config_));
  if (!snap.ok()) return snap.status();
  if (hooks_.on_config) hooks_.on_config(config_);
  return snap;
}

void NodeController::Attach(Dataplane* dataplane) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.dataplane = dataplane;
  last_loops_.assign(dataplane->workers(), 0);
  last_progress_ms_.assign(dataplane->workers(), NowMs());
  worker_alive_.assign(dataplane->workers(), true);
}

absl::StatusOr<uint64_t> NodeController::CreateVip(const v1::Vip& vip) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key;
  const int at = FindVipLocked(KeyOf(vip), &key);
  if (at == -2) return VipKeyString(KeyOf(vip)).status();
  if (at >= 0) return absl::AlreadyExistsError(absl::StrCat("vip: ", key, " exists"));
  v1::ServiceConfig next = config_;
  *next.add_vips() = vip;
  return CommitLocked(std::move(next), absl::StrCat("created VIP ", key), true);
}

absl::StatusOr<uint64_t> NodeController::DeleteVip(const v1::VipKey& k) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key;
  const absl::StatusOr<int> found = ExistingVipLocked(k, &key);
  if (!found.ok()) return found.status();
  const int at = *found;
  v1::ServiceConfig next = config_;
  next.mutable_vips()->DeleteSubrange(at, 1);
  return CommitLocked(std::move(next), absl::StrCat("deleted VIP ", key), true);
}

absl::StatusOr<uint64_t> NodeController::AddBackend(const v1::VipKey& k,
                                                    const v1::Backend& backend) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key;
  const absl::StatusOr<int> found = ExistingVipLocked(k, &key);
  if (!found.ok()) return found.status();
  const int at = *found;
  auto addr = ParseIp(backend.address());
  if (!addr.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("backend.address: ", addr.status().message()));
  }
  for (const v1::Backend& b : config_.vips(at).backends()) {
    if (CanonicalAddress(b.address()) == CanonicalAddress(backend.address())) {
      return absl::AlreadyExistsError(
          absl::StrCat("backend.address: ", backend.address(), " is already a backend of ", key));
    }
  }
  v1::ServiceConfig next = config_;
  *next.mutable_vips(at)->add_backends() = backend;
  return CommitLocked(std::move(next),
                      absl::StrCat("added backend ", backend.address(), " to ", key), true);
}

absl::StatusOr<uint64_t> NodeController::RemoveBackend(const v1::VipKey& k,
                                                       const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key;
  const absl::StatusOr<int> found = ExistingVipLocked(k, &key);
  if (!found.ok()) return found.status();
  const int at = *found;
  if (!ParseIp(address).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("address: not an IP address: \"", address, "\""));
  }
  v1::ServiceConfig next = config_;
  auto* backends = next.mutable_vips(at)->mutable_backends();
  for (int i = 0; i < backends->size(); ++i) {
    if (CanonicalAddress(backends->Get(i).address()) == CanonicalAddress(address)) {
      backends->DeleteSubrange(i, 1);
      return CommitLocked(std::move(next), absl::StrCat("removed backend ", address, " from ", key),
                          true);
    }
  }
  return absl::NotFoundError(absl::StrCat("address: ", address, " is not a backend of ", key));
}

absl::StatusOr<uint64_t> NodeController::UpdateBackend(const v1::UpdateBackendRequest& r) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key;
  const absl::StatusOr<int> found = ExistingVipLocked(r.vip(), &key);
  if (!found.ok()) return found.status();
  const int at = *found;
  if (!ParseIp(r.address()).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("address: not an IP address: \"", r.address(), "\""));
  }
  if (!r.has_weight() && r.state() == v1::BACKEND_STATE_UNSPECIFIED) {
    return absl::InvalidArgumentError("weight, state: nothing to update (set one or both)");
  }
  v1::ServiceConfig next = config_;
  for (v1::Backend& b : *next.mutable_vips(at)->mutable_backends()) {
    if (CanonicalAddress(b.address()) != CanonicalAddress(r.address())) continue;
    if (r.has_weight()) b.set_weight(r.weight());
    if (r.state() != v1::BACKEND_STATE_UNSPECIFIED) b.set_state(r.state());
    std::string what = absl::StrCat("updated backend ", r.address(), " of ", key);
    if (r.has_weight()) absl::StrAppend(&what, ": weight ", r.weight());
    if (r.state() != v1::BACKEND_STATE_UNSPECIFIED) {
      absl::StrAppend(&what, ", state ", v1::BackendState_Name(r.state()));
    }
    return CommitLocked(std::move(next), what, true);
  }
  return absl::NotFoundError(absl::StrCat("address: ", r.address(), " is not a backend of ", key));
}

absl::StatusOr<v1::ApplyConfigResponse> NodeController::ApplyConfig(
    const v1::ApplyConfigRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  const v1::ServiceConfig& next = request.config();
  if (absl::Status st = ValidateServiceConfig(next); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("config.", st.message()));
  }
  v1::ApplyConfigResponse resp;
  std::map<std::string, const v1::Vip*> old_vips, new_vips;
  for (const v1::Vip& v : config_.vips()) old_vips[*VipKeyString(KeyOf(v))] = &v;
  for (const v1::Vip& v : next.vips()) new_vips[*VipKeyString(KeyOf(v))] = &v;
  for (const auto& [k, v] : new_vips) {
    auto it = old_vips.find(k);
    if (it == old_vips.end()) {
      resp.add_vips_added(k);
    } else if (!google::protobuf::util::MessageDifferencer::Equals(*it->second, *v)) {
      resp.add_vips_changed(k);
    }
  }
  for (const auto& [k, v] : old_vips) {
    if (!new_vips.count(k)) resp.add_vips_removed(k);
  }
  const bool same = google::protobuf::util::MessageDifferencer::Equals(config_, next);
  if (same) {
    resp.set_changed(false);
    resp.set_version(config_.version());
    return resp;
  }
  if (!request.force() && next.version() <= config_.version()) {
    return absl::FailedPreconditionError(
        absl::StrCat("config.version: ", next.version(), " is not newer than the node's version ",
                     config_.version(),
                     " (a different config with the same or an older version; set force to "
                     "roll back)"));
  }
  resp.set_changed(true);
  resp.set_version(next.version());
  if (request.dry_run()) {
    // Build without publishing: catches what only the builder knows (limits, Maglev slots).
    auto snap = hooks_.build(EffectiveLocked(next));
    if (!snap.ok()) return snap.status();
    return resp;
  }
  auto v = CommitLocked(
      next,
      absl::StrCat("applied: ", resp.vips_added_size(), " added, ", resp.vips_removed_size(),
                   " removed, ", resp.vips_changed_size(), " changed"),
      false);
  if (!v.ok()) return v.status();
  return resp;
}

v1::ServiceConfig NodeController::GetConfig() const {
  std::lock_guard<std::mutex> lock(mu_);
  return config_;
}

bool NodeController::HealthReadyLocked() const {
  for (const v1::Vip& vip : config_.vips()) {
    if (!HasHealthCheck(vip)) continue;
    auto key = VipKeyString(KeyOf(vip));
    if (!key.ok()) continue;
    for (const v1::Backend& b : vip.backends()) {
      auto it = health_.find(HealthKey(*key, b.address()));
      if (it == health_.end() || !it->second.checked) return false;
    }
  }
  return true;
}

std::vector<std::string> NodeController::WantedLocked(
    std::map<std::string, std::string>* reasons) const {
  std::string node_reason;
  if (shutting_down_) {
    node_reason = "shutting down";
  } else if (hooks_.dataplane == nullptr) {
    node_reason = "dataplane not forwarding";
  } else if (!all_workers_alive_) {
    node_reason = "a worker is stuck (watchdog)";
  } else if (node_drained_) {
    node_reason = "node drained";
  }
  std::set<std::string> prefixes;
  std::set<std::string> present;
  for (const v1::Vip& vip : config_.vips()) {
    auto key = VipKeyString(KeyOf(vip));
    if (!key.ok()) continue;
    present.insert(*key);
    if (!vips_verdicted_.count(*key)) {
      bool all = true;
      if (HasHealthCheck(vip)) {
        for (const v1::Backend& b : vip.backends()) {
          auto it = health_.find(HealthKey(*key, b.address()));
          all &= it != health_.end() && it->second.checked;
        }
      }
      if (all) vips_verdicted_.insert(*key);
    }
    std::string reason = node_reason;
    if (reason.empty() && !vips_verdicted_.count(*key)) {
      reason = "waiting for the first health verdicts";
    }
    if (reason.empty() && vip_drains_.count(*key)) reason = "VIP drained";
    if (reason.empty()) {
      bool any = false;
      for (const v1::Backend& b : vip.backends()) any |= InMaglevLocked(*key, vip, b);
      if (!any) reason = "no healthy backend";
    }
    if (reasons) (*reasons)[*key] = reason;
    if (reason.empty()) prefixes.insert(Prefix(vip.address()));
  }
  // A VIP deleted and created again waits for its verdicts again.
  for (auto it = vips_verdicted_.begin(); it != vips_verdicted_.end();) {
    it = present.count(*it) ? std::next(it) : vips_verdicted_.erase(it);
  }
  return {prefixes.begin(), prefixes.end()};
}

v1::DrainReport NodeController::ReportLocked(const Drain& d,
                                             const std::vector<std::string>& vips) const {
  v1::DrainReport r;
  r.set_drained(d.active);
  r.set_requested_at_unix_ms(d.requested_ms);
  r.set_withdrawn_at_unix_ms(d.withdrawn_ms);
  r.set_connections_open(d.open);
  r.set_connections_zero_at_unix_ms(d.zero_ms);
  r.set_timed_out(d.timed_out);
  r.set_timeout_s(d.timeout_s);
  for (const std::string& v : vips) r.add_vips(v);
  return r;
}

absl::StatusOr<v1::DrainReport> NodeController::DrainNode(uint32_t timeout_s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return absl::UnavailableError("lbnode is shutting down");
  std::vector<std::string> keys;
  for (const v1::Vip& v : config_.vips()) keys.push_back(*VipKeyString(KeyOf(v)));
  if (!node_drained_) {
    if (absl::Status st = SaveLocked(config_, true, vip_drains_); !st.ok()) {
      return PersistError(st);
    }
    node_drained_ = true;
    node_drain_ = Drain{};
    node_drain_.active = true;
    node_drain_.requested_ms = NowMs();
    node_drain_.timeout_s = timeout_s ? timeout_s : 300;
    if (!hooks_.apply_routes) node_drain_.withdrawn_ms = node_drain_.requested_ms;
    Log(LogLevel::kInfo, "node drained: withdrawing every VIP");
    Emit(v1::Event::KIND_DRAIN, "", "", false, "node drain requested");
  }
  return ReportLocked(node_drain_, keys);
}

absl::Status NodeController::UndrainNode() {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return absl::UnavailableError("lbnode is shutting down");
  if (!node_drained_) return absl::OkStatus();
  if (absl::Status st = SaveLocked(config_, false, vip_drains_); !st.ok()) {
    return PersistError(st);
  }
  node_drained_ = false;
  node_drain_ = Drain{};
  Log(LogLevel::kInfo, "node undrained");
  Emit(v1::Event::KIND_DRAIN, "", "", false, "node undrained");
  return absl::OkStatus();
}

absl::StatusOr<v1::DrainReport> NodeController::DrainVip(const v1::VipKey& k, uint32_t timeout_s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return absl::UnavailableError("lbnode is shutting down");
  std::string key;
  const absl::StatusOr<int> found = ExistingVipLocked(k, &key);
  if (!found.ok()) return found.status();
  if (!vip_drains_.count(key)) {
    std::map<std::string, Drain> next = vip_drains_;
    Drain d;
    d.active = true;
    d.requested_ms = NowMs();
    d.timeout_s = timeout_s ? timeout_s : 300;
    if (!hooks_.apply_routes) d.withdrawn_ms = d.requested_ms;
    next[key] = d;
    if (absl::Status st = SaveLocked(config_, node_drained_, next); !st.ok()) {
      return PersistError(st);
    }
    vip_drains_ = std::move(next);
    Log(LogLevel::kInfo, absl::StrCat("VIP ", key, " drained"));
    Emit(v1::Event::KIND_DRAIN, key, "", false, absl::StrCat("VIP ", key, " drain requested"));
  }
  return ReportLocked(vip_drains_[key], {key});
}

absl::Status NodeController::UndrainVip(const v1::VipKey& k) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return absl::UnavailableError("lbnode is shutting down");
  std::string key;
  const absl::StatusOr<int> found = ExistingVipLocked(k, &key);
  if (!found.ok()) return found.status();
  if (!vip_drains_.count(key)) return absl::OkStatus();
  std::map<std::string, Drain> next = vip_drains_;
  next.erase(key);
  if (absl::Status st = SaveLocked(config_, node_drained_, next); !st.ok()) {
    return PersistError(st);
  }
  vip_drains_ = std::move(next);
  Log(LogLevel::kInfo, absl::StrCat("VIP ", key, " undrained"));
  Emit(v1::Event::KIND_DRAIN, key, "", false, absl::StrCat("VIP ", key, " undrained"));
  return absl::OkStatus();
}

v1::ListVipsResponse NodeController::ListVips() const {
  std::lock_guard<std::mutex> lock(mu_);
  v1::ListVipsResponse out;
  std::map<std::string, std::string> reasons;
  const std::vector<std::string> wanted = WantedLocked(&reasons);
  const std::set<std::string> applied(applied_routes_.begin(), applied_routes_.end());
  for (const v1::Vip& vip : config_.vips()) {
    auto key = VipKeyString(KeyOf(vip));
    if (!key.ok()) continue;
    v1::VipStatus* s = out.add_vips();
    *s->mutable_vip() = vip;
    const std::string prefix = Prefix(vip.address());
    const bool want = std::find(wanted.begin(), wanted.end(), prefix) != wanted.end();
    const bool is_applied = hooks_.apply_routes && bird_ok_ && applied.count(prefix);
    if (!hooks_.apply_routes) {
      s->set_announce_state(v1::ANNOUNCE_STATE_WITHDRAWN);
      s->set_withdraw_reason("routing disabled");
    } else if (want && is_applied) {
      s->set_announce_state(v1::ANNOUNCE_STATE_ANNOUNCED);
    } else if (want != is_applied) {
      s->set_announce_state(v1::ANNOUNCE_STATE_PENDING);
      s->set_withdraw_reason(bird_ok_ ? reasons[*key] : "BIRD unavailable: " + bird_error_);
    } else {
      s->set_announce_state(v1::ANNOUNCE_STATE_WITHDRAWN);
      s->set_withdraw_reason(reasons[*key]);
    }
    if (s->withdraw_reason().empty() && !want) s->set_withdraw_reason(reasons[*key]);
    auto d = vip_drains_.find(*key);
    s->set_drained(d != vip_drains_.end());
    if (d != vip_drains_.end()) *s->mutable_drain() = ReportLocked(d->second, {*key});
    uint32_t healthy = 0;
    for (const v1::Backend& b : vip.backends()) {
      v1::BackendStatus* bs = s->add_backends();
      *bs->mutable_backend() = b;
      bs->set_healthy(HealthyLocked(*key, vip, b));
      auto h = health_.find(HealthKey(*key, b.address()));
      bs->set_checked(!HasHealthCheck(vip) || (h != health_.end() && h->second.checked));
      if (h != health_.end()) bs->set_last_error(h->second.last_error);
      bs->set_in_maglev(InMaglevLocked(*key, vip, b));
      healthy += bs->in_maglev();
    }
    s->set_healthy_backends(healthy);
  }
  return out;
}

v1::GetStatusResponse NodeController::GetStatus() const {
  std::lock_guard<std::mutex> lock(mu_);
  v1::GetStatusResponse s;
  s.set_node_name(options_.node_name);
  s.set_version(options_.build_version);
  s.set_dataplane_up(hooks_.dataplane != nullptr && !shutting_down_);
  s.set_config_version(config_.version());
  s.set_node_drained(node_drained_);
  std::vector<std::string> keys;
  for (const v1::Vip& v : config_.vips()) keys.push_back(*VipKeyString(KeyOf(v)));
  if (node_drained_) *s.mutable_drain() = ReportLocked(node_drain_, keys);
  if (hooks_.apply_routes && bird_ok_) {
    for (const std::string& p : applied_routes_) s.add_announced_vips(p);
  }
  s.set_health_checks_ready(HealthReadyLocked());
  s.set_started_at_unix_ms(started_ms_);
  for (size_t w = 0; w < worker_alive_.size(); ++w) {
    v1::WorkerStatus* ws = s.add_workers();
    ws->set_id(static_cast<uint32_t>(w));
    ws->set_alive(worker_alive_[w]);
    if (w < last_rx_.size()) ws->set_rx_packets(last_rx_[w]);
  }
  v1::RoutingStatus* r = s.mutable_routing();
  if (!hooks_.apply_routes) {
    r->set_bird_error("routing disabled in the config");
  } else {
    *r = routing_cache_;
    r->set_bird_reachable(bird_ok_ && routing_cache_.bird_reachable());
    if (!bird_ok_) r->set_bird_error(bird_error_);
  }
  return s;
}

v1::GetStatsResponse NodeController::GetStats(bool count_connections) const {
  v1::GetStatsResponse out;
  Dataplane* dp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dp = hooks_.dataplane;
  }
  if (dp == nullptr) return out;
  const DataplaneCounters c = dp->Collect();
  const std::shared_ptr<const Snapshot> snap = dp->current();
  std::vector<uint64_t> conns;
  if (count_connections) conns = dp->CountConnectionsByVip();
  const WorkerCounters& t = c.total;
  auto& m = *out.mutable_counters();
  m["rx_packets"] = t.rx_packets;
  m["rx_bytes"] = t.rx_bytes;
  m["to_backend"] = t.to_backend;
  m["to_kernel"] = t.to_kernel;
  m["from_kernel"] = t.from_kernel;
  m["echo_replies"] = t.echo_replies;
  m["icmp_errors"] = t.icmp_errors;
  m["nat_replies"] = t.nat_replies;
  m["handoffs"] = t.handoffs;
  m["conn_hits"] = t.conn_hits;
  m["conn_misses"] = t.conn_misses;
  m["conn_repicked"] = t.conn_repicked;
  m["conn_inserts"] = c.conn_stats.inserts;
  m["conn_evicted_live"] = c.conn_stats.evicted_live;
  m["conn_swept"] = c.conn_stats.swept;
  m["uplink_imissed"] = c.uplink_imissed;
  m["uplink_rx_nombuf"] = c.uplink_rx_nombuf;
  m["uplink_oerrors"] = c.uplink_oerrors;
  for (size_t d = 0; d < static_cast<size_t>(Drop::kCount); ++d) {
    (*out.mutable_drops())[DropName(static_cast<Drop>(d))] = t.drops[d];
  }
  for (size_t d = 0; d < static_cast<size_t>(ParseStatus::kCount); ++d) {
    if (static_cast<ParseStatus>(d) == ParseStatus::kOk) continue;
    (*out.mutable_drops())[absl::StrCat("parse_", ParseStatusName(static_cast<ParseStatus>(d)))] =
        t.parse_drops[d];
  }
  out.set_conn_table_capacity(c.conn_capacity);
  std::map<std::string, HealthVerdict> health;
  {
    std::lock_guard<std::mutex> lock(mu_);
    health = health_;
  }
  uint64_t live = 0;
  for (const VipEntry& v : snap->vips) {
    if (v.handle == 0) continue;
    const uint32_t vi = HandleIndex(v.handle);
    v1::VipStats* vs = out.add_vips();
    const std::string key = SnapshotVipKey(v);
    vs->mutable_vip()->set_address(IpToString(v.key.addr, v.key.family));
    vs->mutable_vip()->set_port(ntohs(v.key.port));
    vs->mutable_vip()->set_protocol(v.key.proto == IPPROTO_UDP ? v1::PROTOCOL_UDP
                                                               : v1::PROTOCOL_TCP);
    if (vi < t.vips.size()) {
      vs->mutable_traffic()->set_packets(t.vips[vi].packets);
      vs->mutable_traffic()->set_bytes(t.vips[vi].bytes);
    }
    if (vi < conns.size()) {
      vs->set_connections(conns[vi]);
      live += conns[vi];
    }
    for (const BackendEntry& b : snap->backends) {
      if (b.handle == 0 || b.vip != v.handle) continue;
      v1::BackendStats* bs = vs->add_backends();
      bs->set_address(IpToString(b.addr, b.family));
      const uint32_t bi = HandleIndex(b.handle);
      if (bi < t.backends.size()) {
        bs->mutable_traffic()->set_packets(t.backends[bi].packets);
        bs->mutable_traffic()->set_bytes(t.backends[bi].bytes);
      }
      auto h = health.find(HealthKey(key, bs->address()));
      bs->set_healthy(h == health.end() || !h->second.checked || h->second.healthy);
    }
  }
  out.set_conn_table_live(live);
  for (size_t w = 0; w < c.worker_rx.size(); ++w) {
    v1::WorkerStatus* ws = out.add_workers();
    ws->set_id(static_cast<uint32_t>(w));
    ws->set_rx_packets(c.worker_rx[w]);
    std::lock_guard<std::mutex> lock(mu_);
    ws->set_alive(w < worker_alive_.size() ? static_cast<bool>(worker_alive_[w]) : true);
  }
  return out;
}

void NodeController::OnHealth(const std::string& key, bool healthy, const std::string& reason) {
  std::lock_guard<std::mutex> lock(health_queue_mu_);
  health_queue_.emplace_back(key, healthy, reason);
}

void NodeController::Rebuild() {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status st = PublishLocked(config_); !st.ok()) {
    Log(LogLevel::kError, absl::StrCat("rebuild: ", st.message()));
  }
}

void NodeController::UpdateDrainsLocked(const std::vector<uint64_t>* counts, int64_t now_ms,
                                        const std::vector<std::string>* exported) {
  std::map<std::string, uint64_t> per_vip;
  if (counts != nullptr && hooks_.dataplane != nullptr) {
    for (const VipEntry& v : hooks_.dataplane->current()->vips) {
      if (v.handle == 0) continue;
      const uint32_t i = HandleIndex(v.handle);
      per_vip[SnapshotVipKey(v)] = i < counts->size() ? (*counts)[i] : 0;
    }
  }
  std::set<std::string> exported_set;
  if (exported) exported_set.insert(exported->begin(), exported->end());
  const auto update = [&](Drain& d, const std::vector<std::string>& keys, const std::string& who) {
    if (!d.active) return;
    if (d.withdrawn_ms == 0 && exported != nullptr) {
      bool gone = true;
      for (const v1::Vip& vip : config_.vips()) {
        auto k = VipKeyString(KeyOf(vip));
        if (k.ok() && std::find(keys.begin(), keys.end(), *k) != keys.end() &&
            exported_set.count(Prefix(vip.address()))) {
          gone = false;
        }
      }
      if (gone) {
        d.withdrawn_ms = now_ms;
        Emit(v1::Event::KIND_DRAIN, keys.size() == 1 ? keys[0] : "", "", false,
             absl::StrCat(who, ": routes withdrawn ", now_ms - d.requested_ms,
                          " ms after the drain request"));
      }
    }
    if (counts != nullptr) {
      uint64_t open = 0;
      for (const std::string& k : keys) open += per_vip.count(k) ? per_vip[k] : 0;
      d.open = open;
      if (open == 0 && d.withdrawn_ms != 0 && d.zero_ms == 0) {
        d.zero_ms = now_ms;
        Emit(v1::Event::KIND_DRAIN, keys.size() == 1 ? keys[0] : "", "", false,
             absl::StrCat(who, ": no connection left, ", now_ms - d.requested_ms,
                          " ms after the drain request"));
      }
    }
    if (d.zero_ms == 0 && !d.timed_out && now_ms - d.requested_ms > int64_t{d.timeout_s} * 1000) {
      d.timed_out = true;
      Emit(v1::Event::KIND_DRAIN, keys.size() == 1 ? keys[0] : "", "", false,
           absl::StrCat(who, ": drain timed out after ", d.timeout_s, " s with ", d.open,
                        " connection(s) open"));
    }
  };
  std::vector<std::string> all;
  for (const v1::Vip& v : config_.vips()) all.push_back(*VipKeyString(KeyOf(v)));
  update(node_drain_, all, "node drain");
  for (auto& [k, d] : vip_drains_) update(d, {k}, absl::StrCat("VIP ", k, " drain"));
}

void NodeController::Tick() {
  const int64_t now = NowMs();
  Dataplane* dp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dp = hooks_.dataplane;
  }
  if (dp == nullptr) return;
  // 1. Watchdog.
  const DataplaneCounters c = dp->Collect();
  // Drain progress (counted below): about once a second while a drain is incomplete.
  bool need_count = false, need_exported = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool all_alive = true;
    for (size_t w = 0; w < c.worker_loops.size() && w < last_loops_.size(); ++w) {
      if (c.worker_loops[w] != last_loops_[w]) {
        last_loops_[w] = c.worker_loops[w];
        last_progress_ms_[w] = now;
      }
      const bool alive = now - last_progress_ms_[w] <= options_.watchdog_ms;
      if (alive != worker_alive_[w]) {
        worker_alive_[w] = alive;
        Log(alive ? LogLevel::kInfo : LogLevel::kError,
            absl::StrCat("watchdog: worker ", w,
                         alive ? " makes progress again"
                               : absl::StrCat(" made no progress for ", options_.watchdog_ms,
                                              " ms: withdrawing every VIP")));
        Emit(v1::Event::KIND_WATCHDOG, "", "", alive,
             absl::StrCat("worker ", w, alive ? " alive again" : " stuck"));
      }
      all_alive &= alive;
    }
    all_workers_alive_ = all_alive;
    last_rx_ = c.worker_rx;
    const auto pending = [&](const Drain& d) {
      return d.active && (d.zero_ms == 0 && !d.timed_out);
    };
    bool any = pending(node_drain_);
    bool any_unwithdrawn = node_drain_.active && node_drain_.withdrawn_ms == 0;
    for (const auto& [k, d] : vip_drains_) {
      any |= pending(d);
      any_unwithdrawn |= d.active && d.withdrawn_ms == 0;
    }
    need_count = any && now - last_count_ms_ >= 1000;
    need_exported = any_unwithdrawn && hooks_.exported_routes != nullptr;
  }
  // 2. Health verdicts (after the watchdog, which must not wait behind a publish).
  std::vector<std::tuple<std::string, bool, std::string>> verdicts;
  {
    std::lock_guard<std::mutex> lock(health_queue_mu_);
    verdicts.swap(health_queue_);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool rebuild = rebuild_pending_ && all_workers_alive_;
    for (const auto& [key, healthy, reason] : verdicts) {
      HealthVerdict& h = health_[key];
      const bool changed = !h.checked || h.healthy != healthy;
      const bool was = h.healthy;
      h.last_error = healthy ? "" : reason;
      if (!changed) continue;
      const bool first = !h.checked;
      h.checked = true;
      h.healthy = healthy;
      if (first && healthy) continue;  // no verdict -> healthy: the dataplane already agrees
      rebuild |= (first ? true : was != healthy);
      const size_t bar = key.find('|');
      const std::string vip = key.substr(0, bar), backend = key.substr(bar + 1);
      Log(healthy ? LogLevel::kInfo : LogLevel::kWarning,
          absl::StrCat("backend ", backend, " of ", vip, healthy ? " is healthy" : " is unhealthy",
                       reason.empty() ? "" : ": ", reason));
      Emit(v1::Event::KIND_HEALTH, vip, backend, healthy,
           absl::StrCat(backend, healthy ? " healthy" : " unhealthy", reason.empty() ? "" : ": ",
                        reason));
    }
    if (rebuild && !all_workers_alive_) {
      // A stuck worker would hold the publish (RCU) for a second per attempt and keep the
      // watchdog from running: publish once the workers make progress again.
      rebuild_pending_ = true;
    } else if (rebuild) {
      rebuild_pending_ = false;
      if (absl::Status st = PublishLocked(config_); !st.ok()) {
        Log(LogLevel::kError, absl::StrCat("rebuild after a health change: ", st.message()));
      }
    }
  }
  std::vector<uint64_t> counts;
  if (need_count) {
    counts = dp->CountConnectionsByVip();
    last_count_ms_ = now;
  }
  // 3. Announcements.
  std::vector<std::string> wanted;
  bool apply = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wanted = WantedLocked(&withdraw_reasons_);
    apply =
        hooks_.apply_routes && (!routes_applied_once_ || !bird_ok_ || wanted != applied_routes_);
  }
  if (apply) {
    const absl::Status st = hooks_.apply_routes(wanted);
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) {
      std::set<std::string> before(applied_routes_.begin(), applied_routes_.end());
      std::set<std::string> after(wanted.begin(), wanted.end());
      if (!routes_applied_once_) before.clear();
      for (const std::string& p : after) {
        if (!before.count(p)) {
          Log(LogLevel::kInfo, absl::StrCat("announced ", p));
          Emit(v1::Event::KIND_ANNOUNCE, "", "", true, absl::StrCat("announced ", p));
        }
      }
      for (const std::string& p : before) {
        if (!after.count(p)) {
          Log(LogLevel::kInfo, absl::StrCat("withdrew ", p));
          Emit(v1::Event::KIND_WITHDRAW, "", "", false, absl::StrCat("withdrew ", p));
        }
      }
      if (!bird_ok_ && routes_applied_once_) Log(LogLevel::kInfo, "BIRD reachable again");
      applied_routes_ = wanted;
      routes_applied_once_ = true;
      bird_ok_ = true;
      bird_error_.clear();
    } else {
      if (bird_ok_ || bird_error_.empty()) {
        Log(LogLevel::kError, absl::StrCat("routing: ", st.message(), " (retrying)"));
      }
      bird_ok_ = false;
      bird_error_ = std::string(st.message());
    }
  }
  if (hooks_.routing_status && now - routing_cache_ms_ >= 2000) {
    v1::RoutingStatus rs = hooks_.routing_status();
    std::lock_guard<std::mutex> lock(mu_);
    routing_cache_ = std::move(rs);
    routing_cache_ms_ = now;
  }
  std::optional<std::vector<std::string>> exported;
  if (need_exported) {
    auto e = hooks_.exported_routes();
    if (e.ok()) exported = *std::move(e);
  }
  std::lock_guard<std::mutex> lock(mu_);
  UpdateDrainsLocked(need_count ? &counts : nullptr, now, exported ? &*exported : nullptr);
}

void NodeController::WithdrawAllForShutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
  }
  if (hooks_.apply_routes) {
    const absl::Status st = hooks_.apply_routes({});
    Log(st.ok() ? LogLevel::kInfo : LogLevel::kError,
        st.ok() ? "withdrew every route before stopping"
                : absl::StrCat("could not withdraw the routes: ", st.message(),
                               " (the router drops them when OSPF/BFD to this node fail)"));
  }
  Emit(v1::Event::KIND_WITHDRAW, "", "", false, "shutting down");
  events_.CloseAll();
}

NodeController::AnnounceView NodeController::Announcements() const {
  std::lock_guard<std::mutex> lock(mu_);
  AnnounceView v;
  v.routing_enabled = static_cast<bool>(hooks_.apply_routes);
  v.bird_ok = bird_ok_;
  for (const v1::Vip& vip : config_.vips()) v.prefixes[Prefix(vip.address())] = false;
  if (bird_ok_) {
    for (const std::string& p : applied_routes_) v.prefixes[p] = true;
  }
  return v;
}

std::map<std::string, HealthVerdict> NodeController::HealthVerdicts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

bool NodeController::node_drained() const {
  std::lock_guard<std::mutex> lock(mu_);
  return node_drained_;
}

}  // namespace lb
