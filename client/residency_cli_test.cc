// The `residency` binary against real key_service and storage_node
// processes on loopback ports, with certificates from a throwaway CA: every
// check runs the command as a user would and compares bytes, exit codes and
// messages.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/process.h"
#include "rpc/status.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::client {
namespace {

using ::residency::testing::TempDir;

namespace fs = std::filesystem;

using ::residency::process::ProcessResult;
using ::residency::process::ReadFileOrEmpty;
using ::residency::process::ServerProcess;
using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// Each key service lets owners run their own keys, and nobody else.
constexpr char kPolicy[] = R"pb(
  jurisdiction: "%s"
  rules { name: "owners-run-own-keys" effect: ALLOW caller_is_owner: true }
)pb";

#define EXPECT_EXIT_CODE(result, code)                                 \
  EXPECT_EQ((result).exit_code, (code)) << "stdout:\n"                 \
                                        << (result).out << "stderr:\n" \
                                        << (result).err

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 random(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(random());
  return s;
}

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// A storage node in front of the real one, as an insider at the operator
// would run it: Get flips one ciphertext bit of what the real node sends;
// Head and List pass through.
class TamperingNode final : public v1::StorageNode::Service {
 public:
  explicit TamperingNode(std::shared_ptr<grpc::Channel> to_node)
      : node_(v1::StorageNode::NewStub(std::move(to_node))) {}

  grpc::Status Head(grpc::ServerContext*, const v1::HeadRequest* request,
                    v1::HeadResponse* response) override {
    grpc::ClientContext context;
    return node_->Head(&context, *request, response);
  }
  grpc::Status List(grpc::ServerContext*, const v1::ListRequest* request,
                    v1::ListResponse* response) override {
    grpc::ClientContext context;
    return node_->List(&context, *request, response);
  }
  grpc::Status Get(grpc::ServerContext*, const v1::GetRequest* request,
                   grpc::ServerWriter<v1::GetResponse>* writer) override {
    grpc::ClientContext context;
    auto reader = node_->Get(&context, *request);
    v1::GetResponse message;
    bool flipped = false;
    while (reader->Read(&message)) {
      if (!flipped && message.has_data() && message.data().size() > 100) {
        (*message.mutable_data())[100] ^= 0x01;
        flipped = true;
      }
      writer->Write(message);
    }
    return reader->Finish();
  }

 private:
  std::unique_ptr<v1::StorageNode::Stub> node_;
};

class ResidencyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("residency_cli_test"));
    certs_ = dir_ + "/certs";
    fs::create_directories(certs_);
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("cli-test-ca"));
    for (const auto& [stem, principal] :
         std::vector<std::pair<std::string, std::string>>{
             {"ks-us", "residency://service/keys-us"},
             {"ks-ch", "residency://service/keys-ch"},
             {"node", "residency://service/cn-node"},
             {"alice", "residency://user/alice"},
             {"bob", "residency://user/bob"},
             {"ops", "residency://operator/cn-telecom"}}) {
      ASSERT_OK_AND_ASSIGN(tls::Identity identity, ca.Issue(principal));
      ASSERT_OK(identity.WriteFiles(certs_, stem));
      if (stem == "alice") alice_material_ = identity.Material();
      if (stem == "node") node_material_ = identity.Material();
    }
    for (const char* jurisdiction : {"US", "CH"}) {
      std::ofstream(absl::StrCat(dir_, "/policy-", jurisdiction, ".textproto"))
          << absl::StrFormat(kPolicy, jurisdiction);
    }
  }

  void TearDown() override {
    // A failed test shows what the servers said (a crash, a refusal).
    if (HasFailure()) {
      for (const auto* server : {&storage_, &keys_us_, &keys_ch_}) {
        if (*server != nullptr) {
          std::cerr << "--- " << (*server)->address() << " log:\n"
                    << (*server)->log() << "\n";
        }
      }
    }
    tamperer_.reset();
    storage_.reset();
    keys_us_.reset();
    keys_ch_.reset();
  }

  std::unique_ptr<ServerProcess> StartKeyService(const std::string& stem,
                                                 const std::string& j) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start(
            KEY_SERVICE_BINARY,
            {"--jurisdiction=" + j,
             absl::StrCat("--policy=", dir_, "/policy-", j, ".textproto"),
             "--data_dir=" + dir_ + "/" + stem,
             "--tls_ca=" + certs_ + "/ca.crt",
             "--tls_cert=" + certs_ + "/" + stem + ".crt",
             "--tls_key=" + certs_ + "/" + stem + ".key"},
            dir_, stem);
    EXPECT_OK(server.status());
    return server.ok() ? *std::move(server) : nullptr;
  }

  // The storage node (CN), the US key service, and, for split custody, the
  // Swiss one.
  void StartServices(bool second_key_service = false) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> node = ServerProcess::Start(
        STORAGE_NODE_BINARY,
        {"--jurisdiction=CN", "--data_dir=" + dir_ + "/node",
         "--operator_principal=residency://operator/cn-telecom",
         "--tls_ca=" + certs_ + "/ca.crt", "--tls_cert=" + certs_ + "/node.crt",
         "--tls_key=" + certs_ + "/node.key"},
        dir_, "node");
    ASSERT_OK(node.status());
    storage_ = *std::move(node);
    keys_us_ = StartKeyService("ks-us", "US");
    ASSERT_NE(keys_us_, nullptr);
    if (second_key_service) {
      keys_ch_ = StartKeyService("ks-ch", "CH");
      ASSERT_NE(keys_ch_, nullptr);
    }
  }

  // Connection flags for `user`, with --key_id=alice-key.
  std::vector<std::string> Connection(const std::string& user = "alice") {
    std::vector<std::string> flags = {
        "--tls_ca=" + certs_ + "/ca.crt",
        "--tls_cert=" + certs_ + "/" + user + ".crt",
        "--tls_key=" + certs_ + "/" + user + ".key",
        "--key_id=alice-key",
        "--retries=1",
    };
    if (storage_ != nullptr)
      flags.push_back("--storage=" + storage_->address());
    if (keys_us_ != nullptr) {
      flags.push_back("--key_service=" + keys_us_->address());
    }
    return flags;
  }

  // Runs `residency` with exactly `args`.
  ProcessResult Bare(const std::vector<std::string>& args) {
    absl::StatusOr<ProcessResult> result =
        process::RunProcess(RESIDENCY_BINARY, args, absl::Seconds(60));
    EXPECT_OK(result.status());
    if (!result.ok()) return {};
    EXPECT_FALSE(result->timed_out) << result->err;
    return *std::move(result);
  }

  // Runs `residency` as alice against the running services, then `args`.
  ProcessResult Cli(const std::vector<std::string>& args,
                    std::vector<std::string> flags = {}) {
    std::vector<std::string> all = Connection();
    all.insert(all.end(), flags.begin(), flags.end());
    all.insert(all.end(), args.begin(), args.end());
    return Bare(all);
  }

  void CreateKey(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"keys", "create", "alice-key"};
    args.insert(args.end(), extra.begin(), extra.end());
    ProcessResult created = Cli(args, SecondKeyService());
    ASSERT_EQ(created.exit_code, 0) << created.err;
    EXPECT_THAT(created.out, HasSubstr("ENABLED"));
  }

  std::vector<std::string> SecondKeyService() {
    if (keys_ch_ == nullptr) return {};
    return {"--key_service_2=" + keys_ch_->address(), "--key_id_2=alice-key"};
  }

  // Stores `content` as object `id` from a local file.
  void Store(const std::string& id, const std::string& content,
             std::vector<std::string> flags = {}) {
    const std::string local = absl::StrCat(dir_, "/upload/", ++uploads_);
    WriteFile(local, content);
    ProcessResult put = Cli({"put", local, "--id=" + id}, std::move(flags));
    ASSERT_EQ(put.exit_code, 0) << put.err;
    ASSERT_THAT(put.out, HasSubstr("stored " + id + " v"));
  }

  // A stub of the storage node for alice, to reach it without the CLI.
  absl::StatusOr<std::unique_ptr<v1::StorageNode::Stub>> AliceNodeStub() {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::MakeChannel(storage_->address(), alice_material_);
    if (!channel.ok()) return channel.status();
    return v1::StorageNode::NewStub(*channel);
  }

  // What the node answers alice's Head of `object_id` (`version` 0: the
  // latest), asked over gRPC.
  absl::StatusOr<v1::HeadResponse> HeadOverGrpc(const std::string& object_id,
                                                uint64_t version = 0) {
    absl::StatusOr<std::unique_ptr<v1::StorageNode::Stub>> stub =
        AliceNodeStub();
    if (!stub.ok()) return stub.status();
    v1::HeadRequest request;
    request.mutable_metadata()->set_request_id("head-over-grpc");
    request.mutable_object()->set_owner("alice");
    request.mutable_object()->set_object_id(object_id);
    request.mutable_object()->set_version(version);
    v1::HeadResponse response;
    grpc::ClientContext context;
    absl::Status status =
        rpc::FromGrpcStatus((*stub)->Head(&context, request, &response));
    if (!status.ok()) return status;
    return response;
  }

  TempDir temp_;
  std::string dir_;
  std::string certs_;
  tls::TlsMaterial alice_material_;
  tls::TlsMaterial node_material_;
  std::unique_ptr<ServerProcess> storage_;
  std::unique_ptr<ServerProcess> keys_us_;
  std::unique_ptr<ServerProcess> keys_ch_;
  std::unique_ptr<grpc::Server> tamperer_;
  int uploads_ = 0;
};

TEST_F(ResidencyCliTest, HelpListsTheCommandsFlagsAndExitCodes) {
  ProcessResult help = Bare({"--help"});
  EXPECT_EXIT_CODE(help, 0);
  for (const char* text : {"put LOCAL",
                           "get ID",
                           "get --prefix",
                           "ls [PREFIX]",
                           "head ID",
                           "rm ID",
                           "keys create|rotate|disable|enable|destroy|info",
                           "Exit codes:",
                           "tamper detected",
                           "usage error",
                           "--storage",
                           "--key_service_2",
                           "--mode",
                           "--device_key",
                           "--jobs",
                           "--progress",
                           "--tls_ca",
                           "--tls_cert",
                           "--tls_key",
                           "--range",
                           "--yes"}) {
    EXPECT_THAT(help.out, HasSubstr(text));
  }
  ProcessResult command = Bare({"help"});
  EXPECT_EXIT_CODE(command, 0);
  EXPECT_THAT(command.out, HasSubstr("Exit codes:"));
}

TEST_F(ResidencyCliTest, UsageErrorsExitTwoAndSayWhatIsWrong) {
  const std::vector<std::string> tls = {
      "--tls_ca=" + certs_ + "/ca.crt", "--tls_cert=" + certs_ + "/alice.crt",
      "--tls_key=" + certs_ + "/alice.key", "--storage=127.0.0.1:1",
      "--key_service=127.0.0.1:1"};
  auto with_tls = [&](std::vector<std::string> args) {
    args.insert(args.begin(), tls.begin(), tls.end());
    return args;
  };
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "no command given"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"--frobnicate=1", "ls"}, "unknown flag --frobnicate"},
      {{"ls", "--nojobs"}, "unknown flag --nojobs"},
      {{"--jobs=many", "ls"}, "--jobs=many"},
      {{"--jobs=0", "ls"}, "--jobs must be between 1 and 64"},
      {{"--progress=sometimes", "ls"}, "--progress is auto"},
      {{"--mode=escrow", "put", "x"}, "--mode"},
      {with_tls({"get", "doc"}), "get needs --out"},
      {with_tls({"get", "doc", "--out=x", "--range=12"}), "OFFSET:LENGTH"},
      {with_tls({"get", "a", "b", "--out=d", "--version=2"}),
       "--version and --range apply to a single object id"},
      {with_tls({"ls", "--out=x"}), "--out is not an option of 'ls'"},
      {with_tls({"put"}), "put needs at least one file"},
      {with_tls({"put", certs_ + "/ca.crt"}), "put needs --key_id"},
      {with_tls({"--key_id=k", "--mode=split", "put", certs_ + "/ca.crt"}),
       "--mode=split needs --key_service_2"},
      {with_tls({"--key_id=k", "--mode=e2e", "put", certs_ + "/ca.crt"}),
       "--mode=e2e needs --device_key"},
      {with_tls({"keys", "shred", "k"}), "unknown keys action 'shred'"},
      {with_tls({"keys", "info", "k", "--on=2"}),
       "--on=2 needs --key_service_2"},
      {{"ls", "--storage=127.0.0.1:1"}, "--tls_ca is required"},
  };
  for (const auto& [args, message] : cases) {
    ProcessResult r = Bare(args);
    EXPECT_EXIT_CODE(r, 2) << absl::StrJoin(args, " ");
    EXPECT_THAT(r.err, HasSubstr(message)) << absl::StrJoin(args, " ");
    EXPECT_THAT(r.err, HasSubstr("residency --help"));
  }
}

TEST_F(ResidencyCliTest, PutThenGetIsByteIdentical) {
  StartServices();
  CreateKey();
  for (size_t size : {size_t{0}, size_t{1}, size_t{16385}, size_t{3 << 20}}) {
    SCOPED_TRACE(size);
    const std::string id = absl::StrCat("blob-", size);
    const std::string content = Bytes(size, static_cast<uint32_t>(size));
    Store(id, content);
    const std::string out = absl::StrCat(dir_, "/got-", size);
    ProcessResult get = Cli({"get", id, "--out=" + out});
    EXPECT_EXIT_CODE(get, 0);
    EXPECT_THAT(get.out, HasSubstr(absl::StrCat("fetched ", id, " v1 -> ")));
    EXPECT_TRUE(ReadFileOrEmpty(out) == content);
    EXPECT_EQ(fs::file_size(out), size);
    EXPECT_FALSE(fs::exists(out + ".partial"));
    // stderr is not a terminal: no progress line by default.
    EXPECT_THAT(get.err, Not(HasSubstr("\r")));
  }
  // Standard output carries the bytes and nothing else.
  ProcessResult to_stdout = Cli({"get", "blob-16385", "--out=-"});
  EXPECT_EXIT_CODE(to_stdout, 0);
  EXPECT_TRUE(to_stdout.out == Bytes(16385, 16385));
  // A progress line when asked for, ending at 100%.
  ProcessResult progress =
      Cli({"get", "blob-3145728", "--out=" + dir_ + "/progress",
           "--progress=always"});
  EXPECT_EXIT_CODE(progress, 0);
  EXPECT_THAT(progress.err,
              AllOf(HasSubstr("3.0 MiB / 3.0 MiB 100%"), HasSubstr("MiB/s")));
}

TEST_F(ResidencyCliTest, DirectoryTreeRoundTripsWithConcurrentTransfers) {
  StartServices();
  CreateKey();
  const std::string tree = dir_ + "/photos";
  std::map<std::string, std::string> files;
  for (int i = 0; i < 9; ++i) {
    const std::string relative = absl::StrCat(
        i % 3 == 0 ? "" : "2014/", i % 3 == 2 ? "raw/" : "", "img-", i, ".jpg");
    files[relative] = Bytes(i * 7001 % 40000, i);
    WriteFile(tree + "/" + relative, files[relative]);
  }
  ProcessResult put = Cli({"put", tree + "/", "--to=backup", "--jobs=4"});
  EXPECT_EXIT_CODE(put, 0);
  EXPECT_THAT(put.err, HasSubstr("9 of 9 files stored"));
  EXPECT_THAT(put.out, HasSubstr("stored backup/photos/2014/raw/img-2.jpg v1"));

  ProcessResult ls = Cli({"ls", "backup/photos/2014/"});
  EXPECT_EXIT_CODE(ls, 0);
  EXPECT_EQ(
      std::vector<std::string>(absl::StrSplit(ls.out, '\n', absl::SkipEmpty()))
          .size(),
      1 + 6);

  const std::string restore = dir_ + "/restore";
  ProcessResult get =
      Cli({"get", "--prefix=backup/photos/", "--out=" + restore, "--jobs=4"});
  EXPECT_EXIT_CODE(get, 0);
  EXPECT_THAT(get.err, HasSubstr("9 of 9 files fetched"));
  size_t seen = 0;
  for (const auto& entry : fs::recursive_directory_iterator(restore)) {
    if (!entry.is_regular_file()) continue;
    ++seen;
    const std::string relative =
        entry.path().lexically_relative(restore + "/backup/photos").string();
    ASSERT_TRUE(files.contains(relative)) << entry.path();
    EXPECT_TRUE(ReadFileOrEmpty(entry.path()) == files[relative]) << relative;
  }
  EXPECT_EQ(seen, files.size());
}

TEST_F(ResidencyCliTest, HeadEscapesTheResidencyRuleItPrints) {
  // The rule comes back from the node, which does not check its names (the
  // CLI does, so the object is stored here over gRPC): a name in it must
  // not drive the terminal.
  StartServices();
  CreateKey();
  Store("model", "x");
  ASSERT_OK_AND_ASSIGN(v1::HeadResponse model, HeadOverGrpc("model"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<v1::StorageNode::Stub> stub,
                       AliceNodeStub());
  v1::PutRequest start;
  start.mutable_start()->mutable_metadata()->set_request_id("t2");
  v1::ObjectHeader& header = *start.mutable_start()->mutable_header();
  header = model.object().header();
  header.mutable_object()->set_object_id("ruled");
  header.mutable_object()->set_version(1);
  header.mutable_residency()->clear_allowed_jurisdictions();
  header.mutable_residency()->add_allowed_jurisdictions("CN");
  header.mutable_residency()->add_allowed_jurisdictions("\x1b[2J");
  v1::PutRequest data;
  data.set_data(std::string(header.ciphertext_length(), 'c'));
  {
    grpc::ClientContext context;
    v1::PutResponse response;
    auto writer = stub->Put(&context, &response);
    ASSERT_TRUE(writer->Write(start));
    ASSERT_TRUE(writer->Write(data));
    ASSERT_TRUE(writer->WritesDone());
    const grpc::Status put = writer->Finish();
    ASSERT_TRUE(put.ok()) << put.error_message();
  }

  ProcessResult head = Cli({"head", "ruled"});
  EXPECT_EXIT_CODE(head, 0);
  EXPECT_THAT(head.out, ContainsRegex("\nresidency +CN, \\\\x1b\\[2J\n"));
  EXPECT_THAT(head.out, Not(HasSubstr("\x1b")));
}

TEST_F(ResidencyCliTest, LsHeadAndRmDescribeWhatIsStoredWithoutKeyBytes) {
  StartServices();
  CreateKey();
  Store("notes/doc.txt", "first");
  Store("notes/doc.txt", "second version");
  Store("other", "x");

  ProcessResult ls = Cli({"ls", "notes/"});
  EXPECT_EXIT_CODE(ls, 0);
  const std::vector<std::string> rows =
      absl::StrSplit(ls.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(rows.size(), 2u) << ls.out;
  EXPECT_THAT(rows[0],
              AllOf(HasSubstr("ID"), HasSubstr("VERSION"), HasSubstr("SIZE"),
                    HasSubstr("MODE"), HasSubstr("STORED AT")));
  EXPECT_THAT(rows[1], ::testing::MatchesRegex(
                           "notes/doc.txt +2 +14 +custodian +20[0-9-]+T.*Z"));
  ProcessResult all = Cli({"ls", "--all_versions"});
  EXPECT_EXIT_CODE(all, 0);
  EXPECT_EQ(
      std::vector<std::string>(absl::StrSplit(all.out, '\n', absl::SkipEmpty()))
          .size(),
      4u)
      << all.out;

  ProcessResult head = Cli({"head", "notes/doc.txt", "--version=1"});
  EXPECT_EXIT_CODE(head, 0);
  EXPECT_THAT(
      head.out,
      AllOf(ContainsRegex("\ncustody +custodian\n"),
            ContainsRegex("\nversion +1\n"), HasSubstr("5 bytes"),
            HasSubstr("key alice-key v1"), HasSubstr("whole data key")));
  // The wrapped key itself, in any spelling, is not in the output.
  ASSERT_OK_AND_ASSIGN(v1::HeadResponse response,
                       HeadOverGrpc("notes/doc.txt", 1));
  const std::string wrapped =
      response.object().header().wrapped_keys(0).wrapped();
  ASSERT_GE(wrapped.size(), 32u);
  for (const std::string& spelling :
       {wrapped.substr(12, 16), absl::BytesToHexString(wrapped).substr(24, 32),
        absl::Base64Escape(wrapped).substr(16, 20),
        absl::CHexEscape(wrapped.substr(12, 16))}) {
    EXPECT_THAT(head.out + head.err, Not(HasSubstr(spelling)));
  }

  ProcessResult rm_one = Cli({"rm", "notes/doc.txt", "--version=1"});
  EXPECT_EXIT_CODE(rm_one, 0);
  EXPECT_THAT(rm_one.out, HasSubstr("deleted 1 version of notes/doc.txt"));
  ProcessResult rm_rest = Cli({"rm", "notes/doc.txt"});
  EXPECT_EXIT_CODE(rm_rest, 0);
  ProcessResult gone = Cli({"head", "notes/doc.txt"});
  EXPECT_EXIT_CODE(gone, 1);
  EXPECT_THAT(gone.err, AllOf(HasSubstr("residency: head notes/doc.txt: "
                                        "NOT_FOUND"),
                              HasSubstr("residency ls")));
  ProcessResult left = Cli({"ls"});
  EXPECT_THAT(left.out, AllOf(HasSubstr("other"), Not(HasSubstr("notes/"))));
}

TEST_F(ResidencyCliTest, RangedGetReturnsOnlyTheRequestedBytes) {
  StartServices();
  CreateKey();
  const std::string content = Bytes(50000, 5);
  Store("big", content);
  ProcessResult middle =
      Cli({"get", "big", "--range=16380:10", "--out=" + dir_ + "/middle"});
  EXPECT_EXIT_CODE(middle, 0);
  EXPECT_TRUE(ReadFileOrEmpty(dir_ + "/middle") == content.substr(16380, 10));
  ProcessResult tail = Cli({"get", "big", "--range=40000:", "--out=-"});
  EXPECT_EXIT_CODE(tail, 0);
  EXPECT_TRUE(tail.out == content.substr(40000));
}

TEST_F(ResidencyCliTest, E2eCustodyNeedsTheDeviceKeyToRead) {
  StartServices();
  CreateKey();
  const std::string device_key = dir_ + "/device.key";
  const std::string content = Bytes(20000, 7);
  WriteFile(dir_ + "/secret", content);
  ProcessResult put = Cli({"put", dir_ + "/secret", "--id=secret"},
                          {"--mode=e2e", "--device_key=" + device_key});
  EXPECT_EXIT_CODE(put, 0);
  EXPECT_THAT(put.err,
              AllOf(HasSubstr("created a new device key in " + device_key),
                    HasSubstr("Back it up")));
  struct stat st;
  ASSERT_EQ(::stat(device_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ProcessResult head = Cli({"head", "secret"});
  EXPECT_THAT(head.out, AllOf(ContainsRegex("\ncustody +e2e\n"),
                              HasSubstr("device key device-")));

  const std::string out = dir_ + "/secret.out";
  ProcessResult without = Cli({"get", "secret", "--out=" + out});
  EXPECT_EXIT_CODE(without, 1);
  EXPECT_THAT(without.err,
              AllOf(HasSubstr("residency: get secret: "),
                    HasSubstr("device key"), HasSubstr("--device_key=PATH")));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));

  ProcessResult with =
      Cli({"get", "secret", "--out=" + out}, {"--device_key=" + device_key});
  EXPECT_EXIT_CODE(with, 0);
  EXPECT_TRUE(ReadFileOrEmpty(out) == content);
  // A second put reuses the key without a note.
  ProcessResult again = Cli({"put", dir_ + "/secret", "--id=secret"},
                            {"--mode=e2e", "--device_key=" + device_key});
  EXPECT_EXIT_CODE(again, 0);
  EXPECT_THAT(again.err, Not(HasSubstr("device key")));
}

TEST_F(ResidencyCliTest, SplitCustodyNeedsBothKeyServicesToRead) {
  StartServices(/*second_key_service=*/true);
  CreateKey();
  CreateKey({"--on=2"});
  const std::string content = Bytes(30000, 9);
  std::vector<std::string> split = SecondKeyService();
  split.push_back("--mode=split");
  Store("shared", content, split);
  ProcessResult head = Cli({"head", "shared"});
  EXPECT_THAT(head.out, AllOf(ContainsRegex("\ncustody +split\n"),
                              HasSubstr("(US), key alice-key v1, share"),
                              HasSubstr("(CH), key alice-key v1, share")));

  const std::string out = dir_ + "/shared.out";
  ProcessResult one = Cli({"get", "shared", "--out=" + out});
  EXPECT_EXIT_CODE(one, 1);
  EXPECT_THAT(one.err, AllOf(HasSubstr("residency: get shared: "),
                             HasSubstr("--key_service_2")));
  EXPECT_FALSE(fs::exists(out));
  ProcessResult both =
      Cli({"get", "shared", "--out=" + out}, SecondKeyService());
  EXPECT_EXIT_CODE(both, 0);
  EXPECT_TRUE(ReadFileOrEmpty(out) == content);
}

TEST_F(ResidencyCliTest, DisabledKeyStopsGetsUntilEnabled) {
  StartServices();
  CreateKey();
  Store("doc", "contents");
  ProcessResult disable = Cli({"keys", "disable", "alice-key"});
  EXPECT_EXIT_CODE(disable, 0);
  EXPECT_THAT(disable.out, HasSubstr("DISABLED"));

  const std::string out = dir_ + "/doc.out";
  ProcessResult refused = Cli({"get", "doc", "--out=" + out});
  EXPECT_EXIT_CODE(refused, 1);
  EXPECT_THAT(refused.err,
              AllOf(HasSubstr("residency: get doc: "
                              "FAILED_PRECONDITION"),
                    HasSubstr("disabled"), HasSubstr("residency keys enable")));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));

  ProcessResult enable = Cli({"keys", "enable", "alice-key"});
  EXPECT_EXIT_CODE(enable, 0);
  ProcessResult got = Cli({"get", "doc", "--out=" + out});
  EXPECT_EXIT_CODE(got, 0);
  EXPECT_EQ(ReadFileOrEmpty(out), "contents");
}

TEST_F(ResidencyCliTest, DestroyNeedsYesAndThenShredsForGood) {
  StartServices();
  CreateKey();
  Store("doc", "contents");
  ProcessResult refused = Cli({"keys", "destroy", "alice-key"});
  EXPECT_EXIT_CODE(refused, 2);
  EXPECT_THAT(refused.err, AllOf(HasSubstr("irreversibl"), HasSubstr("--yes")));
  ProcessResult info = Cli({"keys", "info", "alice-key"});
  EXPECT_THAT(info.out, HasSubstr("ENABLED"));
  EXPECT_EXIT_CODE(Cli({"get", "doc", "--out=-"}), 0);

  ProcessResult destroyed = Cli({"keys", "destroy", "alice-key", "--yes"});
  EXPECT_EXIT_CODE(destroyed, 0);
  EXPECT_THAT(destroyed.out, HasSubstr("DESTROYED"));
  ProcessResult unreadable = Cli({"get", "doc", "--out=-"});
  EXPECT_EXIT_CODE(unreadable, 1);
  EXPECT_THAT(unreadable.err, HasSubstr("destroyed"));
  EXPECT_EQ(unreadable.out, "");
}

TEST_F(ResidencyCliTest, PartialFailureCarriesOnAndExitsOne) {
  StartServices();
  CreateKey();
  WriteFile(dir_ + "/a.txt", "a");
  WriteFile(dir_ + "/b.txt", "b");
  ProcessResult put =
      Cli({"put", dir_ + "/a.txt", dir_ + "/missing.txt", dir_ + "/b.txt"});
  EXPECT_EXIT_CODE(put, 1);
  EXPECT_THAT(put.err, AllOf(HasSubstr("residency: put " + dir_ +
                                       "/missing.txt: NOT_FOUND"),
                             HasSubstr("2 of 3 files stored")));
  const std::string out = dir_ + "/out";
  ProcessResult get = Cli({"get", "a.txt", "nothere", "b.txt", "--out=" + out});
  EXPECT_EXIT_CODE(get, 1);
  EXPECT_THAT(get.err, AllOf(HasSubstr("residency: get nothere: NOT_FOUND"),
                             HasSubstr("2 of 3 files fetched")));
  EXPECT_EQ(ReadFileOrEmpty(out + "/a.txt"), "a");
  EXPECT_EQ(ReadFileOrEmpty(out + "/b.txt"), "b");
  EXPECT_FALSE(fs::exists(out + "/nothere"));
  EXPECT_FALSE(fs::exists(out + "/nothere.partial"));
}

TEST_F(ResidencyCliTest, ErrorsShowANonAsciiNameAsItIs) {
  // The node quotes the name in its NOT_FOUND, the CLI escapes the line it
  // prints: the name is escaped once, so a Chinese name with an apostrophe
  // reads as itself.
  StartServices();
  CreateKey();
  const std::string name = "\xe6\x8a\xa5\xe5\x91\x8a's.txt";  // 报告's.txt
  ProcessResult get = Cli({"get", name, "--out=" + dir_ + "/out"});
  EXPECT_EXIT_CODE(get, 1);
  EXPECT_THAT(get.err,
              AllOf(HasSubstr("NOT_FOUND"), HasSubstr("'alice/" + name + "'")));
  EXPECT_THAT(get.err, Not(HasSubstr("\\x")));
}

TEST_F(ResidencyCliTest, TwoFilesForOneObjectIdAreAUsageError) {
  StartServices();
  CreateKey();
  WriteFile(dir_ + "/x/same.txt", "1");
  WriteFile(dir_ + "/y/same.txt", "2");
  ProcessResult put = Cli({"put", dir_ + "/x/same.txt", dir_ + "/y/same.txt"});
  EXPECT_EXIT_CODE(put, 2);
  EXPECT_THAT(put.err, HasSubstr("would both be stored as 'same.txt'"));
  ProcessResult ls = Cli({"ls"});
  EXPECT_THAT(ls.err, HasSubstr("no objects"));
}

TEST_F(ResidencyCliTest, GetRefusesObjectIdsThatWouldEscapeTheOutputDir) {
  StartServices();
  CreateKey();
  Store("../escape", "x");
  const std::string out = dir_ + "/inside";
  fs::create_directories(out);
  ProcessResult named = Cli({"get", "../escape", "--out=" + out});
  EXPECT_EXIT_CODE(named, 1);
  EXPECT_THAT(named.err, HasSubstr("has a '..' path segment"));
  ProcessResult listed = Cli({"get", "--prefix=..", "--out=" + out});
  EXPECT_EXIT_CODE(listed, 1);
  EXPECT_FALSE(fs::exists(dir_ + "/escape"));
  EXPECT_FALSE(fs::exists(dir_ + "/escape.partial"));
  // Fetched alone to a named file it is fine.
  ProcessResult alone = Cli({"get", "../escape", "--out=" + out + "/file"});
  EXPECT_EXIT_CODE(alone, 0);
}

TEST_F(ResidencyCliTest, TamperedCiphertextExitsThreeAndWritesNothing) {
  StartServices();
  CreateKey();
  Store("doc", Bytes(40000, 3));
  // An insider's node in front of the real one, with the node's own
  // certificate so the client cannot tell.
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> to_node,
                       tls::MakeChannel(storage_->address(), alice_material_));
  TamperingNode insider(to_node);
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::ServerCredentials> credentials,
                       tls::MakeServerCredentials(node_material_));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", credentials, &port);
  builder.RegisterService(&insider);
  tamperer_ = builder.BuildAndStart();
  ASSERT_NE(tamperer_, nullptr);
  const std::string storage = absl::StrCat("--storage=127.0.0.1:", port);

  const std::string out = dir_ + "/doc.out";
  ProcessResult get = Cli({"get", "doc", "--out=" + out}, {storage});
  EXPECT_EXIT_CODE(get, 3);
  EXPECT_THAT(get.err, AllOf(HasSubstr("residency: get doc: DATA_LOSS"),
                             HasSubstr("failed authentication")));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));
  // Tampering wins over other failures in the exit code.
  ProcessResult mixed =
      Cli({"get", "doc", "nothere", "--out=" + dir_ + "/mixed"}, {storage});
  EXPECT_EXIT_CODE(mixed, 3);
  tamperer_->Shutdown();
}

TEST_F(ResidencyCliTest, CertificatesFromAnotherCaFailClearly) {
  StartServices();
  const std::string other = dir_ + "/other";
  fs::create_directories(other);
  ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                       tls::CertificateAuthority::Create("another-ca"));
  ASSERT_OK_AND_ASSIGN(tls::Identity alice, ca.Issue("residency://user/alice"));
  ASSERT_OK(alice.WriteFiles(other, "alice"));

  // A consistent set from the other CA: the services refuse the handshake.
  ProcessResult foreign = Cli({"ls"}, {"--tls_ca=" + other + "/ca.crt",
                                       "--tls_cert=" + other + "/alice.crt",
                                       "--tls_key=" + other + "/alice.key"});
  EXPECT_EXIT_CODE(foreign, 1);
  EXPECT_THAT(foreign.err, AllOf(HasSubstr("residency: ls: UNAVAILABLE"),
                                 HasSubstr("same CA")));
  // A certificate that does not chain to --tls_ca is refused before any
  // connection.
  ProcessResult mixed = Cli({"ls"}, {"--tls_cert=" + other + "/alice.crt",
                                     "--tls_key=" + other + "/alice.key"});
  EXPECT_EXIT_CODE(mixed, 1);
  EXPECT_THAT(mixed.err, HasSubstr("residency: cannot use the certificates"));
}

TEST_F(ResidencyCliTest, UnreachableStorageNodeHintsAtTheAddress) {
  ProcessResult r = Bare({"--tls_ca=" + certs_ + "/ca.crt",
                          "--tls_cert=" + certs_ + "/alice.crt",
                          "--tls_key=" + certs_ + "/alice.key",
                          "--storage=127.0.0.1:1", "--retries=0", "ls"});
  EXPECT_EXIT_CODE(r, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("UNAVAILABLE"),
                           HasSubstr("--storage=127.0.0.1:1")));
}

}  // namespace
}  // namespace residency::client
