// BirdClient: a client for BIRD 2's control socket, the line protocol birdc speaks. Each reply
// line is "NNNN-text" (more follows), "NNNN text" (last line) or " text" (continues the previous
// code); 0xxx is success, 1xxx/2xxx carry data, 8xxx/9xxx are errors. Every operation has a
// deadline: a BIRD that is not running, not answering or answering garbage gives
// UNAVAILABLE and never blocks past the timeout. Not thread-safe: one caller at a time (the
// control thread); a connection whose reply was cut short is closed, never reused.
#ifndef LBNODE_ROUTING_BIRD_CLIENT_H_
#define LBNODE_ROUTING_BIRD_CLIENT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lb {

struct BirdReplyLine {
  int code = 0;  // continuation lines (" text") carry the code of the line they continue
  std::string text;
};

struct BirdReply {
  std::vector<BirdReplyLine> lines;

  int final_code() const { return lines.empty() ? -1 : lines.back().code; }
  // The text of every line with `code`, in order.
  std::vector<std::string> TextOf(int code) const;
  // All lines, "\n"-joined (for logs and error messages).
  std::string Text() const;
};

// Bounds on one reply; a longer line or reply means the peer is not a sane BIRD.
inline constexpr size_t kMaxBirdLine = 64 * 1024;
inline constexpr size_t kMaxBirdReply = 16 * 1024 * 1024;

// Incremental parser of one reply. Feed() bytes as they arrive until done(). A malformed line
// (no 4-digit code, a continuation before any code, bytes after the final line) is an error;
// the caller must then drop the connection.
class BirdReplyParser {
 public:
  absl::Status Feed(absl::string_view data);
  bool done() const { return done_; }
  const BirdReply& reply() const { return reply_; }

 private:
  absl::Status Line(absl::string_view line);

  std::string partial_;
  BirdReply reply_;
  size_t total_ = 0;
  bool done_ = false;
};

// Parses one complete reply (every line newline-terminated).
absl::StatusOr<BirdReply> ParseBirdReply(absl::string_view text);

// OK for a reply without error codes; otherwise an error carrying BIRD's text, e.g.
// INVALID_ARGUMENT "BIRD 8002: /etc/bird.conf:3:1 syntax error". 9xxx (the CLI refused the
// command) and 8002 (configuration error) map to INVALID_ARGUMENT, 8001/8003 (no such route or
// protocol) to NOT_FOUND, 8007 to PERMISSION_DENIED, other 8xxx to FAILED_PRECONDITION.
absl::Status BirdReplyStatus(const BirdReply& reply);

// A row of `show protocols`.
struct BirdProtocol {
  std::string name;
  std::string proto;  // "OSPF", "BFD", "Device", ...
  std::string table;  // "master4", "---"
  std::string state;  // "up", "down", "start", ...
  std::string since;  // as BIRD prints it (one or two words, depending on timeformat)
  std::string info;   // "Running", "Alone", an error text, or empty
};
absl::StatusOr<std::vector<BirdProtocol>> ParseShowProtocols(const BirdReply& reply);

// A row of `show ospf neighbors`.
struct OspfNeighbor {
  std::string protocol;   // the OSPF protocol instance that reported it
  std::string router_id;  // "10.0.0.1"
  int priority = 0;
  std::string state;  // "Full", "2-Way", "ExStart", "Init", ...
  std::string role;   // after the '/': "DR", "BDR", "PtP", "DROther", or empty
  std::string interface;
  std::string address;  // the neighbour's interface address (link-local for OSPFv3)

  bool full() const { return state == "Full"; }
};
absl::StatusOr<std::vector<OspfNeighbor>> ParseOspfNeighbors(const BirdReply& reply);

// One router of `show ospf state all <proto>`: what its router-LSA (and, for OSPFv3, its
// intra-area-prefix LSAs) carry in the local link-state database.
struct OspfStateRouter {
  std::string area;       // "0.0.0.0"
  std::string router_id;  // "10.0.0.11"
  bool reachable = true;
  std::vector<std::string> stubnets;  // "10.0.100.1/32" (prefixes as BIRD prints them)
};
absl::StatusOr<std::vector<OspfStateRouter>> ParseOspfState(const BirdReply& reply);

class BirdClient {
 public:
  // Connects to BIRD's control socket and reads its greeting. UNAVAILABLE if nothing listens,
  // the greeting does not arrive within `timeout`, or it is not a BIRD greeting.
  static absl::StatusOr<std::unique_ptr<BirdClient>> Connect(const std::string& path,
                                                             absl::Duration timeout);
  ~BirdClient();
  BirdClient(const BirdClient&) = delete;
  BirdClient& operator=(const BirdClient&) = delete;

  // Sends one command and waits for its whole reply (at most the timeout given to Connect).
  // UNAVAILABLE on timeout, I/O error or a malformed reply (the connection is closed, and every
  // later call returns UNAVAILABLE too). A reply carrying an error code is returned as the
  // error of BirdReplyStatus(). INVALID_ARGUMENT for a command with a newline or NUL.
  absl::StatusOr<BirdReply> Command(const std::string& cmd);

  // `configure check "<file>"`: BIRD parses `file` without applying it. The error carries
  // BIRD's message ("file:line:col ...").
  absl::Status CheckConfig(const std::string& file);
  // `configure "<file>"`: BIRD reconfigures protocols in place where it can; an OSPF
  // instance whose stubnets change keeps its adjacencies (tested). Plain `configure`, not
  // `configure soft`: soft only skips re-feeding routes after filter changes, and the node's
  // channels have no filters to change (import none, export none).
  absl::Status Configure(const std::string& file);

  absl::StatusOr<std::vector<BirdProtocol>> ShowProtocols();
  // Neighbours of one OSPF protocol instance.
  absl::StatusOr<std::vector<OspfNeighbor>> OspfNeighbors(const std::string& protocol);
  // The link-state database view of one OSPF protocol instance (`show ospf state all`).
  absl::StatusOr<std::vector<OspfStateRouter>> OspfState(const std::string& protocol);

  // "BIRD 2.0.12 ready." from the greeting.
  const std::string& greeting() const { return greeting_; }

 private:
  BirdClient(int fd, absl::Duration timeout) : fd_(fd), timeout_(timeout) {}
  absl::StatusOr<BirdReply> ReadReply(absl::Time deadline);
  void Close();

  int fd_ = -1;
  absl::Duration timeout_;
  std::string greeting_;
  std::string path_;
};

// A BIRD symbol (protocol name): letters, digits and '_', not starting with a digit.
bool IsBirdSymbol(absl::string_view s);

}  // namespace lb

#endif  // LBNODE_ROUTING_BIRD_CLIENT_H_
