#include "routing/bird_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lb {
namespace {

bool IsDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsIpv4(absl::string_view s) {
  in_addr a;
  return inet_pton(AF_INET, std::string(s).c_str(), &a) == 1;
}

// A whitespace-separated word and where it ends in the line.
struct Word {
  absl::string_view text;
  size_t end = 0;
};

std::vector<Word> Words(absl::string_view line) {
  std::vector<Word> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back({line.substr(start, i - start), i});
  }
  return out;
}

// Remaining milliseconds until `deadline` for poll(), at least 0.
int PollMs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), 60'000));
}

// Waits for `events` on fd until `deadline`; UNAVAILABLE on timeout.
absl::Status WaitFd(int fd, short events, absl::Time deadline, const std::string& what) {
  while (true) {
    pollfd p{fd, events, 0};
    const int ms = PollMs(deadline);
    const int rc = poll(&p, 1, ms);
    if (rc > 0) return absl::OkStatus();
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return absl::UnavailableError(absl::StrCat(what, ": poll: ", strerror(errno)));
    if (ms == 0 || absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat(what, ": BIRD did not answer in time"));
    }
  }
}

// Quotes a file name for a BIRD command; BIRD's CLI strings have no escapes.
absl::StatusOr<std::string> QuoteFile(const std::string& file) {
  if (file.empty() || file.find_first_of("\"\\\n\r") != std::string::npos ||
      file.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("file name cannot be passed to BIRD: \"", absl::CEscape(file), "\""));
  }
  return absl::StrCat("\"", file, "\"");
}

}  // namespace

std::vector<std::string> BirdReply::TextOf(int code) const {
  std::vector<std::string> out;
  for (const auto& l : lines) {
    if (l.code == code) out.push_back(l.text);
  }
  return out;
}

std::string BirdReply::Text() const {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(absl::StrCat(l.code, " ", l.text));
  return absl::StrJoin(out, "\n");
}

absl::Status BirdReplyParser::Feed(absl::string_view data) {
  if (done_ && !data.empty()) {
    return absl::DataLossError("unexpected data after the final reply line");
  }
  total_ += data.size();
  if (total_ > kMaxBirdReply) {
    return absl::ResourceExhaustedError(
        absl::StrCat("reply longer than ", kMaxBirdReply, " bytes"));
  }
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    if (nl == absl::string_view::npos) {
      partial_.append(data.data(), data.size());
      if (partial_.size() > kMaxBirdLine) {
        return absl::DataLossError(absl::StrCat("reply line longer than ", kMaxBirdLine, " bytes"));
      }
      return absl::OkStatus();
    }
    partial_.append(data.data(), nl);
    data.remove_prefix(nl + 1);
    if (done_) return absl::DataLossError("unexpected data after the final reply line");
    std::string line = std::move(partial_);
    partial_.clear();
    if (line.size() > kMaxBirdLine) {
      return absl::DataLossError(absl::StrCat("reply line longer than ", kMaxBirdLine, " bytes"));
    }
    if (absl::Status s = Line(line); !s.ok()) return s;
  }
  if (done_ && !partial_.empty()) {
    return absl::DataLossError("unexpected data after the final reply line");
  }
  return absl::OkStatus();
}

absl::Status BirdReplyParser::Line(absl::string_view line) {
  const absl::string_view code4 = line.substr(0, 4);
  if (line.size() >= 4 && IsDigits(code4) &&
      (line.size() == 4 || line[4] == ' ' || line[4] == '-')) {
    int code = 0;
    (void)absl::SimpleAtoi(code4, &code);
    const bool last = line.size() == 4 || line[4] == ' ';
    reply_.lines.push_back({code, std::string(line.size() > 5 ? line.substr(5) : "")});
    done_ = last;
    return absl::OkStatus();
  }
  if (!line.empty() && line[0] == ' ') {
    if (reply_.lines.empty()) {
      return absl::DataLossError("continuation line before any reply code");
    }
    reply_.lines.push_back({reply_.lines.back().code, std::string(line.substr(1))});
    return absl::OkStatus();
  }
  return absl::DataLossError(
      absl::StrCat("malformed reply line: \"", absl::CEscape(line.substr(0, 80)), "\""));
}

absl::StatusOr<BirdReply> ParseBirdReply(absl::string_view text) {
  BirdReplyParser p;
  if (absl::Status s = p.Feed(text); !s.ok()) return s;
  if (!p.done()) return absl::DataLossError("reply ends without a final line");
  return p.reply();
}

absl::Status BirdReplyStatus(const BirdReply& reply) {
  std::vector<std::string> errors;
  int first = 0;
  for (const auto& l : reply.lines) {
    if (l.code >= 8000 && l.code <= 9999) {
      if (first == 0) first = l.code;
      errors.push_back(l.text);
    }
  }
  if (first == 0) return absl::OkStatus();
  const std::string msg = absl::StrCat("BIRD ", first, ": ", absl::StrJoin(errors, "; "));
  if (first >= 9000 || first == 8002) return absl::InvalidArgumentError(msg);
  if (first == 8001 || first == 8003) return absl::NotFoundError(msg);
  if (first == 8007) return absl::PermissionDeniedError(msg);
  return absl::FailedPreconditionError(msg);
}

absl::StatusOr<std::vector<BirdProtocol>> ParseShowProtocols(const BirdReply& reply) {
  std::vector<BirdProtocol> out;
  for (const std::string& line : reply.TextOf(1002)) {
    const std::vector<Word> w = Words(line);
    if (w.empty()) continue;
    if (w.size() < 4) {
      return absl::DataLossError(absl::StrCat("short show protocols row: \"", line, "\""));
    }
    BirdProtocol p;
    p.name = std::string(w[0].text);
    p.proto = std::string(w[1].text);
    p.table = std::string(w[2].text);
    p.state = std::string(w[3].text);
    size_t end = w[3].end;
    if (w.size() > 4) {
      p.since = std::string(w[4].text);
      end = w[4].end;
      // "iso long" and similar formats print "2024-01-02 12:00:00": two words.
      if (w.size() > 5 && absl::StrContains(w[4].text, '-') && absl::StrContains(w[5].text, ':') &&
          absl::ascii_isdigit(w[5].text[0])) {
        p.since = absl::StrCat(w[4].text, " ", w[5].text);
        end = w[5].end;
      }
    }
    p.info = std::string(absl::StripAsciiWhitespace(absl::string_view(line).substr(end)));
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<std::vector<OspfNeighbor>> ParseOspfNeighbors(const BirdReply& reply) {
  std::vector<OspfNeighbor> out;
  std::string protocol;
  for (const std::string& line : reply.TextOf(1013)) {
    const absl::string_view t = absl::StripAsciiWhitespace(line);
    if (t.empty() || absl::StartsWith(t, "Router ID")) continue;
    if (absl::EndsWith(t, ": is not up")) continue;  // a protocol that is down has none
    const std::vector<Word> w = Words(t);
    if (w.size() == 1 && absl::EndsWith(t, ":")) {
      protocol = std::string(t.substr(0, t.size() - 1));
      continue;
    }
    if (w.size() != 6 || !IsIpv4(w[0].text)) {
      return absl::DataLossError(absl::StrCat("unexpected show ospf neighbors line: \"", t, "\""));
    }
    OspfNeighbor n;
    n.protocol = protocol;
    n.router_id = std::string(w[0].text);
    if (!absl::SimpleAtoi(w[1].text, &n.priority)) {
      return absl::DataLossError(absl::StrCat("bad neighbor priority: \"", t, "\""));
    }
    const std::pair<std::string, std::string> st =
        absl::StrSplit(w[2].text, absl::MaxSplits('/', 1));
    n.state = st.first;
    n.role = st.second;
    n.interface = std::string(w[4].text);
    n.address = std::string(w[5].text);
    out.push_back(std::move(n));
  }
  return out;
}

absl::StatusOr<std::vector<OspfStateRouter>> ParseOspfState(const BirdReply& reply) {
  std::vector<OspfStateRouter> out;
  std::string area;
  bool in_router = false;  // the last level-1 entry was a router (not a network)
  for (const std::string& line : reply.TextOf(1016)) {
    size_t tabs = 0;
    while (tabs < line.size() && line[tabs] == '\t') ++tabs;
    const absl::string_view t = absl::StripAsciiWhitespace(absl::string_view(line).substr(tabs));
    if (t.empty()) continue;
    const std::vector<Word> w = Words(t);
    if (tabs == 0) {
      // "area 0.0.0.0", or a section outside any area ("other ASBRs").
      area = w.size() == 2 && w[0].text == "area" ? std::string(w[1].text) : "";
      in_router = false;
    } else if (tabs == 1) {
      in_router = w.size() == 2 && w[0].text == "router" && !area.empty();
      if (in_router) {
        if (!IsIpv4(w[1].text)) {
          return absl::DataLossError(absl::StrCat("bad router id in show ospf state: \"", t, "\""));
        }
        out.push_back({area, std::string(w[1].text), true, {}});
      }
    } else if (in_router) {
      if (w[0].text == "unreachable") {
        out.back().reachable = false;
      } else if (w[0].text == "stubnet") {
        if (w.size() < 2) return absl::DataLossError(absl::StrCat("bad stubnet line: \"", t, "\""));
        out.back().stubnets.emplace_back(w[1].text);
      }
    }
  }
  return out;
}

bool IsBirdSymbol(absl::string_view s) {
  if (s.empty() || s.size() > 64 || absl::ascii_isdigit(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

absl::StatusOr<std::unique_ptr<BirdClient>> BirdClient::Connect(const std::string& path,
                                                                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("bad BIRD socket path \"", path, "\""));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  std::unique_ptr<BirdClient> c(new BirdClient(fd, timeout));
  c->path_ = path;
  const std::string what = absl::StrCat("BIRD socket ", path);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      return absl::UnavailableError(absl::StrCat(what, ": connect: ", strerror(errno)));
    }
    if (absl::Status s = WaitFd(fd, POLLOUT, deadline, what); !s.ok()) return s;
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return absl::UnavailableError(absl::StrCat(what, ": connect: ", strerror(err)));
  }
  absl::StatusOr<BirdReply> hello = c->ReadReply(deadline);
  if (!hello.ok()) return hello.status();
  if (hello->final_code() != 1 || hello->lines.size() != 1) {
    return absl::UnavailableError(
        absl::StrCat(what, ": not a BIRD greeting: \"", absl::CEscape(hello->Text()), "\""));
  }
  c->greeting_ = hello->lines[0].text;
  return c;
}

BirdClient::~BirdClient() { Close(); }

void BirdClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

absl::StatusOr<BirdReply> BirdClient::ReadReply(absl::Time deadline) {
  const std::string what = absl::StrCat("BIRD socket ", path_);
  BirdReplyParser parser;
  char buf[16384];
  while (!parser.done()) {
    if (absl::Status s = WaitFd(fd_, POLLIN, deadline, what); !s.ok()) {
      Close();
      return s;
    }
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      const std::string why = n == 0 ? "BIRD closed the connection" : strerror(errno);
      Close();
      return absl::UnavailableError(absl::StrCat(what, ": ", why));
    }
    if (absl::Status s = parser.Feed(absl::string_view(buf, n)); !s.ok()) {
      Close();
      return absl::UnavailableError(absl::StrCat(what, ": ", s.message()));
    }
  }
  return parser.reply();
}

absl::StatusOr<BirdReply> BirdClient::Command(const std::string& cmd) {
  if (cmd.empty() || cmd.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad BIRD command \"", absl::CEscape(cmd), "\""));
  }
  if (fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("BIRD socket ", path_, ": connection closed"));
  }
  const absl::Time deadline = absl::Now() + timeout_;
  const std::string what = absl::StrCat("BIRD socket ", path_);
  const std::string line = cmd + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (absl::Status s = WaitFd(fd_, POLLOUT, deadline, what); !s.ok()) {
        Close();
        return s;
      }
      continue;
    }
    if (n < 0) {
      const int err = errno;
      Close();
      return absl::UnavailableError(absl::StrCat(what, ": send: ", strerror(err)));
    }
    sent += static_cast<size_t>(n);
  }
  absl::StatusOr<BirdReply> reply = ReadReply(deadline);
  if (!reply.ok()) return reply.status();
  if (absl::Status s = BirdReplyStatus(*reply); !s.ok()) return s;
  return reply;
}

absl::Status BirdClient::CheckConfig(const std::string& file) {
  absl::StatusOr<std::string> q = QuoteFile(file);
  if (!q.ok()) return q.status();
  absl::StatusOr<BirdReply> r = Command(absl::StrCat("configure check ", *q));
  if (!r.ok()) return r.status();
  if (r->final_code() != 20) {  // 0020 Configuration OK
    return absl::InternalError(absl::StrCat("unexpected reply to configure check: ", r->Text()));
  }
  return absl::OkStatus();
}

absl::Status BirdClient::Configure(const std::string& file) {
  absl::StatusOr<std::string> q = QuoteFile(file);
  if (!q.ok()) return q.status();
  absl::StatusOr<BirdReply> r = Command(absl::StrCat("configure ", *q));
  if (!r.ok()) return r.status();
  switch (r->final_code()) {
    case 3:  // Reconfigured
    case 4:  // Reconfiguration in progress (old protocols still shutting down)
    case 5:  // Reconfiguration already in progress, queueing
      return absl::OkStatus();
    case 6:  // Reconfiguration ignored, shutting down
      return absl::UnavailableError(absl::StrCat("BIRD is shutting down: ", r->Text()));
    default:
      return absl::InternalError(absl::StrCat("unexpected reply to configure: ", r->Text()));
  }
}

absl::StatusOr<std::vector<BirdProtocol>> BirdClient::ShowProtocols() {
  absl::StatusOr<BirdReply> r = Command("show protocols");
  if (!r.ok()) return r.status();
  return ParseShowProtocols(*r);
}

absl::StatusOr<std::vector<OspfNeighbor>> BirdClient::OspfNeighbors(const std::string& protocol) {
  if (!IsBirdSymbol(protocol)) {
    return absl::InvalidArgumentError(absl::StrCat("bad BIRD protocol name \"", protocol, "\""));
  }
  absl::StatusOr<BirdReply> r = Command(absl::StrCat("show ospf neighbors ", protocol));
  if (!r.ok()) return r.status();
  absl::StatusOr<std::vector<OspfNeighbor>> n = ParseOspfNeighbors(*r);
  if (n.ok()) {
    for (auto& x : *n) x.protocol = protocol;
  }
  return n;
}

absl::StatusOr<std::vector<OspfStateRouter>> BirdClient::OspfState(const std::string& protocol) {
  if (!IsBirdSymbol(protocol)) {
    return absl::InvalidArgumentError(absl::StrCat("bad BIRD protocol name \"", protocol, "\""));
  }
  absl::StatusOr<BirdReply> r = Command(absl::StrCat("show ospf state all ", protocol));
  if (!r.ok()) return r.status();
  return ParseOspfState(*r);
}

}  // namespace lb
