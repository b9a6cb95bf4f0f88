// Persistence of lbnode's desired state: <state_dir>/state.textproto holds a lb.v1.SavedState in
// protobuf text format (readable, diffable). Every write is atomic: a temporary file in the same
// directory, fsync, rename over the old file, fsync of the directory. A crash at any point leaves
// either the old state or the new one, never a mix.
#ifndef LBNODE_CONTROL_STATE_STORE_H_
#define LBNODE_CONTROL_STATE_STORE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "lb/v1/node.pb.h"

namespace lb {

// Parses protobuf text format into `message`; the error lists every problem with its line and
// column ("line 3 column 7: ...").
absl::Status ParseTextFormat(const std::string& text, google::protobuf::Message* message);

// Writes `contents` to `path` atomically (temp file + fsync + rename + directory fsync).
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);

class StateStore {
 public:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directory if needed (mode 0750) and checks that it is writable.
  absl::Status Init() const;
  // The saved state, or nullopt when none was ever saved. A file that does not parse is an error
  // (lbnode refuses to start rather than forward with a config it cannot read).
  absl::StatusOr<std::optional<v1::SavedState>> Load() const;
  absl::Status Save(const v1::SavedState& state) const;

  std::string path() const { return dir_ + "/state.textproto"; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace lb

#endif  // LBNODE_CONTROL_STATE_STORE_H_
