#ifndef RESIDENCY_RPC_PROCESS_H_
#define RESIDENCY_RPC_PROCESS_H_

// Running the project's binaries as separate processes: a command run to
// completion with its output captured, and a server (key_service,
// storage_node) started on an ephemeral loopback port that it reports in a
// port file. Used by the tests and by the simulator's --spawn mode.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace residency::process {

struct ProcessResult {
  // The exit status; -N when killed by signal N (a timeout kills with
  // SIGKILL).
  int exit_code = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs `binary` with `args` (argv[1...]), stdin from /dev/null, and waits
// up to `timeout` for it to exit; stdout and stderr are captured whole.
// The child's environment is this process's, plus `env` ("NAME=value").
// INTERNAL when it cannot be started.
absl::StatusOr<ProcessResult> RunProcess(
    const std::string& binary, const std::vector<std::string>& args,
    absl::Duration timeout = absl::Seconds(60),
    const std::vector<std::string>& env = {});

// A server binary (key_service, storage_node) in its own process, started
// with `args` plus --listen=127.0.0.1:0 and --port_file, its stderr
// appended to `dir`/`name`.log. Killed (SIGKILL) when destroyed.
class ServerProcess {
 public:
  // Waits up to `timeout` for the port file. UNAVAILABLE with the server's
  // log when it exits or times out first.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, std::vector<std::string> args,
      const std::string& dir, const std::string& name,
      absl::Duration timeout = absl::Seconds(30));

  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:PORT".
  std::string address() const;
  pid_t pid() const { return pid_; }
  // What it wrote to stderr so far.
  std::string log() const;

  // Sends `signal` and waits for the process to exit. Returns its exit
  // status (-N when killed by signal N), or -1 when it was already stopped.
  int Stop(int signal);
  // SIGTERM (a clean shutdown: the services close their stores), then
  // SIGKILL if it has not exited within `grace`. Returns as Stop.
  int Terminate(absl::Duration grace = absl::Seconds(10));
  // False once stopped (or when it has exited on its own).
  bool running();

 private:
  ServerProcess(pid_t pid, int port, std::string log_path)
      : pid_(pid), port_(port), log_path_(std::move(log_path)) {}

  pid_t pid_;
  int port_;
  int exit_code_ = -1;
  std::string log_path_;
};

// The whole contents of a file ("" when it cannot be read).
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace residency::process

#endif  // RESIDENCY_RPC_PROCESS_H_
