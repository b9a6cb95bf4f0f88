#include "routing/announcer.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lb {
namespace {

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

// Writes and fsyncs `path` (created or truncated). Mode 0600, or 0640 with group `gid` when
// gid >= 0 (a BIRD that runs as its own user reads it through the group): it may hold OSPF
// secrets.
absl::Status WriteSynced(const std::string& path, const std::string& content, int gid) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create", path);
  // O_CREAT does not change the mode of a file that exists already.
  if ((gid >= 0 && fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0) ||
      fchmod(fd, gid >= 0 ? 0640 : 0600) != 0) {
    const absl::Status s = Errno("cannot set owner or mode of", path);
    close(fd);
    return s;
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const absl::Status s = Errno("cannot write", path);
      close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    const absl::Status s = Errno("cannot fsync", path);
    close(fd);
    return s;
  }
  if (close(fd) != 0) return Errno("cannot close", path);
  return absl::OkStatus();
}

// Renames `from` over `to` and fsyncs the directory, so the new name survives a crash.
absl::Status RenameSynced(const std::string& from, const std::string& to) {
  if (rename(from.c_str(), to.c_str()) != 0) return Errno("cannot rename " + from + " to", to);
  const std::string dir = DirOf(to);
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("cannot open", dir);
  const int rc = fsync(dfd);
  close(dfd);
  if (rc != 0) return Errno("cannot fsync", dir);
  return absl::OkStatus();
}

bool IsHostPrefix(const std::string& p) {
  return absl::EndsWith(p, absl::StrContains(p, ':') ? "/128" : "/32");
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  if (absl::Status s = WriteSynced(tmp, content, /*gid=*/-1); !s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  if (absl::Status s = RenameSynced(tmp, path); !s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Announcer>> Announcer::Create(AnnouncerOptions options) {
  if (options.config_path.empty() || options.config_path.back() == '/') {
    return absl::InvalidArgumentError("config_path: must name a file");
  }
  if (options.socket_path.empty()) return absl::InvalidArgumentError("socket_path: required");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must be positive");
  }
  options.bird.vips.clear();
  if (absl::Status s = ValidateBirdNodeConfig(options.bird); !s.ok()) return s;
  int gid = -1;
  if (!options.config_group.empty()) {
    std::vector<char> buf(16384);
    group g;
    group* found = nullptr;
    if (getgrnam_r(options.config_group.c_str(), &g, buf.data(), buf.size(), &found) != 0 ||
        found == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("config_group: no group \"", options.config_group, "\""));
    }
    gid = static_cast<int>(found->gr_gid);
  }
  std::unique_ptr<Announcer> a(new Announcer(std::move(options)));
  a->gid_ = gid;
  return a;
}

absl::Status Announcer::Apply(const std::vector<std::string>& vips) {
  BirdNodeConfig config = options_.bird;
  config.vips = vips;
  absl::StatusOr<std::string> text = RenderBirdConfig(config);
  if (!text.ok()) return text.status();

  const std::string& path = options_.config_path;
  const std::string candidate = path + ".new";
  if (absl::Status s = WriteSynced(candidate, *text, gid_); !s.ok()) {
    unlink(candidate.c_str());
    return s;
  }
  absl::StatusOr<std::unique_ptr<BirdClient>> client =
      BirdClient::Connect(options_.socket_path, options_.timeout);
  absl::Status checked = client.ok() ? (*client)->CheckConfig(candidate) : client.status();
  if (!checked.ok() && !absl::IsUnavailable(checked)) {
    unlink(candidate.c_str());
    return absl::Status(checked.code(),
                        absl::StrCat("BIRD rejected the rendered config: ", checked.message()));
  }
  // Checked, or BIRD is not answering: either way the file BIRD starts from must say what is
  // wanted now.
  if (absl::Status s = RenameSynced(candidate, path); !s.ok()) {
    unlink(candidate.c_str());
    return s;
  }
  if (!checked.ok()) {
    return absl::UnavailableError(
        absl::StrCat(checked.message(), " (config installed at ", path, "; retry to apply)"));
  }
  if (absl::Status s = (*client)->Configure(path); !s.ok()) return s;
  applied_ = vips;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Announcer::Announced(BirdClient& client) {
  std::vector<std::string> out;
  std::vector<std::string> protocols;
  if (options_.bird.ipv4) protocols.push_back(kBirdOspf4Protocol);
  if (options_.bird.ipv6) protocols.push_back(kBirdOspf6Protocol);
  for (const std::string& proto : protocols) {
    absl::StatusOr<std::vector<OspfStateRouter>> state = client.OspfState(proto);
    if (!state.ok()) return state.status();
    for (const OspfStateRouter& r : *state) {
      if (r.router_id != options_.bird.router_id) continue;
      for (const std::string& p : r.stubnets) {
        if (IsHostPrefix(p)) out.push_back(p);
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<std::vector<std::string>> Announcer::AnnouncedPrefixes() {
  absl::StatusOr<std::unique_ptr<BirdClient>> client =
      BirdClient::Connect(options_.socket_path, options_.timeout);
  if (!client.ok()) return client.status();
  return Announced(**client);
}

absl::StatusOr<bool> Announcer::Withdrawn(const std::string& vip) {
  absl::StatusOr<std::string> prefix = VipPrefix(vip);
  if (!prefix.ok()) return prefix.status();
  absl::StatusOr<std::vector<std::string>> announced = AnnouncedPrefixes();
  if (!announced.ok()) return announced.status();
  return std::find(announced->begin(), announced->end(), *prefix) == announced->end();
}

RoutingStatus Announcer::Status() {
  RoutingStatus st;
  absl::StatusOr<std::unique_ptr<BirdClient>> client =
      BirdClient::Connect(options_.socket_path, options_.timeout);
  if (!client.ok()) {
    st.error = std::string(client.status().message());
    return st;
  }
  BirdClient& c = **client;
  st.bird_reachable = true;
  st.greeting = c.greeting();
  auto note = [&st](const absl::Status& s) {
    if (st.error.empty()) st.error = std::string(s.message());
    if (absl::IsUnavailable(s)) st.bird_reachable = false;
  };
  absl::StatusOr<std::vector<BirdProtocol>> protocols = c.ShowProtocols();
  if (!protocols.ok()) {
    note(protocols.status());
    return st;
  }
  st.protocols = *std::move(protocols);
  for (const BirdProtocol& p : st.protocols) {
    if (p.name != kBirdOspf4Protocol && p.name != kBirdOspf6Protocol) continue;
    absl::StatusOr<std::vector<OspfNeighbor>> n = c.OspfNeighbors(p.name);
    if (!n.ok()) {
      note(n.status());
      return st;
    }
    st.neighbors.insert(st.neighbors.end(), n->begin(), n->end());
  }
  absl::StatusOr<std::vector<std::string>> announced = Announced(c);
  if (!announced.ok()) {
    note(announced.status());
    return st;
  }
  st.announced = *std::move(announced);
  return st;
}

}  // namespace lb
