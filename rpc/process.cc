#include "rpc/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"

extern char** environ;

namespace residency::process {
namespace {

std::vector<char*> Argv(const std::string& binary,
                        std::vector<std::string>& args) {
  std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// Exit code, or -signal.
int Decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

// The thread every child is forked from (see OnSpawnerThread). Leaked on
// purpose, with its detached thread: both must outlast every caller, static
// destructors included.
struct Spawner {
  bool Idle() const ABSL_SHARED_LOCKS_REQUIRED(mu) { return !busy; }
  bool HasTask() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return task != nullptr;
  }
  bool TaskDone() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return task == nullptr;
  }
  const pid_t owner = ::getpid();  // the process the thread runs in
  absl::Mutex mu;
  bool busy ABSL_GUARDED_BY(mu) = false;  // a caller's task is in hand
  std::function<pid_t()> task ABSL_GUARDED_BY(mu);  // cleared when run
  pid_t result ABSL_GUARDED_BY(mu) = -1;
};

Spawner* StartSpawner() {
  auto* s = new Spawner;
  // The thread inherits the mask it is created with: it blocks every
  // signal meant for the process's own handling, and leaves the ones a
  // fault raises to do their work.
  sigset_t blocked, old;
  sigfillset(&blocked);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) {
    sigdelset(&blocked, sig);
  }
  pthread_sigmask(SIG_SETMASK, &blocked, &old);
  struct RestoreMask {
    ~RestoreMask() { pthread_sigmask(SIG_SETMASK, old, nullptr); }
    const sigset_t* old;
  } restore{&old};
  std::thread([s] {
    for (;;) {
      absl::MutexLock lock(&s->mu);
      s->mu.Await(absl::Condition(s, &Spawner::HasTask));
      s->result = s->task();
      s->task = nullptr;
    }
  }).detach();
  return s;
}

// Runs `spawn` on a thread that lives as long as the process, one call at a
// time. Linux sends a child's parent-death signal when the *thread* that
// forked it ends, not the process, so children must not be forked from a
// thread that may end before them (a benchmark's worker, say).
pid_t OnSpawnerThread(std::function<pid_t()> spawn) {
  static absl::Mutex* const setup = new absl::Mutex;
  static Spawner* spawner = nullptr;  // guarded by *setup
  Spawner* s;
  {
    absl::MutexLock lock(setup);
    // A process forked from this one has the pointer but not the thread.
    if (spawner == nullptr || spawner->owner != ::getpid()) {
      spawner = StartSpawner();
    }
    s = spawner;
  }
  absl::MutexLock lock(&s->mu);
  s->mu.Await(absl::Condition(s, &Spawner::Idle));
  s->busy = true;
  s->task = std::move(spawn);
  s->mu.Await(absl::Condition(s, &Spawner::TaskDone));
  s->busy = false;
  return s->result;
}

// What one of a child's standard descriptors becomes: `path` opened with
// `flags` (mode 0644 if created), or, when `from` >= 0, a copy of `from`.
struct Redirect {
  int fd;
  const char* path;
  int flags;
  int from;
};

// In the child, between fork and exec: only async-signal-safe calls. Any
// failure is reported to the parent as errno through `report`.
[[noreturn]] void ExecChild(const char* binary, char* const* argv,
                            char* const* envp,
                            const std::vector<Redirect>& redirects,
                            pid_t parent, int report) {
  int error = 0;
  // Killed when the spawning thread ends, which is when this process
  // ends, whether it exits, crashes or is killed; and if it has already
  // ended, the child does not start.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) error = errno;
  if (error == 0 && ::getppid() != parent) error = ESRCH;
  // A source on a standard descriptor that an earlier redirect may replace
  // is first moved out of the way (above 2).
  int from[3] = {-1, -1, -1};
  for (size_t i = 0; i < redirects.size() && error == 0; ++i) {
    from[i] = redirects[i].from;
    if (from[i] >= 0 && from[i] <= STDERR_FILENO &&
        from[i] != redirects[i].fd) {
      from[i] = ::fcntl(from[i], F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
      if (from[i] < 0) error = errno;
    }
  }
  for (size_t i = 0; i < redirects.size(); ++i) {
    if (error != 0) break;
    const Redirect& r = redirects[i];
    const int fd =
        r.from >= 0 ? from[i] : ::open(r.path, r.flags | O_CLOEXEC, 0644);
    if (fd < 0) {
      error = errno;
    } else if (fd == r.fd) {  // already in place: keep it open on exec
      if (::fcntl(fd, F_SETFD, 0) != 0) error = errno;
    } else {
      if (::dup2(fd, r.fd) < 0) error = errno;
      if (r.from < 0) ::close(fd);
    }
  }
  // A child starts with no signal blocked and the default handlers,
  // whatever this process blocks or ignores (a signal-waiting holder
  // blocks SIGTERM, which the child would otherwise inherit).
  if (error == 0) {
    struct sigaction defaults = {};
    defaults.sa_handler = SIG_DFL;
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) {
      ::sigaction(sig, &defaults, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::execve(binary, argv, envp);
    error = errno;
  }
  (void)!::write(report, &error, sizeof(error));
  ::_exit(127);
}

// Starts `binary` with `args`, this process's environment plus `env`
// ("NAME=value"), and its standard descriptors set up by `redirects`. The
// child is killed (SIGKILL) if this process ends first, however it ends, so
// nothing started here outlives a crashed test or simulator. INTERNAL when
// it cannot be started.
absl::StatusOr<pid_t> Spawn(const std::string& binary,
                            std::vector<std::string> args,
                            const std::vector<std::string>& env,
                            const std::vector<Redirect>& redirects) {
  if (redirects.size() > 3) {
    return absl::InternalError("a child has three standard descriptors");
  }
  // Everything the child needs is built before the fork. A variable in
  // `env` replaces an inherited one of the same name (programs disagree on
  // which of two copies counts).
  std::vector<char*> argv = Argv(binary, args);
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  if (!env.empty()) {
    auto overridden = [&env](absl::string_view entry) {
      const absl::string_view name = entry.substr(0, entry.find('='));
      for (const std::string& e : env) {
        if (absl::string_view(e).substr(0, e.find('=')) == name) return true;
      }
      return false;
    };
    for (char** e = environ; *e != nullptr; ++e) {
      if (!overridden(*e)) env_strings.push_back(*e);
    }
    env_strings.insert(env_strings.end(), env.begin(), env.end());
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  char* const* const child_env = env.empty() ? environ : envp.data();
  const pid_t parent = ::getpid();
  // The report pipe is made, and its write end closed, on the spawner thread
  // around the fork: no other child forked there inherits it. A child that
  // kept it would hold up the read below.
  int report[2] = {-1, -1};
  std::string failed;
  int failure = 0;
  const pid_t pid = OnSpawnerThread([&]() -> pid_t {
    if (::pipe2(report, O_CLOEXEC) != 0) {
      failed = "pipe";
      failure = errno;
      return -1;
    }
    // Kept off the standard descriptors, which the child's redirects
    // replace (they are free only when this process closed them).
    for (int& end : report) {
      if (end > STDERR_FILENO) continue;
      const int moved = ::fcntl(end, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
      if (moved < 0) {
        failed = "pipe";
        failure = errno;
        ::close(report[0]);
        ::close(report[1]);
        return -1;
      }
      ::close(end);
      end = moved;
    }
    const pid_t child = ::fork();
    if (child == 0) {
      ExecChild(binary.c_str(), argv.data(), child_env, redirects, parent,
                report[1]);
    }
    if (child < 0) {
      failed = "fork";
      failure = errno;
      ::close(report[0]);
    }
    ::close(report[1]);
    return child;
  });
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("cannot run ", binary, ": ", failed,
                                            ": ", std::strerror(failure)));
  }
  // The write end closes on exec: nothing to read means the exec happened.
  int error = 0;
  ssize_t got;
  do {
    got = ::read(report[0], &error, sizeof(error));
  } while (got < 0 && errno == EINTR);
  ::close(report[0]);
  if (got == static_cast<ssize_t>(sizeof(error))) {
    ::waitpid(pid, nullptr, 0);
    return absl::InternalError(
        absl::StrCat("cannot run ", binary, ": ", std::strerror(error)));
  }
  return pid;
}

// Spawns `binary` with stdin and stdout from/to /dev/null and stderr
// appended to `log_path`.
absl::StatusOr<pid_t> SpawnLogged(const std::string& binary,
                                  std::vector<std::string> args,
                                  const std::string& log_path) {
  return Spawn(
      binary, std::move(args), {},
      {{STDIN_FILENO, "/dev/null", O_RDONLY, -1},
       {STDOUT_FILENO, "/dev/null", O_WRONLY, -1},
       {STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, -1}});
}

}  // namespace

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

absl::StatusOr<ProcessResult> RunProcess(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         absl::Duration timeout,
                                         const std::vector<std::string>& env) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  absl::StatusOr<pid_t> spawned =
      Spawn(binary, args, env,
            {{STDIN_FILENO, "/dev/null", O_RDONLY, -1},
             {STDOUT_FILENO, nullptr, 0, out_pipe[1]},
             {STDERR_FILENO, nullptr, 0, err_pipe[1]}});
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (!spawned.ok()) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return spawned.status();
  }
  const pid_t pid = *spawned;
  ProcessResult result;
  const absl::Time deadline = absl::Now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open = 2;
  char buffer[65536];
  while (open > 0) {
    const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(wait_ms)) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (pollfd& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  // A child may close its output and keep running: the timeout holds for
  // its exit too.
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, result.timed_out ? 0 : WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      status = -1;
      break;
    }
    if (!result.timed_out && absl::Now() >= deadline) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
    } else if (!result.timed_out) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  result.exit_code = status == -1 ? -1 : Decode(status);
  return result;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::string& binary, const std::vector<std::string>& args,
    const std::string& log_path) {
  absl::StatusOr<pid_t> pid = SpawnLogged(binary, args, log_path);
  if (!pid.ok()) return pid.status();
  return std::unique_ptr<ChildProcess>(new ChildProcess(*pid, log_path));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, std::vector<std::string> args,
    const std::string& dir, const std::string& name, absl::Duration timeout) {
  const std::string port_file = absl::StrCat(dir, "/", name, ".port");
  const std::string log_path = absl::StrCat(dir, "/", name, ".log");
  std::filesystem::remove(port_file);
  args.push_back("--listen=127.0.0.1:0");
  args.push_back("--port_file=" + port_file);
  absl::StatusOr<pid_t> spawned =
      SpawnLogged(binary, std::move(args), log_path);
  if (!spawned.ok()) return spawned.status();
  const pid_t pid = *spawned;
  const absl::Time deadline = absl::Now() + timeout;
  int port = 0;
  while (absl::Now() < deadline) {
    // The port file is written whole, then renamed into place.
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFileOrEmpty(port_file)),
                         &port) &&
        port > 0) {
      return std::unique_ptr<ServerProcess>(
          new ServerProcess(pid, port, log_path));
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return absl::UnavailableError(
          absl::StrCat(name, " exited with ", Decode(status),
                       " before serving: ", ReadFileOrEmpty(log_path)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return absl::UnavailableError(absl::StrCat(name, " did not serve within ",
                                             absl::FormatDuration(timeout),
                                             ": ", ReadFileOrEmpty(log_path)));
}

ChildProcess::~ChildProcess() { Stop(SIGKILL); }

std::string ServerProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::string ChildProcess::log() const { return ReadFileOrEmpty(log_path_); }

int ChildProcess::Stop(int signal) {
  if (pid_ <= 0) return exit_code_;
  ::kill(pid_, signal);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  exit_code_ = Decode(status);
  return exit_code_;
}

int ChildProcess::Terminate(absl::Duration grace) {
  if (pid_ <= 0) return exit_code_;
  ::kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  while (absl::Now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = Decode(status);
      return exit_code_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Stop(SIGKILL);
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    exit_code_ = Decode(status);
    return false;
  }
  return true;
}

}  // namespace residency::process
