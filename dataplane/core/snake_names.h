// Counter and log names from enumerator names: "kTruncatedIpv4" -> "truncated_ipv4". Built once
// from the X-macro lists (parse statuses, drop reasons), so names cannot drift from the enums.
#ifndef LBNODE_DATAPLANE_CORE_SNAKE_NAMES_H_
#define LBNODE_DATAPLANE_CORE_SNAKE_NAMES_H_

#include <cstddef>

namespace lb {

template <size_t N, size_t kMaxLen = 48>
struct SnakeNames {
  char names[N][kMaxLen];

  explicit SnakeNames(const char* const (&enumerators)[N]) {
    for (size_t i = 0; i < N; ++i) {
      const char* src = enumerators[i] + 1;  // skip the leading 'k'
      size_t o = 0;
      for (size_t j = 0; src[j] != '\0' && o + 2 < kMaxLen; ++j) {
        const char c = src[j];
        if (c >= 'A' && c <= 'Z') {
          if (j > 0) names[i][o++] = '_';
          names[i][o++] = static_cast<char>(c - 'A' + 'a');
        } else {
          names[i][o++] = c;
        }
      }
      names[i][o] = '\0';
    }
  }
};

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_SNAKE_NAMES_H_
