#include "client/cli.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/progress.h"
#include "rpc/printable.h"
#include "rpc/status_detail.h"
#include "tls/credentials.h"
#include "tls/peer.h"
#include "tls/principal.h"

namespace residency::client {
namespace {

namespace fs = std::filesystem;

using ::residency::v1::KeyInfo;
using ::residency::v1::ObjectHeader;
using ::residency::v1::ObjectInfo;

// In --progress=auto, transfers smaller than this in all draw no bar.
constexpr uint64_t kProgressThresholdBytes = uint64_t{1} << 20;

// ---------------------------------------------------------------------------
// Partial downloads, removed when the process is interrupted.

absl::Mutex partials_mu(absl::kConstInit);
std::set<std::string>* partials ABSL_GUARDED_BY(partials_mu) = nullptr;

void AddPartial(const std::string& path) {
  absl::MutexLock lock(&partials_mu);
  if (partials == nullptr) partials = new std::set<std::string>();
  partials->insert(path);
}

void RemovePartial(const std::string& path) {
  absl::MutexLock lock(&partials_mu);
  if (partials != nullptr) partials->erase(path);
}

// ---------------------------------------------------------------------------
// Small formatting helpers.

using rpc::Printable;

std::string Quote(absl::string_view text) {
  return absl::StrCat("'", Printable(text), "'");
}

std::string ModeName(v1::CustodyMode mode) {
  switch (mode) {
    case v1::CUSTODY_MODE_CUSTODIAN:
      return "custodian";
    case v1::CUSTODY_MODE_E2E:
      return "e2e";
    case v1::CUSTODY_MODE_SPLIT:
      return "split";
    default:
      return "unspecified";
  }
}

std::string AlgorithmName(v1::PayloadAlgorithm algorithm) {
  switch (algorithm) {
    case v1::PAYLOAD_ALGORITHM_COBBLESTONE_256:
      return "cobblestone-256 (C2SP chunked, AES-256-GCM)";
    case v1::PAYLOAD_ALGORITHM_CHUNKED_AES_128_GCM:
      return "chunked AES-128-GCM";
    default:
      return "unspecified";
  }
}

std::string Timestamp(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string Plural(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// "backup" + "photos/a.jpg" -> "backup/photos/a.jpg".
std::string JoinId(absl::string_view prefix, absl::string_view name) {
  if (prefix.empty()) return std::string(name);
  if (name.empty()) return std::string(prefix);
  if (absl::EndsWith(prefix, "/")) return absl::StrCat(prefix, name);
  return absl::StrCat(prefix, "/", name);
}

// An object id becomes a path under --out=DIR as is, so it must not climb
// out of DIR or name DIR itself. The ids come from the storage node, which
// this client does not trust with anything but ciphertext.
absl::Status CheckLocalName(absl::string_view id) {
  std::string why;
  if (id.empty()) {
    why = "is empty";
  } else if (id.front() == '/') {
    why = "is an absolute path";
  } else if (id.find('\0') != absl::string_view::npos) {
    why = "has a NUL byte";
  } else {
    for (absl::string_view part : absl::StrSplit(id, '/')) {
      if (part.empty()) {
        why = "has an empty path segment ('//' or a trailing '/')";
      } else if (part == "." || part == "..") {
        why = absl::StrCat("has a '", part, "' path segment");
      }
      if (!why.empty()) break;
    }
  }
  if (why.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "object id ", Quote(id), " cannot name a file under --out: ", "it ", why,
      "; fetch it alone with --out=FILE"));
}

// ---------------------------------------------------------------------------
// The state of one run: options, streams, the outcome so far.

class Run {
 public:
  Run(const CliOptions& options, const CliStreams& streams)
      : options_(options), streams_(streams) {}

  const CliOptions& options() const { return options_; }
  std::ostream& out() { return streams_.out; }
  std::ostream& err() { return streams_.err; }

  // Prints a usage error and returns kExitUsage.
  int Usage(absl::string_view message) {
    err() << "residency: " << message
          << "\nRun 'residency --help' for usage.\n";
    return kExitUsage;
  }

  // Records a failed operation, printed as
  //   residency: get photos/a.jpg: PERMISSION_DENIED: ...
  //   residency: hint: ...
  // `local`: the failure is on this machine (a file), where hints about
  // services do not apply.
  void Fail(absl::string_view what, const absl::Status& status,
            bool local = false) {
    std::string line =
        absl::StrCat("residency: ", what, ": ", rpc::Describe(status));
    const std::string hint = local ? "" : Hint(what, status);
    if (!hint.empty()) absl::StrAppend(&line, "\nresidency: hint: ", hint);
    Message(line);
    absl::MutexLock lock(&mu_);
    failed_ = true;
    tampered_ |= absl::IsDataLoss(status);
  }

  // A line for stderr, through the progress meter when one is running.
  void Message(absl::string_view line) {
    if (meter_ != nullptr) {
      meter_->Print(err(), line);
    } else {
      err() << line << '\n';
      err().flush();
    }
  }
  // A result line for stdout.
  void Result(absl::string_view line) {
    if (meter_ != nullptr) {
      meter_->Print(out(), line);
    } else {
      out() << line << '\n';
      out().flush();
    }
  }

  int ExitCode() {
    absl::MutexLock lock(&mu_);
    if (tampered_) return kExitTampered;
    return failed_ ? kExitFailed : kExitOk;
  }

  // Whether progress should be drawn for a transfer of `total` bytes.
  bool ShowProgress(uint64_t total) const {
    if (options_.progress == "always") return true;
    if (options_.progress == "never") return false;
    return streams_.err_is_terminal && total >= kProgressThresholdBytes;
  }
  bool MayShowProgress() const {
    return options_.progress == "always" ||
           (options_.progress == "auto" && streams_.err_is_terminal);
  }

  void set_meter(ProgressMeter* meter) { meter_ = meter; }
  void set_principal(std::string principal) {
    principal_ = std::move(principal);
  }

 private:
  std::string Hint(absl::string_view what, const absl::Status& status) const;

  const CliOptions& options_;
  const CliStreams& streams_;
  ProgressMeter* meter_ = nullptr;
  std::string principal_;

  absl::Mutex mu_;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool tampered_ ABSL_GUARDED_BY(mu_) = false;
};

std::string Run::Hint(absl::string_view what,
                      const absl::Status& status) const {
  const std::string message = absl::AsciiStrToLower(status.message());
  const bool keys_command = absl::StartsWith(what, "keys ");
  auto mentions = [&](absl::string_view text) {
    return absl::StrContains(message, text);
  };
  const std::string certificates =
      "check --tls_ca, --tls_cert and --tls_key: the services and this client "
      "need certificates issued by the same CA, and a service's certificate "
      "must name the address you connect to";
  switch (status.code()) {
    case absl::StatusCode::kUnavailable: {
      if (mentions("handshake") || mentions("ssl") || mentions("certificate") ||
          mentions("tls")) {
        return absl::StrCat("the TLS handshake failed; ", certificates);
      }
      // The services this command talks to.
      const bool storage_only = absl::StartsWith(what, "ls") ||
                                absl::StartsWith(what, "head ") ||
                                absl::StartsWith(what, "rm ");
      const int on = options_.on.value_or(1);
      std::vector<std::string> targets;
      if (!keys_command && !options_.storage.empty()) {
        targets.push_back(absl::StrCat("--storage=", options_.storage));
      }
      if (!storage_only && !options_.key_service.empty() &&
          (!keys_command || on == 1)) {
        targets.push_back(absl::StrCat("--key_service=", options_.key_service));
      }
      if (!storage_only && !options_.key_service_2.empty() &&
          (!keys_command || on == 2)) {
        targets.push_back(
            absl::StrCat("--key_service_2=", options_.key_service_2));
      }
      return absl::StrCat(targets.size() == 1
                              ? "the service did not answer: is it running, "
                                "and is the address right ("
                              : "a service did not answer: is each running, "
                                "and are the addresses right (",
                          absl::StrJoin(targets, ", "), ")?");
    }
    case absl::StatusCode::kDeadlineExceeded:
      return absl::StrCat(
          "no answer within --deadline=",
          absl::FormatDuration(options_.deadline),
          ": is the address right? For a slow link, raise --deadline");
    case absl::StatusCode::kUnauthenticated:
      return absl::StrCat("the service did not accept this certificate; ",
                          certificates);
    case absl::StatusCode::kPermissionDenied:
      return absl::StrCat(
          "the service refused ",
          principal_.empty() ? std::string("this certificate") : principal_,
          " (from --tls_cert); the policy rule named above decided");
    case absl::StatusCode::kFailedPrecondition:
      if (mentions("disabled")) {
        return "the key is disabled at the key service (its kill switch); "
               "'residency keys enable KEY_ID' turns it back on";
      }
      if (mentions("destroyed")) {
        return "the key was destroyed (crypto-shredded): nobody can read "
               "data under it any more";
      }
      if (mentions("device key")) {
        return options_.device_key.empty()
                   ? "pass --device_key=PATH, the device key file that "
                     "wrote the object"
                   : absl::StrCat("--device_key=", options_.device_key,
                                  " is not the device key that wrote it");
      }
      if (mentions("needs key service")) {
        return options_.key_service_2.empty()
                   ? "objects in split custody need both key services: "
                     "pass --key_service_2=HOST:PORT as well"
                   : "check that --key_service and --key_service_2 name the "
                     "key services the object was stored with (head shows "
                     "them)";
      }
      if (mentions("two jurisdictions")) {
        return "--key_service and --key_service_2 must be in different "
               "jurisdictions";
      }
      if (mentions("jurisdiction") || mentions("residency")) {
        return "the storage node's jurisdiction is not one --residency "
               "allows";
      }
      return "";
    case absl::StatusCode::kNotFound:
      if (keys_command) {
        return "'residency keys create KEY_ID' creates a key (--on=2 for "
               "the second key service)";
      }
      if (mentions("key")) return "";
      return "'residency ls [PREFIX]' lists what is stored";
    case absl::StatusCode::kDataLoss:
      return "the stored object failed authentication: it was altered, "
             "truncated or swapped where it is stored. Nothing that failed "
             "authentication was written";
    case absl::StatusCode::kResourceExhausted:
      return "the service is limiting this caller: lower --jobs or retry "
             "later";
    default:
      return "";
  }
}

// Runs fn(0) ... fn(n - 1) on up to `jobs` threads.
void ForEachParallel(size_t n, int jobs,
                     const std::function<void(size_t)>& fn) {
  const size_t threads_wanted =
      std::min(n, static_cast<size_t>(std::max(jobs, 1)));
  if (threads_wanted <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  threads.reserve(threads_wanted);
  for (size_t t = 0; t < threads_wanted; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  }
  for (std::thread& t : threads) t.join();
}

// Options that only some commands take: refuses the others.
std::string UnexpectedOption(const CliOptions& o, absl::string_view command,
                             std::initializer_list<absl::string_view> allowed) {
  const std::pair<absl::string_view, bool> given[] = {
      {"to", o.to.has_value()},
      {"id", o.id.has_value()},
      {"out", o.out.has_value()},
      {"prefix", o.prefix.has_value()},
      {"range", o.range.has_value()},
      {"version", o.version.has_value()},
      {"all_versions", o.all_versions.has_value()},
      {"on", o.on.has_value()},
      {"yes", o.yes.has_value()},
  };
  for (const auto& [name, present] : given) {
    if (present &&
        std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return absl::StrCat("--", name, " is not an option of '", command, "'");
    }
  }
  return "";
}

// ---------------------------------------------------------------------------
// Connecting.

enum Need : int {
  kNeedStorage = 1,
  kNeedKeyService = 2,
};

// A usage error (a flag that must be set) or "".
std::string MissingConnectionFlag(const CliOptions& o, int needs) {
  if (o.tls_ca.empty()) return "--tls_ca is required";
  if (o.tls_cert.empty()) return "--tls_cert is required";
  if (o.tls_key.empty()) return "--tls_key is required";
  if ((needs & kNeedStorage) && o.storage.empty()) {
    return "--storage=HOST:PORT (the storage node) is required";
  }
  if ((needs & kNeedKeyService) && o.key_service.empty()) {
    return "--key_service=HOST:PORT (the key service) is required";
  }
  return "";
}

struct Connected {
  std::unique_ptr<Client> client;
};

// Loads the certificates, works out the owner and builds the client, with a
// channel to every service whose address is set. Prints what failed and
// returns nullopt-like (client == nullptr) with `exit_code` set.
Connected Connect(Run& run, CustodyMode mode,
                  std::shared_ptr<const DeviceKey> device_key, int* exit_code) {
  const CliOptions& o = run.options();
  absl::StatusOr<tls::TlsMaterial> material =
      tls::LoadTlsMaterial(o.tls_ca, o.tls_cert, o.tls_key);
  if (!material.ok()) {
    run.Message(absl::StrCat("residency: cannot use the certificates: ",
                             material.status().message()));
    *exit_code = kExitFailed;
    return {};
  }
  absl::StatusOr<tls::Principal> principal =
      tls::CertificatePrincipal(material->certificate_pem);
  if (principal.ok()) run.set_principal(principal->uri);
  ClientOptions options;
  options.owner = o.owner;
  if (options.owner.empty()) {
    if (principal.ok() && principal->kind == tls::Principal::Kind::kUser) {
      options.owner = principal->name;
    } else {
      *exit_code = run.Usage(absl::StrCat(
          "--owner is required: the certificate ", o.tls_cert, " names ",
          principal.ok() ? principal->uri : std::string("no principal"),
          ", not a residency://user/NAME"));
      return {};
    }
  }
  options.mode = mode;
  options.device_key = std::move(device_key);
  options.residency = o.residency;
  options.deadline = o.deadline;
  options.retry.max_attempts = o.retries + 1;
  options.cache.max_entries = static_cast<size_t>(o.cache_keys);

  auto channel = [&](const std::string& address,
                     std::shared_ptr<grpc::Channel>* out) -> bool {
    if (address.empty()) return true;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> made =
        tls::MakeChannel(address, *material);
    if (!made.ok()) {
      run.Message(absl::StrCat("residency: cannot connect to ", address, ": ",
                               made.status().message()));
      *exit_code = kExitFailed;
      return false;
    }
    *out = *std::move(made);
    return true;
  };
  if (!channel(o.storage, &options.storage)) return {};
  for (const auto& [address, key_id] :
       {std::pair{o.key_service, o.key_id},
        std::pair{o.key_service_2, o.key_id_2}}) {
    if (address.empty()) continue;
    KeyServiceTarget target;
    if (!channel(address, &target.channel)) return {};
    target.key_id = key_id;
    options.key_services.push_back(std::move(target));
  }
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Create(std::move(options));
  if (!client.ok()) {
    run.Message(absl::StrCat("residency: cannot set up the client: ",
                             client.status().message()));
    *exit_code =
        absl::IsInvalidArgument(client.status()) ? kExitUsage : kExitFailed;
    return {};
  }
  return {*std::move(client)};
}

// ---------------------------------------------------------------------------
// put

struct Upload {
  std::string local;
  std::string object_id;
  uint64_t size = 0;
};

// The files named by one LOCAL argument: the file itself, or every regular
// file under a directory, named by its path relative to the directory's
// parent (so `put photos` stores photos/...). Problems with single entries
// are reported through `run` and counted in `skipped_failures`.
void CollectUploads(Run& run, const std::string& arg, const std::string& to,
                    std::vector<Upload>* uploads, size_t* failures) {
  std::error_code ec;
  const fs::file_status status = fs::status(arg, ec);
  if (ec || !fs::exists(status)) {
    run.Fail(absl::StrCat("put ", arg),
             absl::NotFoundError(ec ? ec.message() : "no such file"),
             /*local=*/true);
    ++*failures;
    return;
  }
  if (fs::is_regular_file(status)) {
    const uint64_t size = fs::file_size(arg, ec);
    if (ec) {
      run.Fail(absl::StrCat("put ", arg),
               absl::FailedPreconditionError(ec.message()), /*local=*/true);
      ++*failures;
      return;
    }
    uploads->push_back(
        {arg, JoinId(to, fs::path(arg).filename().string()), size});
    return;
  }
  if (!fs::is_directory(status)) {
    run.Fail(absl::StrCat("put ", arg),
             absl::InvalidArgumentError("not a regular file or a directory"),
             /*local=*/true);
    ++*failures;
    return;
  }
  // The directory's own name leads its objects' ids, unless it is "." or
  // ".." or "/", which have no useful name.
  fs::path dir = fs::path(arg).lexically_normal();
  if (!dir.has_filename() && dir.has_parent_path() && dir != dir.root_path()) {
    dir = dir.parent_path();  // "photos/" -> "photos"
  }
  std::string name = dir.filename().string();
  if (name == "." || name == ".." || name.empty()) name.clear();
  const std::string base = JoinId(to, name);
  std::vector<Upload> found;
  fs::recursive_directory_iterator it(arg, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    if (entry.is_symlink(ec)) {
      run.Message(absl::StrCat("residency: put: skipping ",
                               entry.path().string(),
                               ": a symbolic link (name it on its own to "
                               "store its target)"));
      continue;
    }
    if (entry.is_directory(ec)) continue;
    const std::string relative =
        entry.path().lexically_relative(arg).generic_string();
    if (!entry.is_regular_file(ec)) {
      run.Message(absl::StrCat("residency: put: skipping ",
                               entry.path().string(), ": not a regular file"));
      continue;
    }
    const uint64_t size = entry.file_size(ec);
    if (ec) break;
    found.push_back({entry.path().string(), JoinId(base, relative), size});
  }
  if (ec) {
    run.Fail(absl::StrCat("put ", arg),
             absl::FailedPreconditionError(
                 absl::StrCat("cannot read the directory: ", ec.message())),
             /*local=*/true);
    ++*failures;
  }
  std::sort(found.begin(), found.end(), [](const Upload& a, const Upload& b) {
    return a.object_id < b.object_id;
  });
  for (Upload& u : found) uploads->push_back(std::move(u));
}

int Put(Run& run, const std::vector<std::string>& args) {
  const CliOptions& o = run.options();
  if (std::string bad = UnexpectedOption(o, "put", {"to", "id"});
      !bad.empty()) {
    return run.Usage(bad);
  }
  if (args.empty()) {
    return run.Usage("put needs at least one file or directory");
  }
  if (o.id.has_value()) {
    if (o.to.has_value()) return run.Usage("--id and --to do not go together");
    if (args.size() != 1 || !fs::is_regular_file(args[0])) {
      return run.Usage(
          "--id names the object of a single file: put FILE --id=ID");
    }
    if (o.id->empty()) return run.Usage("--id must not be empty");
  }
  absl::StatusOr<CustodyMode> mode = ParseCustodyMode(o.mode);
  if (!mode.ok())
    return run.Usage(absl::StrCat("--mode: ", mode.status().message()));
  if (std::string missing =
          MissingConnectionFlag(o, kNeedStorage | kNeedKeyService);
      !missing.empty()) {
    return run.Usage(missing);
  }
  if (o.key_id.empty()) {
    return run.Usage(
        "put needs --key_id, the key at the key service that wraps the new "
        "objects' data keys ('residency keys create KEY_ID' makes one)");
  }
  if (*mode == CustodyMode::kSplit &&
      (o.key_service_2.empty() || o.key_id_2.empty())) {
    return run.Usage(
        "--mode=split needs --key_service_2 and --key_id_2: the second key "
        "service, in another jurisdiction, and the key there");
  }
  if (*mode == CustodyMode::kE2e && o.device_key.empty()) {
    return run.Usage(
        "--mode=e2e needs --device_key=PATH (created on first use)");
  }

  std::vector<Upload> uploads;
  size_t failures = 0;
  if (o.id.has_value()) {
    uploads.push_back({args[0], *o.id, fs::file_size(args[0])});
  } else {
    for (const std::string& arg : args) {
      CollectUploads(run, arg, o.to.value_or(""), &uploads, &failures);
    }
  }
  std::map<std::string, const Upload*> by_id;
  for (const Upload& u : uploads) {
    auto [it, inserted] = by_id.emplace(u.object_id, &u);
    if (!inserted) {
      return run.Usage(absl::StrCat(it->second->local, " and ", u.local,
                                    " would both be stored as ",
                                    Quote(u.object_id)));
    }
  }

  std::shared_ptr<const DeviceKey> device_key;
  if (*mode == CustodyMode::kE2e) {
    const bool existed = fs::exists(o.device_key);
    absl::StatusOr<std::shared_ptr<const DeviceKey>> loaded =
        LoadDeviceKey(o.device_key, /*create=*/true);
    if (!loaded.ok()) {
      run.Fail(absl::StrCat("device key ", o.device_key), loaded.status());
      return run.ExitCode();
    }
    device_key = *std::move(loaded);
    if (!existed) {
      run.Message(absl::StrCat(
          "residency: created a new device key in ", o.device_key,
          " (mode 0600). Back it up: objects stored in e2e custody cannot be "
          "read without it, by you or anyone."));
    }
  }
  int exit_code = kExitOk;
  Connected connected = Connect(run, *mode, device_key, &exit_code);
  if (connected.client == nullptr) return exit_code;

  uint64_t total = 0;
  for (const Upload& u : uploads) total += u.size;
  ProgressMeter meter(run.err(), {.enabled = run.ShowProgress(total)});
  meter.Expect(total, uploads.size());
  run.set_meter(&meter);
  std::atomic<size_t> stored{0};
  std::atomic<uint64_t> stored_bytes{0};
  ForEachParallel(uploads.size(), o.jobs, [&](size_t i) {
    const Upload& u = uploads[i];
    const std::string what = absl::StrCat("put ", u.local);
    std::ifstream input(u.local, std::ios::binary);
    if (!input) {
      run.Fail(what,
               absl::FailedPreconditionError(
                   absl::StrCat("cannot open it: ", std::strerror(errno))),
               /*local=*/true);
    } else {
      absl::StatusOr<v1::ObjectRef> ref =
          connected.client->Put(u.object_id, input, u.size, meter.Track());
      if (ref.ok()) {
        ++stored;
        stored_bytes += u.size;
        run.Result(absl::StrCat("stored ", Printable(ref->object_id()), " v",
                                ref->version(), " (", HumanBytes(u.size), ")"));
      } else {
        run.Fail(what, ref.status());
      }
    }
    meter.FileFinished();
  });
  meter.Finish();
  run.set_meter(nullptr);
  const size_t attempted = uploads.size() + failures;
  if (attempted > 1) {
    run.Message(absl::StrCat("residency: ", stored.load(), " of ",
                             Plural(attempted, "file", "files"), " stored (",
                             HumanBytes(stored_bytes), ")"));
  }
  return run.ExitCode();
}

// ---------------------------------------------------------------------------
// get

absl::StatusOr<Range> ParseRange(absl::string_view text) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits(':', 1));
  Range range;
  if (!absl::StrContains(text, ':') ||
      !absl::SimpleAtoi(parts.first, &range.offset) ||
      (!parts.second.empty() &&
       !absl::SimpleAtoi(parts.second, &range.length))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--range=", text,
        ": expected OFFSET:LENGTH in bytes (OFFSET: alone reads to the end)"));
  }
  if (!parts.second.empty() && range.length == 0) {
    return absl::InvalidArgumentError(
        "--range: LENGTH must be positive (leave it out to read to the end)");
  }
  return range;
}

struct Download {
  std::string object_id;
  uint64_t version = 0;
  std::string path;  // empty: to standard output
  uint64_t expected = 0;
};

int Get(Run& run, const std::vector<std::string>& args) {
  const CliOptions& o = run.options();
  if (std::string bad =
          UnexpectedOption(o, "get", {"out", "prefix", "version", "range"});
      !bad.empty()) {
    return run.Usage(bad);
  }
  if (!o.out.has_value() || o.out->empty()) {
    return run.Usage(
        "get needs --out: --out=FILE or --out=- (standard output) for one "
        "object, --out=DIR for several or for --prefix");
  }
  if (o.prefix.has_value() && !args.empty()) {
    return run.Usage("get takes object ids or --prefix, not both");
  }
  if (!o.prefix.has_value() && args.empty()) {
    return run.Usage("get needs an object id (or --prefix=P)");
  }
  const bool single = !o.prefix.has_value() && args.size() == 1;
  if (!single && (o.version.has_value() || o.range.has_value())) {
    return run.Usage("--version and --range apply to a single object id");
  }
  std::optional<Range> range;
  if (o.range.has_value()) {
    absl::StatusOr<Range> parsed = ParseRange(*o.range);
    if (!parsed.ok()) return run.Usage(parsed.status().message());
    range = *parsed;
  }
  const bool to_stdout = *o.out == "-";
  if (to_stdout && !single) {
    return run.Usage("--out=- takes a single object id");
  }
  std::error_code ec;
  const bool to_dir = !to_stdout && (!single || absl::EndsWith(*o.out, "/") ||
                                     fs::is_directory(*o.out, ec));
  if (std::string missing =
          MissingConnectionFlag(o, kNeedStorage | kNeedKeyService);
      !missing.empty()) {
    return run.Usage(missing);
  }

  std::shared_ptr<const DeviceKey> device_key;
  if (!o.device_key.empty()) {
    absl::StatusOr<std::shared_ptr<const DeviceKey>> loaded =
        LoadDeviceKey(o.device_key, /*create=*/false);
    if (!loaded.ok()) {
      run.Fail(absl::StrCat("device key ", o.device_key), loaded.status());
      return run.ExitCode();
    }
    device_key = *std::move(loaded);
  }
  // A read follows the custody each object's header records, whatever
  // --mode says about new objects.
  int exit_code = kExitOk;
  Connected connected =
      Connect(run, CustodyMode::kCustodian, device_key, &exit_code);
  if (connected.client == nullptr) return exit_code;
  Client& client = *connected.client;

  std::vector<Download> downloads;
  if (o.prefix.has_value()) {
    absl::StatusOr<std::vector<ObjectInfo>> listed = client.List(*o.prefix);
    if (!listed.ok()) {
      run.Fail(absl::StrCat("get --prefix=", *o.prefix), listed.status());
      return run.ExitCode();
    }
    if (listed->empty()) {
      run.Message(absl::StrCat("residency: no objects under prefix ",
                               Quote(*o.prefix)));
      return kExitOk;
    }
    for (const ObjectInfo& info : *listed) {
      downloads.push_back({info.header().object().object_id(),
                           info.header().object().version(), "",
                           info.header().plaintext_length()});
    }
  } else {
    for (const std::string& id : args) {
      downloads.push_back({id, o.version.value_or(0), "", 0});
    }
  }
  size_t failures_before = 0;
  std::vector<Download> runnable;
  for (Download& d : downloads) {
    if (to_dir) {
      if (absl::Status s = CheckLocalName(d.object_id); !s.ok()) {
        run.Fail(absl::StrCat("get ", Printable(d.object_id)), s,
                 /*local=*/true);
        ++failures_before;
        continue;
      }
      d.path = (fs::path(*o.out) / d.object_id).string();
    } else if (!to_stdout) {
      d.path = *o.out;
    }
    runnable.push_back(std::move(d));
  }

  // Sizes for the progress line: a listing has them; named objects are
  // asked for with Head, only when a line may be drawn.
  if (!o.prefix.has_value() && run.MayShowProgress()) {
    for (Download& d : runnable) {
      absl::StatusOr<ObjectInfo> info = client.Head(d.object_id, d.version);
      if (info.ok()) d.expected = info->header().plaintext_length();
    }
  }
  uint64_t total = 0;
  for (Download& d : runnable) {
    if (range.has_value()) {
      const uint64_t rest = d.expected - std::min(d.expected, range->offset);
      d.expected = range->length == 0 ? rest : std::min(rest, range->length);
    }
    total += d.expected;
  }
  ProgressMeter meter(run.err(), {.enabled = run.ShowProgress(total)});
  meter.Expect(total, runnable.size());
  run.set_meter(&meter);

  std::atomic<size_t> fetched{0};
  std::atomic<uint64_t> fetched_bytes{0};
  ForEachParallel(runnable.size(), o.jobs, [&](size_t i) {
    const Download& d = runnable[i];
    const std::string what = absl::StrCat("get ", Printable(d.object_id));
    absl::StatusOr<ObjectHeader> header;
    bool local = false;  // the failure, if any, is a local file's
    uint64_t written = 0;
    if (d.path.empty()) {
      header =
          client.Get(d.object_id, d.version, run.out(), range, meter.Track());
      run.out().flush();
    } else {
      // Written under NAME.partial and renamed into place only once the
      // whole object has authenticated, so NAME never holds a part.
      const std::string partial = d.path + ".partial";
      std::error_code dir_error;
      const fs::path parent = fs::path(d.path).parent_path();
      if (!parent.empty()) fs::create_directories(parent, dir_error);
      AddPartial(partial);
      std::ofstream file(partial,
                         std::ios::binary | std::ios::out | std::ios::trunc);
      if (!file) {
        local = true;
        header = absl::FailedPreconditionError(
            absl::StrCat("cannot write ", partial, ": ", std::strerror(errno)));
      } else {
        ProgressFn track = meter.Track();
        header = client.Get(d.object_id, d.version, file, range,
                            [&](uint64_t bytes) {
                              written = bytes;
                              track(bytes);
                            });
        file.close();
        if (header.ok() && !file) {
          local = true;
          header = absl::FailedPreconditionError(absl::StrCat(
              "writing ", partial, " failed: ", std::strerror(errno)));
        }
        if (header.ok() && std::rename(partial.c_str(), d.path.c_str()) != 0) {
          local = true;
          header = absl::FailedPreconditionError(
              absl::StrCat("cannot rename ", partial, " to ", d.path, ": ",
                           std::strerror(errno)));
        }
      }
      if (!header.ok()) std::remove(partial.c_str());
      RemovePartial(partial);
    }
    if (header.ok()) {
      ++fetched;
      const uint64_t bytes =
          range.has_value() ? written : header->plaintext_length();
      fetched_bytes += bytes;
      if (!d.path.empty()) {
        run.Result(
            absl::StrCat("fetched ", Printable(header->object().object_id()),
                         " v", header->object().version(), " -> ",
                         Printable(d.path), " (", HumanBytes(bytes), ")"));
      }
    } else {
      run.Fail(what, header.status(), local);
    }
    meter.FileFinished();
  });
  meter.Finish();
  run.set_meter(nullptr);
  const size_t attempted = runnable.size() + failures_before;
  if (attempted > 1) {
    run.Message(absl::StrCat("residency: ", fetched.load(), " of ",
                             Plural(attempted, "file", "files"), " fetched (",
                             HumanBytes(fetched_bytes), ")"));
  }
  return run.ExitCode();
}

// ---------------------------------------------------------------------------
// ls, head, rm

int Ls(Run& run, const std::vector<std::string>& args) {
  const CliOptions& o = run.options();
  if (std::string bad = UnexpectedOption(o, "ls", {"all_versions"});
      !bad.empty()) {
    return run.Usage(bad);
  }
  if (args.size() > 1) return run.Usage("ls takes at most one PREFIX");
  if (std::string missing = MissingConnectionFlag(o, kNeedStorage);
      !missing.empty()) {
    return run.Usage(missing);
  }
  int exit_code = kExitOk;
  Connected connected =
      Connect(run, CustodyMode::kCustodian, nullptr, &exit_code);
  if (connected.client == nullptr) return exit_code;
  const std::string prefix = args.empty() ? "" : args[0];
  absl::StatusOr<std::vector<ObjectInfo>> listed =
      connected.client->List(prefix, o.all_versions.value_or(false));
  if (!listed.ok()) {
    run.Fail(prefix.empty() ? std::string("ls")
                            : absl::StrCat("ls ", Printable(prefix)),
             listed.status());
    return run.ExitCode();
  }
  if (listed->empty()) {
    run.Message(prefix.empty() ? "residency: no objects"
                               : absl::StrCat("residency: no objects under ",
                                              Quote(prefix)));
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "VERSION", "SIZE", "MODE", "STORED AT"}};
  for (const ObjectInfo& info : *listed) {
    const ObjectHeader& h = info.header();
    rows.push_back({Printable(h.object().object_id()),
                    absl::StrCat(h.object().version()),
                    absl::StrCat(h.plaintext_length()),
                    ModeName(h.custody_mode()), Timestamp(info.stored_at())});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const bool right = c == 1 || c == 2;  // numbers
      const std::string pad(widths[c] - row[c].size(), ' ');
      if (c > 0) line += "  ";
      line += right ? pad + row[c] : row[c] + (c + 1 < row.size() ? pad : "");
    }
    run.Result(line);
  }
  return kExitOk;
}

int Head(Run& run, const std::vector<std::string>& args) {
  const CliOptions& o = run.options();
  if (std::string bad = UnexpectedOption(o, "head", {"version"});
      !bad.empty()) {
    return run.Usage(bad);
  }
  if (args.size() != 1) return run.Usage("head takes one object id");
  if (std::string missing = MissingConnectionFlag(o, kNeedStorage);
      !missing.empty()) {
    return run.Usage(missing);
  }
  int exit_code = kExitOk;
  Connected connected =
      Connect(run, CustodyMode::kCustodian, nullptr, &exit_code);
  if (connected.client == nullptr) return exit_code;
  absl::StatusOr<ObjectInfo> info =
      connected.client->Head(args[0], o.version.value_or(0));
  if (!info.ok()) {
    run.Fail(absl::StrCat("head ", Printable(args[0])), info.status());
    return run.ExitCode();
  }
  const ObjectHeader& h = info->header();
  std::vector<std::pair<std::string, std::string>> lines = {
      {"object", Printable(h.object().object_id())},
      {"owner", Printable(h.object().owner())},
      {"version", absl::StrCat(h.object().version())},
      {"size", absl::StrCat(h.plaintext_length(), " bytes (ciphertext ",
                            h.ciphertext_length(), ")")},
      {"custody", ModeName(h.custody_mode())},
      {"payload", AlgorithmName(h.payload_algorithm())},
      {"residency", h.residency().allowed_jurisdictions().empty()
                        ? std::string("anywhere")
                        : Printable(absl::StrJoin(
                              h.residency().allowed_jurisdictions(), ", "))},
      {"created", Timestamp(h.created_at())},
      {"stored", Timestamp(info->stored_at())},
  };
  // The wrapped keys are described, never printed: even wrapped, key bytes
  // have no place in a terminal or a log.
  for (int i = 0; i < h.wrapped_keys_size(); ++i) {
    const v1::WrappedKey& k = h.wrapped_keys(i);
    std::string text;
    if (k.wrapper() == v1::WrappedKey::DEVICE) {
      text = absl::StrCat("device key ", Printable(k.key_id()));
    } else {
      text = absl::StrCat(
          "key service ",
          k.key_service().empty() ? std::string("(unnamed)")
                                  : Printable(k.key_service()),
          k.jurisdiction().empty()
              ? std::string()
              : absl::StrCat(" (", Printable(k.jurisdiction()), ")"),
          ", key ", Printable(k.key_id()), " v", k.key_version());
    }
    absl::StrAppend(&text, k.share_index() == 0
                               ? std::string(", whole data key")
                               : absl::StrCat(", share ", k.share_index()));
    lines.push_back({absl::StrCat("wrapped key ", i + 1), text});
  }
  size_t width = 0;
  for (const auto& [name, value] : lines) width = std::max(width, name.size());
  for (const auto& [name, value] : lines) {
    run.Result(
        absl::StrCat(name, std::string(width - name.size() + 2, ' '), value));
  }
  return kExitOk;
}

int Rm(Run& run, const std::vector<std::string>& args) {
  const CliOptions& o = run.options();
  if (std::string bad = UnexpectedOption(o, "rm", {"version"}); !bad.empty()) {
    return run.Usage(bad);
  }
  if (args.empty()) return run.Usage("rm needs an object id");
  if (args.size() > 1 && o.version.has_value()) {
    return run.Usage("--version applies to a single object id");
  }
  if (o.version.has_value() && *o.version == 0) {
    return run.Usage(
        "--version counts from 1 (leave it out to delete every "
        "version)");
  }
  if (std::string missing = MissingConnectionFlag(o, kNeedStorage);
      !missing.empty()) {
    return run.Usage(missing);
  }
  int exit_code = kExitOk;
  Connected connected =
      Connect(run, CustodyMode::kCustodian, nullptr, &exit_code);
  if (connected.client == nullptr) return exit_code;
  for (const std::string& id : args) {
    absl::StatusOr<uint64_t> deleted =
        connected.client->Delete(id, o.version.value_or(0));
    if (!deleted.ok()) {
      run.Fail(absl::StrCat("rm ", Printable(id)), deleted.status());
      continue;
    }
    run.Result(absl::StrCat("deleted ", Plural(*deleted, "version", "versions"),
                            " of ", Printable(id)));
  }
  return run.ExitCode();
}

// ---------------------------------------------------------------------------
// keys

void PrintKey(Run& run, const KeyInfo& key, int on,
              const std::string& address) {
  std::vector<std::string> versions;
  for (const KeyInfo::Version& v : key.versions()) {
    versions.push_back(
        absl::StrCat("v", v.version(), " (", Timestamp(v.created_at()), ")"));
  }
  const std::pair<std::string, std::string> lines[] = {
      {"key", Printable(key.key_id())},
      {"owner", Printable(key.owner())},
      {"key service", absl::StrCat(on, " (", address, ")")},
      {"state", KeyInfo::State_Name(key.state())},
      {"current version", absl::StrCat(key.current_version())},
      {"min decryption", absl::StrCat(key.min_decryption_version())},
      {"versions", versions.empty() ? "none" : absl::StrJoin(versions, ", ")},
      {"created", Timestamp(key.created_at())},
  };
  for (const auto& [name, value] : lines) {
    run.Result(absl::StrCat(name, std::string(17 - name.size(), ' '), value));
  }
}

int Keys(Run& run, const std::vector<std::string>& args) {
  const CliOptions& o = run.options();
  if (std::string bad = UnexpectedOption(o, "keys", {"on", "yes"});
      !bad.empty()) {
    return run.Usage(bad);
  }
  static const char* const kActions[] = {"create", "rotate",  "disable",
                                         "enable", "destroy", "info"};
  if (args.empty()) {
    return run.Usage(
        "keys needs an action: create, rotate, disable, enable, "
        "destroy or info");
  }
  const std::string& action = args[0];
  if (std::find(std::begin(kActions), std::end(kActions), action) ==
      std::end(kActions)) {
    return run.Usage(absl::StrCat("unknown keys action ", Quote(action),
                                  ": expected create, rotate, disable, "
                                  "enable, destroy or info"));
  }
  if (args.size() != 2) {
    return run.Usage(absl::StrCat("keys ", action, " takes one KEY_ID"));
  }
  const std::string& key_id = args[1];
  if (o.yes.has_value() && action != "destroy") {
    return run.Usage("--yes only confirms 'keys destroy'");
  }
  const int on = o.on.value_or(1);
  if (on != 1 && on != 2) return run.Usage("--on is 1 or 2");
  if (on == 2 && o.key_service_2.empty()) {
    return run.Usage("--on=2 needs --key_service_2=HOST:PORT");
  }
  if (std::string missing = MissingConnectionFlag(o, kNeedKeyService);
      !missing.empty()) {
    return run.Usage(missing);
  }
  if (action == "destroy" && !o.yes.value_or(false)) {
    return run.Usage(absl::StrCat(
        "keys destroy crypto-shreds ", Quote(key_id),
        " irreversibly: every object whose data key it wraps becomes "
        "unreadable, for "
        "good. Nothing was changed; run it again with --yes to confirm"));
  }
  int exit_code = kExitOk;
  Connected connected =
      Connect(run, CustodyMode::kCustodian, nullptr, &exit_code);
  if (connected.client == nullptr) return exit_code;
  Client& client = *connected.client;
  const size_t service = static_cast<size_t>(on - 1);
  absl::StatusOr<KeyInfo> key;
  if (action == "create") {
    key = client.CreateKey(key_id, service);
  } else if (action == "rotate") {
    key = client.RotateKey(key_id, service);
  } else if (action == "disable") {
    key = client.DisableKey(key_id, service);
  } else if (action == "enable") {
    key = client.EnableKey(key_id, service);
  } else if (action == "destroy") {
    key = client.DestroyKey(key_id, service);
  } else {
    key = client.GetKeyInfo(key_id, service);
  }
  if (!key.ok()) {
    run.Fail(absl::StrCat("keys ", action, " ", Printable(key_id)),
             key.status());
    return run.ExitCode();
  }
  PrintKey(run, *key, on, on == 1 ? o.key_service : o.key_service_2);
  return kExitOk;
}

// Checks the flags every command shares.
std::string BadCommonFlag(const CliOptions& o) {
  if (o.jobs < 1 || o.jobs > 64) return "--jobs must be between 1 and 64";
  if (o.retries < 0 || o.retries > 10) {
    return "--retries must be between 0 and 10";
  }
  if (o.cache_keys < 0) return "--cache_keys must not be negative";
  if (o.deadline <= absl::ZeroDuration()) return "--deadline must be positive";
  if (o.progress != "auto" && o.progress != "always" && o.progress != "never") {
    return "--progress is auto, always or never";
  }
  if (absl::StatusOr<CustodyMode> mode = ParseCustodyMode(o.mode); !mode.ok()) {
    return absl::StrCat("--mode: ", mode.status().message());
  }
  if (!o.key_id_2.empty() && o.key_service_2.empty()) {
    return "--key_id_2 needs --key_service_2";
  }
  for (const std::string& j : o.residency) {
    if (j.empty() || j.size() > 16 ||
        !std::all_of(j.begin(), j.end(),
                     [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return absl::StrCat("--residency: ", Quote(j),
                          " is not a jurisdiction code (upper-case letters, "
                          "like CN or US)");
    }
  }
  return "";
}

}  // namespace

std::string CliUsage() {
  return R"(stores files encrypted: data keys from a key service (envelope
encryption), ciphertext on a storage node that never sees a key.

Usage: residency [FLAGS] COMMAND [ARGS]

Commands:
  put LOCAL... [--to=PREFIX]     store files; a directory is stored whole,
                                 each file as PREFIX/DIR/RELATIVE/PATH
  put FILE --id=ID               store one file under an explicit object id
  get ID --out=FILE|-            fetch one object to a file or stdout
                                 [--version=N] [--range=OFFSET:LENGTH]
  get ID... --out=DIR            fetch objects to DIR/ID
  get --prefix=P --out=DIR       fetch every object whose id starts with P
  ls [PREFIX] [--all_versions]   list objects: id, version, size, custody
                                 mode, time stored
  head ID [--version=N]          show an object's header: custody mode,
                                 wrapped keys and their key services,
                                 residency (never key bytes)
  rm ID [--version=N]            delete one version, or every version
  keys create|rotate|disable|enable|destroy|info KEY_ID [--on=1|2]
                                 manage a key at the first (or second) key
                                 service; destroy is irreversible and needs
                                 --yes
  help                           this text

Custody (--mode, for new objects; reads follow each object's header):
  custodian   the key service alone can unwrap (the 2014 arrangement)
  e2e         a share is also wrapped by --device_key, a file that never
              leaves this machine
  split       two key services (--key_service_2) in two jurisdictions must
              both agree

Transfers run --jobs at a time. A download is written to NAME.partial and
renamed to NAME only once every byte has authenticated. A progress line is
drawn on stderr when it is a terminal (--progress).

Examples:
  residency --storage=cn-node:7444 --key_service=us-keys:7443 \
      --tls_ca=ca.crt --tls_cert=alice.crt --tls_key=alice.key \
      keys create alice-key
  residency ... --key_id=alice-key put photos --to=backup
  residency ... get --prefix=backup/photos --out=restored
  residency ... get backup/photos/a.jpg --range=0:1024 --out=- | xxd

Exit codes:
  0    success
  1    an operation failed (each failure is printed, with a hint where one
       helps); in a multi-file put or get the other files were still tried
  2    usage error: unknown command or flag, missing argument, a flag that
       does not apply, keys destroy without --yes; nothing was sent
  3    tamper detected: stored data failed authentication (DATA_LOSS)
  130  interrupted; partial downloads were removed
)";
}

int RunCli(const CliOptions& options, const std::vector<std::string>& args,
           const CliStreams& streams) {
  Run run(options, streams);
  if (args.empty()) {
    return run.Usage("no command given: put, get, ls, head, rm, keys or help");
  }
  const std::string& command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  static const std::map<std::string,
                        int (*)(Run&, const std::vector<std::string>&)>
      kCommands = {{"put", Put},   {"get", Get}, {"ls", Ls},
                   {"head", Head}, {"rm", Rm},   {"keys", Keys}};
  if (command == "help") {
    streams.out << "residency: " << CliUsage();
    return kExitOk;
  }
  auto it = kCommands.find(command);
  if (it == kCommands.end()) {
    return run.Usage(absl::StrCat("unknown command ", Quote(command),
                                  ": expected put, get, ls, head, rm, keys "
                                  "or help"));
  }
  if (std::string bad = BadCommonFlag(options); !bad.empty()) {
    return run.Usage(bad);
  }
  return it->second(run, rest);
}

void HandleInterrupts() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    {
      absl::MutexLock lock(&partials_mu);
      if (partials != nullptr) {
        for (const std::string& path : *partials) ::unlink(path.c_str());
      }
    }
    static constexpr char kMessage[] =
        "\nresidency: interrupted; partial downloads removed\n";
    // Best effort: the process is leaving either way.
    [[maybe_unused]] ssize_t n =
        ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    ::_exit(kExitInterrupted);
  }).detach();
}

}  // namespace residency::client
