#ifndef RESIDENCY_RPC_PROCESS_H_
#define RESIDENCY_RPC_PROCESS_H_

// Running the project's binaries as separate processes: a command run to
// completion with its output captured, and a server (key_service,
// storage_node) started on an ephemeral loopback port that it reports in a
// port file. Used by the tests and by the simulator's --spawn mode.

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
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
// The child's environment is this process's, plus `env` ("NAME=value"),
// which replaces an inherited variable of the same name. The timeout covers
// the child's exit too, not only its output. INTERNAL when it cannot be
// started.
//
// Every child started here (this, ChildProcess, ServerProcess) starts with
// no signal blocked and SIGTERM, SIGINT, SIGHUP and SIGPIPE at their
// defaults, and is killed (SIGKILL) if this process ends first.
absl::StatusOr<ProcessResult> RunProcess(
    const std::string& binary, const std::vector<std::string>& args,
    absl::Duration timeout = absl::Seconds(60),
    const std::vector<std::string>& env = {});

// A long-running child process, its stdin and stdout /dev/null and its
// stderr appended to a log file. Killed (SIGKILL) when destroyed, and also
// when this process ends without destroying it (a crash, a kill, a test
// timeout), so no server or Ceph daemon is left running behind it.
class ChildProcess {
 public:
  // Starts `binary` (a path) with `args`. INTERNAL when it cannot be run.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      const std::string& log_path);

  virtual ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

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
  // Sends `signal` without waiting (SIGSTOP, SIGCONT, ...).
  void Signal(int signal);

 protected:
  ChildProcess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}

 private:
  pid_t pid_;
  int exit_code_ = -1;
  std::string log_path_;
};

// A server binary (key_service, storage_node) in its own process, started
// with `args` plus --listen=127.0.0.1:0 and --port_file, its stderr
// appended to `dir`/`name`.log.
class ServerProcess final : public ChildProcess {
 public:
  // Waits up to `timeout` for the port file. UNAVAILABLE with the server's
  // log when it exits or times out first.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, std::vector<std::string> args,
      const std::string& dir, const std::string& name,
      absl::Duration timeout = absl::Seconds(30));

  int port() const { return port_; }
  // "127.0.0.1:PORT".
  std::string address() const;

 private:
  ServerProcess(pid_t pid, int port, std::string log_path)
      : ChildProcess(pid, std::move(log_path)), port_(port) {}

  int port_;
};

// The whole contents of a file ("" when it cannot be read).
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace residency::process

#endif  // RESIDENCY_RPC_PROCESS_H_
