// residency: the command-line client. Stores files encrypted under data keys
// from a key service, as ciphertext on a storage node.
//
//   residency --storage=HOST:PORT --key_service=HOST:PORT --key_id=KEY
//       --tls_ca=ca.crt --tls_cert=alice.crt --tls_key=alice.key
//       put photos --to=backup
//
// Exit codes (client/cli.h): 0 success, 1 an operation failed, 2 usage
// error, 3 tamper detected, 130 interrupted.
//
// This file parses flags and hands them to RunCli (client/cli.h).
#include <grpc/support/log.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "rpc/heap.h"
#include "rpc/server.h"
#include "tls/flags.h"

// Connection and identity.
ABSL_FLAG(std::string, storage, "",
          "storage node, HOST:PORT (put, get, ls, head, rm)");
ABSL_FLAG(std::string, key_service, "",
          "key service, HOST:PORT (put, get, keys)");
ABSL_FLAG(std::string, key_service_2, "",
          "second key service, in another jurisdiction, HOST:PORT (split "
          "custody; keys --on=2)");
ABSL_FLAG(std::string, key_id, "",
          "key at --key_service that wraps new objects' data keys (put)");
ABSL_FLAG(std::string, key_id_2, "",
          "key at --key_service_2 for split custody (put --mode=split)");
ABSL_FLAG(std::string, owner, "",
          "the owner acted for; default: NAME from the certificate's "
          "residency://user/NAME");
ABSL_FLAG(std::string, mode, "custodian",
          "custody of new objects: custodian, e2e or split (reads follow "
          "each object's header)");
ABSL_FLAG(std::string, device_key, "",
          "device key file for e2e custody: 32 bytes, mode 0600, created on "
          "the first e2e put; back it up");
ABSL_FLAG(std::vector<std::string>, residency, {},
          "jurisdictions allowed to hold new objects, e.g. CN,US (default: "
          "anywhere)");

// Transfers.
ABSL_FLAG(int32_t, jobs, 4, "transfers at once, 1-64");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(30),
          "deadline of each call; a transfer also gets time for its bytes");
ABSL_FLAG(int32_t, retries, 3,
          "retries of a call the service could not answer (UNAVAILABLE)");
ABSL_FLAG(int32_t, cache_keys, 0,
          "data keys kept in memory for repeated reads (0: none; a cached "
          "key outlives a key disabled meanwhile for up to 5 minutes)");
ABSL_FLAG(std::string, progress, "auto",
          "progress line on stderr: auto (on a terminal, for 1 MiB or "
          "more), always, never");

// Options of single commands.
ABSL_FLAG(std::string, to, "", "put: prefix of the object ids");
ABSL_FLAG(std::string, id, "", "put: object id of a single file");
ABSL_FLAG(std::string, out, "",
          "get: FILE, DIR (objects land in DIR/ID) or - (stdout)");
ABSL_FLAG(std::string, prefix, "",
          "get: fetch every object whose id starts with this");
ABSL_FLAG(uint64_t, version, 0,
          "get, head, rm: object version (default: the latest; rm: all)");
ABSL_FLAG(std::string, range, "",
          "get: OFFSET:LENGTH plaintext bytes (OFFSET: reads to the end)");
ABSL_FLAG(bool, all_versions, false, "ls: every version, not the latest");
ABSL_FLAG(int32_t, on, 1, "keys: 1 for --key_service, 2 for --key_service_2");
ABSL_FLAG(bool, yes, false, "keys destroy: confirm crypto-shredding");

namespace {

using residency::client::kExitOk;
using residency::client::kExitUsage;

// Flags in the order --help shows them.
constexpr const char* kHelpGroups[][14] = {
    {"Connection and identity:", "storage", "key_service", "key_service_2",
     "key_id", "key_id_2", "owner", "mode", "device_key", "residency", "tls_ca",
     "tls_cert", "tls_key", nullptr},
    {"Transfers:", "jobs", "deadline", "retries", "cache_keys", "progress",
     nullptr},
    {"Command options:", "to", "id", "out", "prefix", "version", "range",
     "all_versions", "on", "yes", nullptr},
};

// `words` wrapped to lines of at most 79 columns, each after `indent`
// spaces but the first.
std::string Wrap(absl::string_view words, size_t indent) {
  std::string text;
  size_t column = indent;
  for (absl::string_view word : absl::StrSplit(words, ' ', absl::SkipEmpty())) {
    if (column > indent && column + 1 + word.size() > 79) {
      absl::StrAppend(&text, "\n", std::string(indent, ' '));
      column = indent;
    } else if (column > indent) {
      text += ' ';
      ++column;
    }
    absl::StrAppend(&text, word);
    column += word.size();
  }
  return text;
}

std::string Help() {
  constexpr size_t kIndent = 24;
  std::string text = absl::StrCat("residency: ", residency::client::CliUsage());
  for (const auto& group : kHelpGroups) {
    const bool command_options = absl::StartsWith(group[0], "Command");
    absl::StrAppend(&text, "\n", group[0], "\n");
    for (int i = 1; i < 14 && group[i] != nullptr; ++i) {
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(group[i]);
      if (flag == nullptr) continue;
      std::string left = absl::StrCat("  --", flag->Name());
      const std::string def = flag->DefaultValue();
      if (!command_options && !def.empty() && def != "false") {
        absl::StrAppend(&left, "=", def);
      }
      if (left.size() < kIndent) {
        left.resize(kIndent, ' ');
      } else {
        absl::StrAppend(&left, "\n", std::string(kIndent, ' '));
      }
      absl::StrAppend(&text, left, Wrap(flag->Help(), kIndent), "\n");
    }
  }
  return text;
}

// Flags absl handles itself (usage and flag files).
bool IsAbslBuiltin(absl::string_view name) {
  for (absl::string_view b :
       {"helpfull", "helpshort", "helppackage", "helpon", "helpmatch",
        "only_check_args", "flagfile", "fromenv", "tryfromenv", "undefok"}) {
    if (name == b) return true;
  }
  return false;
}

// Checks every flag before absl::ParseCommandLine sees it, because absl
// exits with status 1 on an unknown flag or a bad value, and for this tool
// those are usage errors (2). Records which flags were given. Returns a
// usage message, or "".
std::string PreParse(int argc, char** argv, std::set<std::string>* given,
                     bool* help) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;  // positional, or "-"
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    absl::string_view name = body;
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    if (name == "help" || name == "h") {
      *help = true;
      continue;
    }
    if (IsAbslBuiltin(name)) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      negated = flag != nullptr;
      if (negated && (!flag->IsOfType<bool>() || has_value)) {
        return absl::StrCat("unknown flag --", name);
      }
    }
    if (flag == nullptr || flag->IsRetired()) {
      return absl::StrCat("unknown flag --", name);
    }
    std::string text;
    if (negated) {
      text = "false";
    } else if (has_value) {
      text = std::string(value);
    } else if (flag->IsOfType<bool>()) {
      text = "true";
    } else if (i + 1 < argc) {
      text = argv[++i];  // "--flag value", as absl accepts it
    } else {
      return absl::StrCat("--", name, " needs a value");
    }
    std::string error;
    if (!flag->ParseFrom(text, &error)) {
      return absl::StrCat("--", flag->Name(), "=", text, ": ", error);
    }
    given->insert(std::string(flag->Name()));
  }
  return "";
}

}  // namespace

// gRPC logs some failures itself ("Handshake failed with fatal error ...")
// before the call reports them; the tool prints each failure once, with a
// hint. GRPC_VERBOSITY brings gRPC's own log back for debugging.
void DropGrpcLog(gpr_log_func_args*) {}

int main(int argc, char** argv) {
  residency::rpc::KeepFreedHeapMemory();  // before any thread starts
  residency::client::HandleInterrupts();
  if (std::getenv("GRPC_VERBOSITY") == nullptr) {
    gpr_set_log_function(DropGrpcLog);
  }
  absl::SetProgramUsageMessage(residency::client::CliUsage());
  residency::tls::HelpShowsTlsFlags(__FILE__);
  std::set<std::string> given;
  bool help = false;
  if (const std::string bad = PreParse(argc, argv, &given, &help);
      !bad.empty()) {
    std::fprintf(stderr, "residency: %s\nRun 'residency --help' for usage.\n",
                 bad.c_str());
    return kExitUsage;
  }
  if (help) {
    std::cout << Help();
    return kExitOk;
  }
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The process holds data keys and the device key: no core dumps.
  if (absl::Status s = residency::rpc::ForbidCoreDumps(); !s.ok()) {
    std::cerr << "residency: " << s.message() << "\n";
    return residency::client::kExitFailed;
  }

  residency::client::CliOptions o;
  o.storage = absl::GetFlag(FLAGS_storage);
  o.key_service = absl::GetFlag(FLAGS_key_service);
  o.key_service_2 = absl::GetFlag(FLAGS_key_service_2);
  o.key_id = absl::GetFlag(FLAGS_key_id);
  o.key_id_2 = absl::GetFlag(FLAGS_key_id_2);
  o.owner = absl::GetFlag(FLAGS_owner);
  o.mode = absl::GetFlag(FLAGS_mode);
  o.device_key = absl::GetFlag(FLAGS_device_key);
  o.residency = absl::GetFlag(FLAGS_residency);
  o.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  o.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key = absl::GetFlag(FLAGS_tls_key);
  o.jobs = absl::GetFlag(FLAGS_jobs);
  o.deadline = absl::GetFlag(FLAGS_deadline);
  o.retries = absl::GetFlag(FLAGS_retries);
  o.cache_keys = absl::GetFlag(FLAGS_cache_keys);
  o.progress = absl::GetFlag(FLAGS_progress);
  if (given.contains("to")) o.to = absl::GetFlag(FLAGS_to);
  if (given.contains("id")) o.id = absl::GetFlag(FLAGS_id);
  if (given.contains("out")) o.out = absl::GetFlag(FLAGS_out);
  if (given.contains("prefix")) o.prefix = absl::GetFlag(FLAGS_prefix);
  if (given.contains("range")) o.range = absl::GetFlag(FLAGS_range);
  if (given.contains("version")) o.version = absl::GetFlag(FLAGS_version);
  if (given.contains("all_versions")) {
    o.all_versions = absl::GetFlag(FLAGS_all_versions);
  }
  if (given.contains("on")) o.on = absl::GetFlag(FLAGS_on);
  if (given.contains("yes")) o.yes = absl::GetFlag(FLAGS_yes);

  const std::vector<std::string> args(positional.begin() + 1, positional.end());
  std::ios::sync_with_stdio(false);
  return residency::client::RunCli(
      o, args, {std::cout, std::cerr, ::isatty(STDERR_FILENO) == 1});
}
