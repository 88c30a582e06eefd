#include "rpc/process.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::process {
namespace {

using ::residency::testing::StatusIs;
using ::testing::HasSubstr;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "process_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

// Whether `pid` has ended: gone, or a zombie nobody has reaped yet.
bool Ended(pid_t pid) {
  const std::string stat =
      ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  if (stat.empty()) return true;
  // "pid (comm) S ...": the state follows the last ')'.
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() &&
         stat[close + 2] == 'Z';
}

bool EndsWithin(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Ended(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Ended(pid);
}

TEST_F(ProcessTest, ChildWritesItsStderrToTheLog) {
  const std::string log = dir_ + "/child.log";
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ChildProcess> child,
      ChildProcess::Start("/bin/sh", {"-c", "echo to-the-log >&2"}, log));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (child->running() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(child->running());
  EXPECT_THAT(child->log(), HasSubstr("to-the-log"));
}

TEST_F(ProcessTest, RunProcessCapturesOutputExitCodeAndEnvironment) {
  ASSERT_OK_AND_ASSIGN(
      ProcessResult result,
      RunProcess("/bin/sh",
                 {"-c",
                  "echo \"out $RESIDENCY_PROCESS_TEST\"; echo err >&2; "
                  "exit 3"},
                 absl::Seconds(30), {"RESIDENCY_PROCESS_TEST=set"}));
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, "out set\n");
  EXPECT_EQ(result.err, "err\n");
  EXPECT_FALSE(result.timed_out);
}

TEST_F(ProcessTest, RunProcessKillsAChildThatOverstaysItsTimeout) {
  ASSERT_OK_AND_ASSIGN(ProcessResult result,
                       RunProcess("/bin/sleep", {"30"}, absl::Seconds(1)));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, -SIGKILL);
}

TEST_F(ProcessTest, ChildrenStartWithNoSignalBlocked) {
  // A caller that blocks SIGTERM (to sigwait for it) must not pass that on,
  // and neither may the thread children are forked from.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  absl::StatusOr<ProcessResult> result =
      RunProcess("/bin/grep", {"^SigBlk:", "/proc/self/status"});
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &old, nullptr), 0);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->out, "SigBlk:\t0000000000000000\n");
}

TEST_F(ProcessTest, ChildrenStartWithTheirSignalsAtTheDefaults) {
  struct sigaction ignore = {}, old_pipe, old_int;
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &old_pipe), 0);
  ASSERT_EQ(sigaction(SIGINT, &ignore, &old_int), 0);
  absl::StatusOr<ProcessResult> result =
      RunProcess("/bin/grep", {"^SigIgn:", "/proc/self/status"});
  sigaction(SIGPIPE, &old_pipe, nullptr);
  sigaction(SIGINT, &old_int, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->out, "SigIgn:\t0000000000000000\n");
}

TEST_F(ProcessTest, AnExtraVariableReplacesAnInheritedOne) {
  ASSERT_EQ(setenv("RESIDENCY_PROCESS_TEST", "inherited", 1), 0);
  absl::StatusOr<ProcessResult> result =
      RunProcess("/usr/bin/printenv", {"RESIDENCY_PROCESS_TEST"},
                 absl::Seconds(30), {"RESIDENCY_PROCESS_TEST=extra"});
  unsetenv("RESIDENCY_PROCESS_TEST");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->out, "extra\n");
}

TEST_F(ProcessTest, RunProcessTimesOutAChildThatClosedItsOutput) {
  ASSERT_OK_AND_ASSIGN(
      ProcessResult result,
      RunProcess("/bin/sh", {"-c", "exec >/dev/null 2>&1; exec /bin/sleep 30"},
                 absl::Seconds(1)));
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, -SIGKILL);
}

TEST_F(ProcessTest, WorksWithTheStandardDescriptorsClosed) {
  // In a forked copy, so that this process keeps its own descriptors.
  const std::string log = dir_ + "/child.log";
  const std::string missing = dir_ + "/no-such-binary";
  const pid_t copy = ::fork();
  ASSERT_GE(copy, 0);
  if (copy == 0) {
    ::alarm(20);
    ::close(STDIN_FILENO);
    ::close(STDOUT_FILENO);
    ::close(STDERR_FILENO);
    int failures = 0;
    // The exec error must still come back: the report pipe must not sit on
    // a descriptor the child's redirects replace.
    if (ChildProcess::Start(missing, {}, log).ok()) failures |= 1;
    absl::StatusOr<ProcessResult> echo = RunProcess("/bin/echo", {"hi"});
    if (!echo.ok() || echo->out != "hi\n" || echo->exit_code != 0) {
      failures |= 2;
    }
    absl::StatusOr<std::unique_ptr<ChildProcess>> logged =
        ChildProcess::Start("/bin/sh", {"-c", "echo to-the-log >&2"}, log);
    if (!logged.ok()) {
      failures |= 4;
    } else {
      while ((*logged)->running()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if ((*logged)->log().find("to-the-log") == std::string::npos) {
        failures |= 8;
      }
    }
    std::_Exit(failures);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(copy, &status, 0), copy);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the copy ended with status " << status
      << " (exit code bits: 1 missing binary started, 2 RunProcess output, "
         "4 start failed, 8 log)";
}

TEST_F(ProcessTest, AMissingBinaryIsAnErrorNotAChild) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start(dir_ + "/no-such-binary", {}, dir_ + "/child.log");
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(child.status().message(), HasSubstr("cannot run"));
  EXPECT_THAT(child.status().message(), HasSubstr("No such file"));
  EXPECT_THAT(RunProcess(dir_ + "/no-such-binary", {}).status(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("cannot run")));
}

TEST_F(ProcessTest, AChildDiesWithAParentThatIsKilled) {
  absl::StatusOr<ProcessResult> parent = RunProcess(
      RESIDENCY_PROCESS_TEST_PARENT, {dir_ + "/child.log"}, absl::Seconds(30));
  ASSERT_TRUE(parent.ok()) << parent.status();
  EXPECT_EQ(parent->exit_code, -SIGKILL) << parent->err;
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(parent->out), &pid))
      << parent->out;
  ASSERT_GT(pid, 1);
  const bool ended = EndsWithin(pid, absl::Seconds(10));
  if (!ended) ::kill(pid, SIGKILL);  // do not leave it behind either way
  EXPECT_TRUE(ended) << "the child " << pid << " outlived its parent";
}

TEST_F(ProcessTest, AChildOutlivesTheThreadThatStartedIt) {
  std::unique_ptr<ChildProcess> child;
  std::thread starter([&] {
    absl::StatusOr<std::unique_ptr<ChildProcess>> started =
        ChildProcess::Start("/bin/sleep", {"300"}, dir_ + "/child.log");
    if (started.ok()) child = *std::move(started);
  });
  starter.join();
  ASSERT_NE(child, nullptr);
  const pid_t pid = child->pid();
  // Long enough for a parent-death signal tied to the ended thread to land.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(child->running());
  EXPECT_EQ(child->Stop(SIGKILL), -SIGKILL);
  EXPECT_TRUE(Ended(pid));
}

TEST_F(ProcessTest, AForkedCopyOfThisProcessCanStartChildrenToo) {
  // Spawn once so that this process has its spawner thread; a forked copy
  // inherits the spawner but not the thread.
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ChildProcess> first,
      ChildProcess::Start("/bin/true", {}, dir_ + "/child.log"));
  first->Stop(SIGKILL);
  const std::string log = dir_ + "/child.log";
  const pid_t copy = ::fork();
  ASSERT_GE(copy, 0);
  if (copy == 0) {
    ::alarm(20);  // a hang ends the copy with SIGALRM
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Start("/bin/true", {}, log);
    std::_Exit(child.ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(copy, &status, 0), copy);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the forked copy ended with status " << status;
}

}  // namespace
}  // namespace residency::process
