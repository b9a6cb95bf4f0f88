// Prometheus text exposition (format 0.0.4) of a node's counters and state, served on
// GET /metrics by lbnode's metrics listener (cpp-httplib).
#ifndef LBNODE_CONTROL_METRICS_H_
#define LBNODE_CONTROL_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "control/node_controller.h"

namespace lb {

std::string RenderMetrics(const NodeController& controller);

// Serves /metrics on `listen` ("127.0.0.1:9108", "[::1]:9108") from its own thread until the
// returned handle is destroyed.
class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              const NodeController* controller);
  ~MetricsServer();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb

#endif  // LBNODE_CONTROL_METRICS_H_
