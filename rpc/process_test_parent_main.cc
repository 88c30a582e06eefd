// process_test_parent: for process_test. Starts `sleep 300` as a
// ChildProcess, prints the child's pid, then kills itself with SIGKILL, so
// nothing of this process gets to clean up: the child must still go.
//
//   process_test_parent LOG_PATH
#include <signal.h>

#include <cstdio>
#include <memory>

#include "rpc/process.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: process_test_parent LOG_PATH\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<residency::process::ChildProcess>> child =
      residency::process::ChildProcess::Start("/bin/sleep", {"300"}, argv[1]);
  if (!child.ok()) {
    std::fprintf(stderr, "%s\n", child.status().ToString().c_str());
    return 1;
  }
  std::printf("%d\n", static_cast<int>((*child)->pid()));
  std::fflush(stdout);
  ::raise(SIGKILL);
  return 1;
}
