// The key_service binary as a separate process: start-up errors, flags, and
// durability under kill -9 right after an acknowledged change.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/audit_log.h"
#include "key_service/audit_verifier.h"
#include "residency/v1/key_service.grpc.pb.h"
#include "tests/crash_seed.h"
#include "tests/sanitizers.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/credentials.h"
#include "tls/pki.h"

extern char** environ;

namespace residency::key_service {
namespace {

using ::residency::testing::TempDir;
using ::residency::v1::Justification;
using ::residency::v1::KeyInfo;
using ::residency::v1::KeyService;
using ::testing::HasSubstr;

constexpr char kPolicy[] = R"pb(
  jurisdiction: "US"
  rules {
    name: "custodian-operations"
    effect: ALLOW
    principals: "residency://operator/us-ops"
    justifications: CUSTODIAN_INITIATED_SERVICE
  }
  rules {
    name: "alice-uses-her-keys"
    effect: ALLOW
    principals: "residency://user/alice"
    justifications: CUSTOMER_INITIATED_ACCESS
  }
)pb";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

// One run of the binary, stderr captured to a file.
class Child {
 public:
  Child(std::vector<std::string> args, const std::string& stderr_path) {
    std::vector<char*> argv;
    static std::string binary = KEY_SERVICE_BINARY;
    argv.push_back(binary.data());
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO,
                                     stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null",
                                     O_WRONLY, 0);
    const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr,
                               argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool started() const { return pid_ > 0; }

  // Exit code, or -signal if killed; waits up to `timeout`.
  std::optional<int> Wait(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        return -WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

  void Kill(int signal) { ::kill(pid_, signal); }
  pid_t pid() const { return pid_; }
  bool alive() { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

class KeyServiceProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("key_service_process_test"));
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("test-ca"));
    ca_.emplace(std::move(ca));
    ASSERT_OK_AND_ASSIGN(tls::Identity server,
                         ca_->Issue("residency://service/us-custodian"));
    ASSERT_OK(server.WriteFiles(dir_, "ks"));
    ASSERT_OK_AND_ASSIGN(ops_, ca_->Issue("residency://operator/us-ops"));
    std::ofstream(dir_ + "/policy.textproto") << kPolicy;
  }

  std::vector<std::string> Flags() const {
    return {"--listen=127.0.0.1:0",
            "--jurisdiction=US",
            "--policy=" + dir_ + "/policy.textproto",
            "--data_dir=" + dir_ + "/data",
            "--tls_ca=" + dir_ + "/ca.crt",
            "--tls_cert=" + dir_ + "/ks.crt",
            "--tls_key=" + dir_ + "/ks.key",
            "--port_file=" + dir_ + "/port"};
  }

  // Starts the service and connects as the operator once it is serving.
  std::unique_ptr<Child> StartService() {
    std::filesystem::remove(dir_ + "/port");
    auto child = std::make_unique<Child>(Flags(), dir_ + "/stderr");
    EXPECT_TRUE(child->started());
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!std::filesystem::exists(dir_ + "/port")) {
      if (std::chrono::steady_clock::now() > deadline || !child->alive()) {
        ADD_FAILURE() << "key_service did not start: "
                      << ReadFile(dir_ + "/stderr");
        return child;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const int port = std::stoi(ReadFile(dir_ + "/port"));
    port_ = port;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::MakeChannel(absl::StrCat("127.0.0.1:", port), ops_.Material());
    EXPECT_OK(channel.status());
    stub_ = KeyService::NewStub(*channel);
    return child;
  }

  template <typename Request, typename Response>
  absl::StatusOr<KeyInfo> Call(
      grpc::Status (KeyService::Stub::*method)(grpc::ClientContext*,
                                               const Request&, Response*),
      absl::string_view key_id, absl::string_view owner = "") {
    Request request;
    request.mutable_metadata()->set_request_id(absl::StrCat("r", ++counter_));
    request.mutable_metadata()->mutable_justification()->set_reason(
        Justification::CUSTODIAN_INITIATED_SERVICE);
    request.set_key_id(std::string(key_id));
    if constexpr (std::is_same_v<Request, v1::CreateKeyRequest>) {
      request.set_owner(std::string(owner));
    }
    Response response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    context.set_wait_for_ready(true);
    grpc::Status s = (stub_.get()->*method)(&context, request, &response);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          s.error_message());
    }
    return response.key();
  }

  // The stored audit log, verified offline: its entry count and the
  // allowed (status 0) entries per operation.
  struct AuditCounts {
    uint64_t entries = 0;
    std::map<v1::Operation, size_t> allowed;
  };
  absl::StatusOr<AuditCounts> VerifyAndCountAudit() const {
    absl::StatusOr<std::string> public_key =
        ReadPublicKeyPemFile(dir_ + "/data/audit_public_key.pem");
    if (!public_key.ok()) return public_key.status();
    absl::StatusOr<AuditVerification> verified =
        VerifyAuditDirectory(dir_ + "/data/audit", *public_key);
    if (!verified.ok()) return verified.status();
    absl::StatusOr<std::unique_ptr<AuditLogReader>> reader =
        AuditLogReader::Open(dir_ + "/data/audit");
    if (!reader.ok()) return reader.status();
    AuditCounts counts;
    counts.entries = verified->entries;
    absl::Status read =
        (*reader)->Read(0, 0, [&](const v1::ReadAuditLogResponse& item) {
          if (item.has_entry() && item.entry().status_code() == 0) {
            ++counts.allowed[item.entry().operation()];
          }
          return true;
        });
    if (!read.ok()) return read;
    return counts;
  }

  TempDir temp_;
  std::string dir_;
  std::optional<tls::CertificateAuthority> ca_;
  tls::Identity ops_;
  std::unique_ptr<KeyService::Stub> stub_;
  int port_ = 0;
  int counter_ = 0;
};

// `haystack` holds `secret` raw, in hex (either case) or in base64.
bool Contains(const std::string& haystack, const std::string& secret) {
  for (const std::string& form :
       {secret, absl::BytesToHexString(secret),
        absl::AsciiStrToUpper(absl::BytesToHexString(secret)),
        absl::Base64Escape(secret)}) {
    if (haystack.find(form) != std::string::npos) return true;
  }
  return false;
}

TEST_F(KeyServiceProcessTest,
       KillNineRightAfterAcknowledgedChangesLosesNothing) {
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key_id = absl::StrCat("key-", round);
    {
      std::unique_ptr<Child> service = StartService();
      ASSERT_OK(Call(&KeyService::Stub::CreateKey, key_id, "alice").status());
      service->Kill(SIGKILL);
      EXPECT_EQ(service->Wait(std::chrono::seconds(10)), -SIGKILL);
    }
    {
      std::unique_ptr<Child> service = StartService();
      ASSERT_OK_AND_ASSIGN(KeyInfo rotated,
                           Call(&KeyService::Stub::RotateKey, key_id));
      ASSERT_EQ(rotated.current_version(), 2u);
      service->Kill(SIGKILL);
      EXPECT_EQ(service->Wait(std::chrono::seconds(10)), -SIGKILL);
    }
  }
  std::unique_ptr<Child> service = StartService();
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_OK_AND_ASSIGN(KeyInfo info, Call(&KeyService::Stub::GetKeyInfo,
                                            absl::StrCat("key-", round)));
    EXPECT_EQ(info.current_version(), 2u) << round;
    EXPECT_EQ(info.versions_size(), 2) << round;
    EXPECT_EQ(info.owner(), "alice");
  }
  service->Kill(SIGTERM);
  EXPECT_EQ(service->Wait(std::chrono::seconds(10)), 0);

  // Every acknowledged change also left its audit entry, and the log still
  // verifies across the kills.
  ASSERT_OK_AND_ASSIGN(AuditCounts audit, VerifyAndCountAudit());
  EXPECT_EQ(audit.entries, 3u * kRounds);
  EXPECT_EQ(audit.allowed[v1::OPERATION_CREATE_KEY], size_t{kRounds});
  EXPECT_EQ(audit.allowed[v1::OPERATION_ROTATE_KEY], size_t{kRounds});
}

// Rounds of concurrent calls, each ended by kill -9 at a seeded random
// moment (RESIDENCY_CRASH_SEED picks another sequence; the seed is
// printed): operators create and rotate keys while alice asks for data
// keys. After the last round, every acknowledged key and version is there,
// every acknowledged wrapped data key unwraps to the data key handed out,
// and the audit log verifies.
TEST_F(KeyServiceProcessTest, KillNineDuringConcurrentCallsLosesNothing) {
  constexpr int kWriters = 4;
  constexpr int kRounds = 4;
  uint64_t seed = 0;
  ASSERT_TRUE(residency::testing::CrashSeed(&seed));
  std::mt19937_64 random(seed);
  ASSERT_OK_AND_ASSIGN(tls::Identity alice,
                       ca_->Issue("residency://user/alice"));

  struct DataKey {
    v1::ObjectRef context;
    v1::WrappedKey wrapped;
    std::string plaintext;
  };
  absl::Mutex mu;
  std::map<std::string, uint32_t> versions;  // acknowledged key versions
  std::vector<DataKey> data_keys;            // acknowledged data keys
  int counter = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::unique_ptr<Child> service = StartService();
    ASSERT_GT(port_, 0);
    // One key alice's data keys come from, made before the writers start.
    const std::string shared_key = absl::StrCat("shared-", round);
    ASSERT_OK(Call(&KeyService::Stub::CreateKey, shared_key, "alice").status());
    {
      absl::MutexLock lock(&mu);
      versions[shared_key] = 1;
    }
    ASSERT_OK_AND_ASSIGN(
        std::shared_ptr<grpc::Channel> ops_channel,
        tls::MakeChannel(absl::StrCat("127.0.0.1:", port_), ops_.Material()));
    ASSERT_OK_AND_ASSIGN(
        std::shared_ptr<grpc::Channel> alice_channel,
        tls::MakeChannel(absl::StrCat("127.0.0.1:", port_), alice.Material()));
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        auto ops = KeyService::NewStub(ops_channel);
        auto user = KeyService::NewStub(alice_channel);
        auto metadata = [&](v1::RequestMetadata* m,
                            Justification::Reason reason) {
          absl::MutexLock lock(&mu);
          m->set_request_id(absl::StrCat("w", w, "-", ++counter));
          m->mutable_justification()->set_reason(reason);
        };
        auto deadline = [](grpc::ClientContext* context) {
          context->set_deadline(std::chrono::system_clock::now() +
                                std::chrono::seconds(20));
        };
        for (int i = 0; !stop; ++i) {
          grpc::Status s;
          if (w % 2 == 0) {
            // Operators: a new key, then a rotation of it.
            const std::string key_id = absl::StrCat("k", round, "-", w, "-", i);
            v1::CreateKeyRequest create;
            metadata(create.mutable_metadata(),
                     Justification::CUSTODIAN_INITIATED_SERVICE);
            create.set_key_id(key_id);
            create.set_owner("alice");
            v1::CreateKeyResponse created;
            grpc::ClientContext c1;
            deadline(&c1);
            if (!ops->CreateKey(&c1, create, &created).ok()) break;
            {
              absl::MutexLock lock(&mu);
              versions[key_id] = 1;
            }
            v1::RotateKeyRequest rotate;
            metadata(rotate.mutable_metadata(),
                     Justification::CUSTODIAN_INITIATED_SERVICE);
            rotate.set_key_id(key_id);
            v1::RotateKeyResponse rotated;
            grpc::ClientContext c2;
            deadline(&c2);
            if (!ops->RotateKey(&c2, rotate, &rotated).ok()) break;
            absl::MutexLock lock(&mu);
            versions[key_id] = rotated.key().current_version();
          } else {
            // Alice: data keys under the round's shared key.
            v1::GenerateDataKeyRequest request;
            metadata(request.mutable_metadata(),
                     Justification::CUSTOMER_INITIATED_ACCESS);
            request.set_key_id(shared_key);
            request.mutable_context()->set_owner("alice");
            request.mutable_context()->set_object_id(
                absl::StrCat("o", round, "-", w, "-", i));
            request.mutable_context()->set_version(1);
            v1::GenerateDataKeyResponse response;
            grpc::ClientContext c;
            deadline(&c);
            if (!user->GenerateDataKey(&c, request, &response).ok()) break;
            absl::MutexLock lock(&mu);
            data_keys.push_back({request.context(), response.wrapped_key(),
                                 response.plaintext_key()});
          }
        }
      });
    }
    const int delay_ms = 200 + static_cast<int>(random() % 800);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    service->Kill(SIGKILL);
    EXPECT_EQ(service->Wait(std::chrono::seconds(10)), -SIGKILL);
    stop = true;
    for (std::thread& t : writers) t.join();
  }
  std::printf("acknowledged before the kills: %zu keys, %zu data keys\n",
              versions.size(), data_keys.size());
  ASSERT_GT(versions.size(), static_cast<size_t>(kRounds));
  ASSERT_GT(data_keys.size(), 5u);

  std::unique_ptr<Child> service = StartService();
  ASSERT_GT(port_, 0);
  for (const auto& [key_id, version] : versions) {
    ASSERT_OK_AND_ASSIGN(KeyInfo info,
                         Call(&KeyService::Stub::GetKeyInfo, key_id));
    // A rotation done just before a kill may be there unacknowledged.
    EXPECT_GE(info.current_version(), version) << key_id;
    EXPECT_EQ(info.owner(), "alice") << key_id;
  }
  ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<grpc::Channel> alice_channel,
      tls::MakeChannel(absl::StrCat("127.0.0.1:", port_), alice.Material()));
  auto user = KeyService::NewStub(alice_channel);
  for (const DataKey& key : data_keys) {
    v1::UnwrapRequest request;
    request.mutable_metadata()->set_request_id(absl::StrCat("u", ++counter));
    request.mutable_metadata()->mutable_justification()->set_reason(
        Justification::CUSTOMER_INITIATED_ACCESS);
    *request.mutable_wrapped_key() = key.wrapped;
    *request.mutable_context() = key.context;
    v1::UnwrapResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    const grpc::Status s = user->Unwrap(&context, request, &response);
    ASSERT_TRUE(s.ok()) << key.context.object_id() << ": " << s.error_message();
    EXPECT_TRUE(response.plaintext_key() == key.plaintext)
        << key.context.object_id();
  }
  service->Kill(SIGTERM);
  EXPECT_EQ(service->Wait(std::chrono::seconds(10)), 0);

  // The log verifies across the kills and holds an allowed entry for every
  // acknowledged call.
  ASSERT_OK_AND_ASSIGN(AuditCounts audit, VerifyAndCountAudit());
  const size_t creates = audit.allowed[v1::OPERATION_CREATE_KEY];
  const size_t generated = audit.allowed[v1::OPERATION_GENERATE_DATA_KEY];
  EXPECT_GE(creates, versions.size());
  EXPECT_GE(generated, data_keys.size());
  EXPECT_GE(audit.entries, creates + generated);
}

// A crash of the custodian leaves no key behind: core dumps are off for
// the process (and it is not dumpable), and what it printed up to and at
// the crash holds neither a data key it handed out nor its root key.
TEST_F(KeyServiceProcessTest, CrashLeavesNoCoreAndNoKeyBytesInItsOutput) {
  std::unique_ptr<Child> service = StartService();
  ASSERT_GT(port_, 0);
  const std::string limits =
      ReadFile(absl::StrCat("/proc/", service->pid(), "/limits"));
  EXPECT_THAT(limits,
              ::testing::ContainsRegex("Max core file size +0 +0 +bytes"));

  ASSERT_OK(Call(&KeyService::Stub::CreateKey, "alice-key", "alice").status());
  ASSERT_OK_AND_ASSIGN(tls::Identity alice,
                       ca_->Issue("residency://user/alice"));
  ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<grpc::Channel> channel,
      tls::MakeChannel(absl::StrCat("127.0.0.1:", port_), alice.Material()));
  std::vector<std::string> data_keys;
  for (int i = 0; i < 3; ++i) {
    v1::GenerateDataKeyRequest request;
    request.mutable_metadata()->set_request_id(absl::StrCat("gdk-", i));
    request.mutable_metadata()->mutable_justification()->set_reason(
        Justification::CUSTOMER_INITIATED_ACCESS);
    request.set_key_id("alice-key");
    request.mutable_context()->set_owner("alice");
    request.mutable_context()->set_object_id(absl::StrCat("o", i));
    request.mutable_context()->set_version(1);
    grpc::ClientContext context;
    v1::GenerateDataKeyResponse response;
    ASSERT_TRUE(KeyService::NewStub(channel)
                    ->GenerateDataKey(&context, request, &response)
                    .ok());
    ASSERT_EQ(response.plaintext_key().size(), 32u);
    data_keys.push_back(response.plaintext_key());
  }
  const std::string root_key = ReadFile(dir_ + "/data/root.key");
  ASSERT_FALSE(root_key.empty());

  service->Kill(SIGSEGV);
  // Under a sanitizer its handler reports the signal and exits with a
  // status of its own (ASan 1, TSan 66) instead of dying by it.
  const std::optional<int> exit = service->Wait(std::chrono::seconds(10));
  if (residency::testing::kUnderSanitizer) {
    EXPECT_TRUE(exit.has_value() && *exit > 0) << exit.value_or(-1);
  } else {
    EXPECT_EQ(exit, -SIGSEGV);
  }
  const std::string output = ReadFile(dir_ + "/stderr");
  for (const std::string& key : data_keys) EXPECT_FALSE(Contains(output, key));
  EXPECT_FALSE(Contains(output, root_key));
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir_)) {
    EXPECT_THAT(entry.path().filename().string(),
                ::testing::Not(::testing::StartsWith("core")))
        << entry.path();
  }
}

TEST_F(KeyServiceProcessTest, MissingPolicyFileStopsStartup) {
  std::vector<std::string> flags = Flags();
  flags[2] = "--policy=" + dir_ + "/no-such-policy.textproto";
  Child child(flags, dir_ + "/stderr");
  EXPECT_EQ(child.Wait(std::chrono::seconds(20)), 1);
  EXPECT_THAT(ReadFile(dir_ + "/stderr"),
              HasSubstr("no-such-policy.textproto"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/port"));
}

TEST_F(KeyServiceProcessTest,
       MalformedPolicyFileStopsStartupWithLineAndColumn) {
  std::ofstream(dir_ + "/policy.textproto")
      << "jurisdiction: \"US\"\nrules { name: \"x\" effect: ALOW }\n";
  Child child(Flags(), dir_ + "/stderr");
  EXPECT_EQ(child.Wait(std::chrono::seconds(20)), 1);
  EXPECT_THAT(ReadFile(dir_ + "/stderr"), HasSubstr("policy.textproto:2:"));
}

TEST_F(KeyServiceProcessTest, KeyFileReadableByOthersStopsStartup) {
  ASSERT_EQ(::chmod((dir_ + "/ks.key").c_str(), 0644), 0);
  Child child(Flags(), dir_ + "/stderr");
  EXPECT_EQ(child.Wait(std::chrono::seconds(20)), 1);
  EXPECT_THAT(ReadFile(dir_ + "/stderr"), HasSubstr("ks.key"));
}

TEST_F(KeyServiceProcessTest, UnknownFlagIsAUsageError) {
  std::vector<std::string> flags = Flags();
  flags.push_back("--jurisdicton=CN");
  Child child(flags, dir_ + "/stderr");
  std::optional<int> code = child.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_THAT(ReadFile(dir_ + "/stderr"), HasSubstr("jurisdicton"));
}

TEST_F(KeyServiceProcessTest, MissingRequiredFlagIsAUsageError) {
  std::vector<std::string> flags = Flags();
  flags.erase(flags.begin() + 1);  // --jurisdiction
  Child child(flags, dir_ + "/stderr");
  EXPECT_EQ(child.Wait(std::chrono::seconds(20)), 2);
  EXPECT_THAT(ReadFile(dir_ + "/stderr"),
              HasSubstr("--jurisdiction is required"));
}

TEST_F(KeyServiceProcessTest, HelpDocumentsTheFlags) {
  const std::string out = dir_ + "/help";
  std::string command =
      absl::StrCat(KEY_SERVICE_BINARY, " --help > ", out, " 2>&1");
  std::system(command.c_str());
  const std::string help = ReadFile(out);
  for (const char* flag :
       {"--listen", "--jurisdiction", "--policy", "--data_dir",
        "--root_key_file", "--tls_ca", "--tls_cert", "--tls_key"}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
}

}  // namespace
}  // namespace residency::key_service
