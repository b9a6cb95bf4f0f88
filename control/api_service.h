// The gRPC LoadBalancer service: a thin layer that maps requests onto the NodeController and
// absl::Status codes onto gRPC status codes. Also the server setup: the Unix socket (always, mode
// set after bind) and an optional TCP listener that requires TLS (mutual when a client CA is
// given). Plaintext TCP is refused.
#ifndef LBNODE_CONTROL_API_SERVICE_H_
#define LBNODE_CONTROL_API_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "control/node_controller.h"
#include "grpcpp/grpcpp.h"
#include "lb/v1/node.pb.h"
#include "lb/v1/service.grpc.pb.h"

namespace lb {

class ApiService final : public v1::LoadBalancer::Service {
 public:
  explicit ApiService(NodeController* controller) : ctl_(controller) {}
  void Shutdown() { shutting_down_ = true; }

  grpc::Status CreateVip(grpc::ServerContext*, const v1::CreateVipRequest*,
                         v1::CreateVipResponse*) override;
  grpc::Status DeleteVip(grpc::ServerContext*, const v1::DeleteVipRequest*,
                         v1::DeleteVipResponse*) override;
  grpc::Status ListVips(grpc::ServerContext*, const v1::ListVipsRequest*,
                        v1::ListVipsResponse*) override;
  grpc::Status AddBackend(grpc::ServerContext*, const v1::AddBackendRequest*,
                          v1::AddBackendResponse*) override;
  grpc::Status RemoveBackend(grpc::ServerContext*, const v1::RemoveBackendRequest*,
                             v1::RemoveBackendResponse*) override;
  grpc::Status UpdateBackend(grpc::ServerContext*, const v1::UpdateBackendRequest*,
                             v1::UpdateBackendResponse*) override;
  grpc::Status ApplyConfig(grpc::ServerContext*, const v1::ApplyConfigRequest*,
                           v1::ApplyConfigResponse*) override;
  grpc::Status GetConfig(grpc::ServerContext*, const v1::GetConfigRequest*,
                         v1::GetConfigResponse*) override;
  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                         v1::GetStatusResponse*) override;
  grpc::Status DrainNode(grpc::ServerContext*, const v1::DrainNodeRequest*,
                         v1::DrainNodeResponse*) override;
  grpc::Status UndrainNode(grpc::ServerContext*, const v1::UndrainNodeRequest*,
                           v1::UndrainNodeResponse*) override;
  grpc::Status DrainVip(grpc::ServerContext*, const v1::DrainVipRequest*,
                        v1::DrainVipResponse*) override;
  grpc::Status UndrainVip(grpc::ServerContext*, const v1::UndrainVipRequest*,
                          v1::UndrainVipResponse*) override;
  grpc::Status GetStats(grpc::ServerContext*, const v1::GetStatsRequest*,
                        v1::GetStatsResponse*) override;
  grpc::Status Watch(grpc::ServerContext*, const v1::WatchRequest*,
                     grpc::ServerWriter<v1::Event>*) override;

 private:
  NodeController* ctl_;
  std::atomic<bool> shutting_down_{false};
};

grpc::Status ToGrpc(const absl::Status& st);

// Builds and starts the server on the configured listeners. Errors name the config field.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartApiServer(const v1::ApiConfig& api,
                                                             ApiService* service);

// Default Unix socket path.
inline constexpr char kDefaultApiSocket[] = "/run/lbnode/lbnode.sock";

}  // namespace lb

#endif  // LBNODE_CONTROL_API_SERVICE_H_
