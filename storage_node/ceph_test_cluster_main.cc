// ceph_test_cluster: starts and stops the throwaway Ceph cluster (one
// monitor, one memstore OSD on 127.0.0.1) that a CTest run shares: the
// "start" test is the fixture's set-up, "stop" its clean-up, and every test
// that needs the cluster finds it through RESIDENCY_CEPH_TEST_DIR.
//
//   ceph_test_cluster start DIR   starts a holder process that runs the
//                                 cluster until stopped, and returns once
//                                 DIR/cluster/ceph.conf takes writes
//   ceph_test_cluster stop DIR    stops the holder, which stops the OSD,
//                                 then the monitor
//
// The holder detaches from the terminal and from CTest's pipes (its output
// goes to DIR/holder.log) and gives up by itself after --lifetime.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "rpc/process.h"
#include "storage_node/ceph_cluster.h"

namespace {

namespace fs = std::filesystem;
using residency::storage_node::CephCluster;
using residency::storage_node::CephClusterOptions;

constexpr int kLifetimeSeconds = 2 * 60 * 60;

void Usage() {
  std::fprintf(stderr,
               "usage: ceph_test_cluster start DIR | stop DIR\n"
               "  start: run a throwaway single-host Ceph cluster in DIR until "
               "stopped\n"
               "  stop:  stop the cluster started in DIR\n");
}

bool Alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  // A zombie nobody reaps is gone too.
  const std::string stat =
      residency::process::ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ||
         stat[paren + 2] != 'Z';
}

// The holder: runs the cluster until SIGTERM, SIGINT or the lifetime ends.
int Hold(const std::string& dir) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  CephClusterOptions options;
  options.dir = dir + "/cluster";
  absl::StatusOr<std::unique_ptr<CephCluster>> cluster =
      CephCluster::Start(options);
  if (!cluster.ok()) {
    std::ofstream(dir + "/failed") << cluster.status().ToString() << "\n";
    return 1;
  }
  std::ofstream(dir + "/ready") << (*cluster)->conf_path() << "\n";
  timespec lifetime{kLifetimeSeconds, 0};
  sigtimedwait(&signals, nullptr, &lifetime);
  cluster->reset();  // the OSD, then the monitor
  fs::remove(dir + "/ready");
  return 0;
}

int Stop(const std::string& dir);

int Start(const std::string& dir) {
  // A cluster an earlier run left behind (it never reached "stop").
  if (Stop(dir) != 0) return 1;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "ceph_test_cluster: cannot create %s: %s\n",
                 dir.c_str(), ec.message().c_str());
    return 1;
  }
  if (!CephCluster::Installed()) {
    std::fprintf(stderr,
                 "ceph_test_cluster: Ceph is not installed (ceph-mon, "
                 "ceph-osd, ceph-common): run scripts/install-deps as root\n");
    return 1;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("ceph_test_cluster: fork");
    return 1;
  }
  if (pid == 0) {
    ::setsid();
    const int null = ::open("/dev/null", O_RDONLY);
    const int log = ::open((dir + "/holder.log").c_str(),
                           O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    if (log >= 0) {
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
    }
    std::ofstream(dir + "/holder.pid") << ::getpid() << "\n";
    std::_Exit(Hold(dir));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    if (fs::exists(dir + "/ready")) {
      std::printf("ceph_test_cluster: cluster ready: %s/cluster/ceph.conf\n",
                  dir.c_str());
      return 0;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::fprintf(
          stderr, "ceph_test_cluster: the cluster did not start:\n%s\n%s\n",
          residency::process::ReadFileOrEmpty(dir + "/failed").c_str(),
          residency::process::ReadFileOrEmpty(dir + "/holder.log").c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGTERM);
  std::fprintf(stderr,
               "ceph_test_cluster: the cluster did not start in 120 s\n");
  return 1;
}

int Stop(const std::string& dir) {
  pid_t pid = 0;
  if (!absl::SimpleAtoi(
          absl::StripAsciiWhitespace(
              residency::process::ReadFileOrEmpty(dir + "/holder.pid")),
          &pid) ||
      pid <= 0) {
    std::printf("ceph_test_cluster: no cluster runs in %s\n", dir.c_str());
    return 0;
  }
  if (Alive(pid)) ::kill(pid, SIGTERM);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (Alive(pid) && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (Alive(pid)) {
    std::fprintf(stderr, "ceph_test_cluster: the holder %d did not stop\n",
                 static_cast<int>(pid));
    return 1;
  }
  fs::remove(dir + "/holder.pid");
  std::printf("ceph_test_cluster: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    Usage();
    return 2;
  }
  const std::string command = argv[1];
  const std::string dir = fs::absolute(argv[2]).string();
  if (command == "start") return Start(dir);
  if (command == "stop") return Stop(dir);
  Usage();
  return 2;
}
