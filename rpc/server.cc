#include "rpc/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace residency::rpc {
namespace {

sigset_t ShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  if (options.credentials == nullptr) {
    return absl::InvalidArgumentError("a server needs credentials");
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::unique_ptr<Server> server(new Server());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, options.credentials,
                           &server->port_);
  for (grpc::Service* service : options.services) {
    builder.RegisterService(service);
  }
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (options.max_threads > 0) {
    // The quota counts gRPC's polling threads as well as the handlers: a
    // call that finds no thread is refused ("Server Threadpool Exhausted",
    // RESOURCE_EXHAUSTED). One completion queue with at most kPollers
    // pollers leaves exactly max_threads for handlers.
    constexpr int kPollers = 2;
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS,
                                1);
    builder.SetSyncServerOption(
        grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
    builder.SetSyncServerOption(
        grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kPollers);
    grpc::ResourceQuota quota("residency-server");
    quota.SetMaxThreads(options.max_threads + kPollers);
    builder.SetResourceQuota(quota);
  }
  if (options.stream_window_bytes > 0) {
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                               options.stream_window_bytes);
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use, or not a host:port?)"));
  }
  server->health_service_name_ = options.health_service_name;
  server->server_->GetHealthCheckService()->SetServingStatus(
      server->health_service_name_, true);
  const size_t colon = options.listen_address.rfind(':');
  server->host_ = options.listen_address.substr(0, colon);
  if (server->host_.empty() || server->host_ == "0.0.0.0" ||
      server->host_ == "[::]") {
    server->host_ = "127.0.0.1";
  }
  return server;
}

Server::~Server() { Shutdown(); }

std::string Server::address() const { return absl::StrCat(host_, ":", port_); }

void Server::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_ || server_ == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus(health_service_name_, serving);
  health->SetServingStatus("", serving);
}

void ServingRelay::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  serving_ = serving;
  if (server_ != nullptr) server_->SetServing(serving);
}

void ServingRelay::Attach(Server* server) {
  absl::MutexLock lock(&mu_);
  server_ = server;
  if (server_ != nullptr && !serving_) server_->SetServing(false);
}

void Server::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_ || server_ == nullptr) return;
    shut_down_ = true;
    // NOT_SERVING for every name, the whole server's included, and no
    // change after this.
    server_->GetHealthCheckService()->Shutdown();
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void Server::Wait() {
  if (server_ != nullptr) server_->Wait();
}

absl::Status ForbidCoreDumps() {
  const struct rlimit none = {0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return absl::InternalError(absl::StrCat(
        "cannot turn core dumps off (setrlimit): ", std::strerror(errno)));
  }
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return absl::InternalError(absl::StrCat(
        "cannot make the process undumpable (prctl): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void BlockShutdownSignals() {
  const sigset_t signals = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

absl::Status ServeUntilSignal(Server& server, const std::string& port_file,
                              absl::string_view name) {
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << server.port() << "\n";
    if (std::rename(tmp.c_str(), port_file.c_str()) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot write the port file ", port_file));
    }
  }
  const sigset_t signals = ShutdownSignals();
  std::thread stopper([&server, signals, name = std::string(name)] {
    int received = 0;
    sigwait(&signals, &received);
    std::fprintf(stderr, "%s: signal %d, shutting down\n", name.c_str(),
                 received);
    server.Shutdown();
  });
  server.Wait();
  stopper.join();
  return absl::OkStatus();
}

}  // namespace residency::rpc
