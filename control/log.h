// Minimal structured logging for lbnode: one line per event on stderr,
// "2026-11-25T15:50:01.123Z INFO message key=value ...". Thread-safe (one write per line).
#ifndef LBNODE_CONTROL_LOG_H_
#define LBNODE_CONTROL_LOG_H_

#include <string>

namespace lb {

enum class LogLevel { kDebug = 0, kInfo, kWarning, kError };

void SetLogLevel(LogLevel level);
void Log(LogLevel level, const std::string& message);

}  // namespace lb

#endif  // LBNODE_CONTROL_LOG_H_
