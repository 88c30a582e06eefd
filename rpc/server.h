#ifndef RESIDENCY_RPC_SERVER_H_
#define RESIDENCY_RPC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace residency::rpc {

struct ServerOptions {
  // host:port; port 0 picks a free one (see Server::port()).
  std::string listen_address = "127.0.0.1:0";
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Registered in order; not owned, must outlive the Server.
  std::vector<grpc::Service*> services;
  // The name the health service reports SERVING for while the server runs
  // ("residency.v1.KeyService").
  std::string health_service_name;
  // Larger messages are refused by gRPC (RESOURCE_EXHAUSTED) before parsing.
  int max_receive_message_bytes = 4 << 20;
  // Synchronous handlers that may run at once (one per call in progress);
  // a call beyond them is refused with RESOURCE_EXHAUSTED. 0 leaves gRPC's
  // default.
  int max_threads = 0;
  // When > 0: the HTTP/2 flow-control window of each stream stays at this
  // many bytes (no bandwidth-delay probing growing it), which bounds what a
  // fast sender can make the server buffer per stream.
  int stream_window_bytes = 0;
};

// A started gRPC server with the standard health service and server
// reflection, as every residency service runs. Destruction shuts it down.
class Server {
 public:
  // UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();

  int port() const { return port_; }
  // host:port a client on this machine can dial (a wildcard host becomes
  // 127.0.0.1).
  std::string address() const;

  // What the health service reports for health_service_name, and for the
  // whole server (the empty name, which probes ask by default), while the
  // server runs (SERVING from the start). No effect after Shutdown.
  void SetServing(bool serving);

  // Reports NOT_SERVING (for the service and the whole server), stops
  // accepting calls and waits up to `grace` for those in flight.
  // Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(2));
  // Blocks until Shutdown.
  void Wait();

 private:
  Server() = default;

  std::unique_ptr<grpc::Server> server_;
  std::string health_service_name_;
  std::string host_;
  int port_ = 0;
  absl::Mutex mu_;  // orders SetServing against Shutdown
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// Carries the state that one part of a service reports (a store that stops
// writing, an audit log that fails) to the health service of a Server that
// starts after that part and stops before it. One reporter per relay: the
// last state set wins. Shared between the reporter and the owner of the
// Server; thread-safe.
class ServingRelay {
 public:
  // The state to report; `server`, once attached, reports it at once.
  void SetServing(bool serving);
  // `server` reports the state from now on (NOT_SERVING at once if it is
  // so); null detaches, before the Server goes.
  void Attach(Server* server);

 private:
  absl::Mutex mu_;
  Server* server_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool serving_ ABSL_GUARDED_BY(mu_) = true;
};

// For a service binary's main: writes the bound port to `port_file` (when
// not empty; written whole under a temporary name, then renamed), then
// serves until SIGINT or SIGTERM, then shuts down. Call BlockShutdownSignals
// first thing in main, before any thread starts.
absl::Status ServeUntilSignal(Server& server, const std::string& port_file,
                              absl::string_view name);
void BlockShutdownSignals();

// For the main of a binary that holds keys: no core dump of this process
// (RLIMIT_CORE 0, and not dumpable, which also keeps other processes of the
// same user from ptrace-attaching or reading its memory through /proc), so
// a crash cannot leave data keys, KEKs or the root key in a core file.
// INTERNAL when the kernel refuses.
absl::Status ForbidCoreDumps();

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_SERVER_H_
