#include "control/api_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "control/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"

namespace lb {
namespace {

template <typename T>
grpc::Status Versioned(const absl::StatusOr<uint64_t>& v, T* resp) {
  if (!v.ok()) return ToGrpc(v.status());
  resp->set_version(*v);
  return grpc::Status::OK;
}

absl::StatusOr<std::string> ReadPem(const std::string& field, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(field, ": cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  if (s.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, " is not a PEM file"));
  }
  return s.str();
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& st) {
  if (st.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

#define LB_REQUIRE_VIP(req) \
  if (!(req)->has_vip()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "vip: required")

grpc::Status ApiService::CreateVip(grpc::ServerContext*, const v1::CreateVipRequest* req,
                                   v1::CreateVipResponse* resp) {
  LB_REQUIRE_VIP(req);
  return Versioned(ctl_->CreateVip(req->vip()), resp);
}

grpc::Status ApiService::DeleteVip(grpc::ServerContext*, const v1::DeleteVipRequest* req,
                                   v1::DeleteVipResponse* resp) {
  LB_REQUIRE_VIP(req);
  return Versioned(ctl_->DeleteVip(req->vip()), resp);
}

grpc::Status ApiService::ListVips(grpc::ServerContext*, const v1::ListVipsRequest*,
                                  v1::ListVipsResponse* resp) {
  *resp = ctl_->ListVips();
  return grpc::Status::OK;
}

grpc::Status ApiService::AddBackend(grpc::ServerContext*, const v1::AddBackendRequest* req,
                                    v1::AddBackendResponse* resp) {
  LB_REQUIRE_VIP(req);
  if (!req->has_backend()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "backend: required");
  }
  return Versioned(ctl_->AddBackend(req->vip(), req->backend()), resp);
}

grpc::Status ApiService::RemoveBackend(grpc::ServerContext*, const v1::RemoveBackendRequest* req,
                                       v1::RemoveBackendResponse* resp) {
  LB_REQUIRE_VIP(req);
  return Versioned(ctl_->RemoveBackend(req->vip(), req->address()), resp);
}

grpc::Status ApiService::UpdateBackend(grpc::ServerContext*, const v1::UpdateBackendRequest* req,
                                       v1::UpdateBackendResponse* resp) {
  LB_REQUIRE_VIP(req);
  return Versioned(ctl_->UpdateBackend(*req), resp);
}

grpc::Status ApiService::ApplyConfig(grpc::ServerContext*, const v1::ApplyConfigRequest* req,
                                     v1::ApplyConfigResponse* resp) {
  auto r = ctl_->ApplyConfig(*req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status ApiService::GetConfig(grpc::ServerContext*, const v1::GetConfigRequest*,
                                   v1::GetConfigResponse* resp) {
  *resp->mutable_config() = ctl_->GetConfig();
  return grpc::Status::OK;
}

grpc::Status ApiService::GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                                   v1::GetStatusResponse* resp) {
  *resp = ctl_->GetStatus();
  return grpc::Status::OK;
}

grpc::Status ApiService::DrainNode(grpc::ServerContext*, const v1::DrainNodeRequest* req,
                                   v1::DrainNodeResponse* resp) {
  auto r = ctl_->DrainNode(req->timeout_s());
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_report() = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status ApiService::UndrainNode(grpc::ServerContext*, const v1::UndrainNodeRequest*,
                                     v1::UndrainNodeResponse*) {
  return ToGrpc(ctl_->UndrainNode());
}

grpc::Status ApiService::DrainVip(grpc::ServerContext*, const v1::DrainVipRequest* req,
                                  v1::DrainVipResponse* resp) {
  LB_REQUIRE_VIP(req);
  auto r = ctl_->DrainVip(req->vip(), req->timeout_s());
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_report() = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status ApiService::UndrainVip(grpc::ServerContext*, const v1::UndrainVipRequest* req,
                                    v1::UndrainVipResponse*) {
  LB_REQUIRE_VIP(req);
  return ToGrpc(ctl_->UndrainVip(req->vip()));
}

grpc::Status ApiService::GetStats(grpc::ServerContext*, const v1::GetStatsRequest* req,
                                  v1::GetStatsResponse* resp) {
  *resp = ctl_->GetStats(req->count_connections());
  return grpc::Status::OK;
}

grpc::Status ApiService::Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                               grpc::ServerWriter<v1::Event>* writer) {
  std::shared_ptr<EventBus::Subscription> sub = ctl_->events().Subscribe();
  const auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  if (req->initial_state()) {
    const v1::ListVipsResponse current = ctl_->ListVips();
    for (const v1::VipStatus& vs : current.vips()) {
      v1::Event e;
      e.set_unix_ms(now_ms());
      e.set_kind(vs.announce_state() == v1::ANNOUNCE_STATE_ANNOUNCED ? v1::Event::KIND_ANNOUNCE
                                                                     : v1::Event::KIND_WITHDRAW);
      *e.mutable_vip() = KeyOf(vs.vip());
      e.set_message(absl::StrCat("current: ", v1::AnnounceState_Name(vs.announce_state()),
                                 vs.withdraw_reason().empty() ? "" : " (", vs.withdraw_reason(),
                                 vs.withdraw_reason().empty() ? "" : ")"));
      if (!writer->Write(e)) break;
      for (const v1::BackendStatus& b : vs.backends()) {
        v1::Event h;
        h.set_unix_ms(now_ms());
        h.set_kind(v1::Event::KIND_HEALTH);
        *h.mutable_vip() = KeyOf(vs.vip());
        h.set_backend(b.backend().address());
        h.set_healthy(b.healthy());
        h.set_message(absl::StrCat("current: ", b.healthy() ? "healthy" : "unhealthy",
                                   b.checked() ? "" : " (not checked yet)"));
        if (!writer->Write(h)) break;
      }
    }
  }
  while (!ctx->IsCancelled() && !shutting_down_) {
    std::optional<v1::Event> e = sub->Next(std::chrono::milliseconds(200));
    if (!e) {
      if (sub->closed()) break;
      continue;
    }
    if (!writer->Write(*e)) break;
  }
  ctl_->events().Unsubscribe(sub);
  return grpc::Status::OK;
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartApiServer(const v1::ApiConfig& api,
                                                             ApiService* service) {
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string sock = api.unix_socket().empty() ? kDefaultApiSocket : api.unix_socket();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(sock).parent_path(), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("api.unix_socket: cannot create the directory of ", sock, ": ", ec.message()));
  }
  // A socket left by a previous lbnode that died: gRPC cannot bind over it.
  struct stat st;
  if (lstat(sock.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("api.unix_socket: ", sock, " exists and is not a socket"));
    }
    unlink(sock.c_str());
  }
  builder.AddListeningPort("unix:" + sock, grpc::InsecureServerCredentials());
  int tcp_port = 0;
  if (!api.tcp_listen().empty()) {
    if (api.tls_cert().empty() || api.tls_key().empty()) {
      return absl::InvalidArgumentError(
          "api.tcp_listen: a TCP listener needs api.tls_cert and api.tls_key (no plaintext TCP)");
    }
    auto cert = ReadPem("api.tls_cert", api.tls_cert());
    if (!cert.ok()) return cert.status();
    auto key = ReadPem("api.tls_key", api.tls_key());
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({*key, *cert});
    if (!api.tls_client_ca().empty()) {
      auto ca = ReadPem("api.tls_client_ca", api.tls_client_ca());
      if (!ca.ok()) return ca.status();
      opts.pem_root_certs = *ca;
      opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    builder.AddListeningPort(api.tcp_listen(), grpc::SslServerCredentials(opts), &tcp_port);
  }
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on unix:", sock, api.tcp_listen().empty() ? "" : " or ", api.tcp_listen()));
  }
  if (!api.tcp_listen().empty() && tcp_port == 0) {
    server->Shutdown();
    return absl::InvalidArgumentError(
        absl::StrCat("api.tcp_listen: cannot listen on ", api.tcp_listen()));
  }
  const mode_t mode = api.unix_socket_mode() ? api.unix_socket_mode() : 0660;
  chmod(sock.c_str(), mode);
  Log(LogLevel::kInfo,
      absl::StrCat(
          "API listening on unix:", sock, " (mode 0", absl::StrFormat("%o", mode), ")",
          api.tcp_listen().empty()
              ? ""
              : absl::StrCat(" and ", api.tcp_listen(), " (TLS",
                             api.tls_client_ca().empty() ? "" : ", client certificates required",
                             ")")));
  return server;
}

}  // namespace lb
