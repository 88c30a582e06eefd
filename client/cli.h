#ifndef RESIDENCY_CLIENT_CLI_H_
#define RESIDENCY_CLIENT_CLI_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// The commands of the `residency` command-line tool (client/residency_main.cc
// parses the flags into CliOptions and calls RunCli). Kept out of main so a
// test or the simulator can run a command in-process.
namespace residency::client {

// Exit codes, documented in CliUsage() and README.md. Scripts may rely on
// them.
enum ExitCode : int {
  kExitOk = 0,
  // An operation failed (each failure printed with what failed); in a
  // multi-file put or get the others were still tried.
  kExitFailed = 1,
  // The command line is wrong: unknown command or flag, missing argument,
  // a flag that does not apply, a refused confirmation. Nothing was sent.
  kExitUsage = 2,
  // Stored data failed authentication (any DATA_LOSS): tampering,
  // truncation or substitution at the storage node. Wins over kExitFailed.
  kExitTampered = 3,
  // SIGINT, SIGTERM or SIGHUP: partial downloads were removed.
  kExitInterrupted = 130,
};

// What the flags say (see residency_main.cc for their help texts).
struct CliOptions {
  // Connection and identity.
  std::string storage;
  std::string key_service;
  std::string key_service_2;
  std::string key_id;
  std::string key_id_2;
  std::string owner;
  std::string mode = "custodian";
  std::string device_key;
  std::vector<std::string> residency;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;

  // Transfers.
  int jobs = 4;
  absl::Duration deadline = absl::Seconds(30);
  int retries = 3;
  int cache_keys = 0;
  std::string progress = "auto";

  // Options of single commands: set only when given on the command line, so
  // a command can refuse the ones that do not apply to it.
  std::optional<std::string> to;
  std::optional<std::string> id;
  std::optional<std::string> out;
  std::optional<std::string> prefix;
  std::optional<std::string> range;
  std::optional<uint64_t> version;
  std::optional<bool> all_versions;
  std::optional<int> on;
  std::optional<bool> yes;
};

// Where a command writes. `out` carries command output (listings, object
// bytes for --out=-); `err` carries messages, failures and the progress line.
struct CliStreams {
  std::ostream& out;
  std::ostream& err;
  // Whether `err` is a terminal (isatty(2)): --progress=auto draws only then.
  bool err_is_terminal = false;
};

// Runs `args` (the command and its positional arguments, flags removed) and
// returns the exit code.
int RunCli(const CliOptions& options, const std::vector<std::string>& args,
           const CliStreams& streams);

// The text --help prints before the flags: commands, examples, exit codes.
std::string CliUsage();

// Makes SIGINT, SIGTERM and SIGHUP remove the partial files of downloads in
// progress, erase the progress line and exit with kExitInterrupted. Call
// first thing in main, before any thread starts (it blocks the signals in
// the calling thread, which every later thread inherits).
void HandleInterrupts();

}  // namespace residency::client

#endif  // RESIDENCY_CLIENT_CLI_H_
