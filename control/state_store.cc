#include "control/state_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace lb {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(absl::StrCat("write ", path));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseTextFormat(const std::string& text, google::protobuf::Message* message) {
  struct Collector : google::protobuf::io::ErrorCollector {
    std::string errors;
    void AddError(int line, int column, const std::string& what) override {
      absl::StrAppend(&errors, errors.empty() ? "" : "; ", "line ", line + 1, " column ",
                      column + 1, ": ", what);
    }
  } collector;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(text, message)) return absl::InvalidArgumentError(collector.errors);
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Errno(absl::StrCat("create ", tmp));
  absl::Status st = WriteAll(fd, contents, tmp);
  if (st.ok() && fsync(fd) != 0) st = Errno(absl::StrCat("fsync ", tmp));
  if (close(fd) != 0 && st.ok()) st = Errno(absl::StrCat("close ", tmp));
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    st = Errno(absl::StrCat("rename ", tmp, " to ", path));
  }
  if (!st.ok()) {
    unlink(tmp.c_str());
    return st;
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return absl::OkStatus();
}

absl::Status StateStore::Init() const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("state dir ", dir_, ": ", ec.message()));
  chmod(dir_.c_str(), 0750);
  if (access(dir_.c_str(), W_OK) != 0) return Errno(absl::StrCat("state dir ", dir_));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::SavedState>> StateStore::Load() const {
  std::ifstream in(path());
  if (!in) {
    if (errno == ENOENT) return std::optional<v1::SavedState>();
    return Errno(absl::StrCat("read ", path()));
  }
  std::stringstream text;
  text << in.rdbuf();
  v1::SavedState state;
  if (absl::Status st = ParseTextFormat(text.str(), &state); !st.ok()) {
    return absl::DataLossError(absl::StrCat(path(), ": ", st.message()));
  }
  return std::optional<v1::SavedState>(std::move(state));
}

absl::Status StateStore::Save(const v1::SavedState& state) const {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(state, &text)) {
    return absl::InternalError("cannot serialise the state");
  }
  return WriteFileAtomic(
      path(), "# lbnode desired state; written by lbnode, do not edit while it runs\n" + text);
}

}  // namespace lb
