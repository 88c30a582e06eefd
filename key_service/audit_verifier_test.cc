#include "key_service/audit_verifier.h"

#include <stdio.h>
#include <sys/wait.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "key_service/audit_format.h"
#include "key_service/audit_log.h"
#include "key_service/audit_signer.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::key_service {
namespace {

using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::residency::v1::AuditCheckpoint;
using ::residency::v1::AuditEntry;
using ::residency::v1::ReadAuditLogResponse;
using ::testing::HasSubstr;

constexpr uint64_t kEntries = 20;
constexpr uint64_t kCheckpointEvery = 4;

MATCHER_P(DataLossWith, text,
          std::string("is DATA_LOSS containing \"") + text + "\"") {
  const absl::Status& status = ::residency::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  return status.code() == absl::StatusCode::kDataLoss &&
         absl::StrContains(status.message(), text);
}

AuditEntry Decision(uint64_t i) {
  AuditEntry entry;
  entry.set_principal(i % 3 == 0 ? "residency://authority/cn"
                                 : "residency://user/alice");
  entry.set_operation(residency::v1::OPERATION_UNWRAP);
  entry.set_request_id(absl::StrCat("req-", i));
  entry.set_key_id("kek-alice");
  entry.set_key_version(1);
  entry.set_decision(i % 3 == 0 ? AuditEntry::DENY : AuditEntry::ALLOW);
  entry.set_rule(i % 3 == 0 ? "default-deny" : "owner-may-unwrap");
  return entry;
}

// Edits the stored log directly, as someone with access to the disk would,
// while no AuditLog has it open.
class RawStore {
 public:
  explicit RawStore(const std::string& dir) {
    rocksdb::DB* db = nullptr;
    const rocksdb::Status status =
        rocksdb::DB::Open(rocksdb::Options(), dir, &db);
    EXPECT_TRUE(status.ok()) << status.ToString();
    db_.reset(db);
  }

  static std::string Key(char prefix, uint64_t sequence) {
    std::string key(1, prefix);
    for (int shift = 56; shift >= 0; shift -= 8) {
      key.push_back(static_cast<char>((sequence >> shift) & 0xff));
    }
    return key;
  }

  std::string Get(char prefix, uint64_t sequence) {
    std::string value;
    EXPECT_TRUE(
        db_->Get(rocksdb::ReadOptions(), Key(prefix, sequence), &value).ok())
        << prefix << sequence;
    return value;
  }
  void Put(char prefix, uint64_t sequence, const std::string& value) {
    EXPECT_TRUE(
        db_->Put(rocksdb::WriteOptions(), Key(prefix, sequence), value).ok());
  }
  void Delete(char prefix, uint64_t sequence) {
    EXPECT_TRUE(
        db_->Delete(rocksdb::WriteOptions(), Key(prefix, sequence)).ok());
  }

  AuditEntry Entry(uint64_t sequence) {
    AuditEntry entry;
    EXPECT_TRUE(entry.ParseFromString(Get('e', sequence)));
    return entry;
  }
  void PutEntry(uint64_t sequence, const AuditEntry& entry) {
    Put('e', sequence, entry.SerializeAsString());
  }
  AuditCheckpoint Checkpoint(uint64_t sequence) {
    AuditCheckpoint checkpoint;
    EXPECT_TRUE(checkpoint.ParseFromString(Get('c', sequence)));
    return checkpoint;
  }
  void PutCheckpoint(const AuditCheckpoint& checkpoint) {
    Put('c', checkpoint.sequence(), checkpoint.SerializeAsString());
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

AuditCheckpoint SignedBy(const AuditSigner& signer, uint64_t sequence,
                         std::string head_hash) {
  AuditCheckpoint checkpoint;
  checkpoint.set_sequence(sequence);
  checkpoint.set_head_hash(std::move(head_hash));
  checkpoint.mutable_time()->set_seconds(1700000000);
  checkpoint.set_public_key_id(signer.public_key_id());
  absl::StatusOr<std::string> signature =
      signer.Sign(CheckpointSigningInput(checkpoint));
  EXPECT_TRUE(signature.ok());
  checkpoint.set_signature(signature.value_or(""));
  return checkpoint;
}

// A real stored log of 20 entries with checkpoints at 4, 8, ..., 20, closed,
// and the checkpoint at 20 kept aside as a verifier would keep it.
class AuditVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(root_, temp_.Make("audit_verifier_test"));
    dir_ = root_ + "/log";
    ASSERT_OK_AND_ASSIGN(AuditSigner signer, AuditSigner::Generate());
    seed_ = signer.seed().Clone();
    public_key_ = signer.public_key();
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog());
    for (uint64_t i = 1; i <= kEntries; ++i) {
      ASSERT_OK(log->AppendAndWait(Decision(i)));
    }
    ASSERT_OK_AND_ASSIGN(trusted_, log->Checkpoint());
    ASSERT_EQ(trusted_.sequence(), kEntries);
  }

  AuditSigner Signer() {
    absl::StatusOr<AuditSigner> signer = AuditSigner::FromSeed(seed_);
    EXPECT_TRUE(signer.ok());
    return *std::move(signer);
  }
  absl::StatusOr<std::unique_ptr<AuditLog>> OpenLog() {
    AuditLogOptions options;
    options.checkpoint_every = kCheckpointEvery;
    return AuditLog::Open(dir_, Signer(), std::move(options));
  }
  absl::StatusOr<AuditVerification> VerifyDir(
      std::optional<AuditCheckpoint> trusted = std::nullopt) {
    return VerifyAuditDirectory(dir_, public_key_, std::move(trusted));
  }
  // Entries [start, end] and stored checkpoints, as a live log sends them.
  std::vector<ReadAuditLogResponse> Read(uint64_t start) {
    std::vector<ReadAuditLogResponse> items;
    absl::StatusOr<std::unique_ptr<AuditLog>> log = OpenLog();
    EXPECT_TRUE(log.ok()) << log.status();
    if (!log.ok()) return items;
    EXPECT_OK((*log)->Read(start, /*max_entries=*/0,
                           [&](const ReadAuditLogResponse& item) {
                             items.push_back(item);
                             return true;
                           }));
    return items;
  }

  TempDir temp_;
  std::string root_;
  std::string dir_;
  crypto::SecretBytes seed_;
  std::string public_key_;
  AuditCheckpoint trusted_;
};

absl::Status VerifyItems(AuditVerifier& verifier,
                         const std::vector<ReadAuditLogResponse>& items) {
  for (const ReadAuditLogResponse& item : items) {
    absl::Status status = verifier.Add(item);
    if (!status.ok()) return status;
  }
  return verifier.Finish();
}

TEST_F(AuditVerifierTest, IntactLogVerifies) {
  ASSERT_OK_AND_ASSIGN(AuditVerification result, VerifyDir(trusted_));
  EXPECT_EQ(result.entries, kEntries);
  EXPECT_EQ(result.checkpoints, kEntries / kCheckpointEvery);
  EXPECT_EQ(result.head_sequence, kEntries);
  EXPECT_EQ(result.head_hash, trusted_.head_hash());
  EXPECT_EQ(result.Summary(),
            absl::StrCat("OK: 20 entries, head ",
                         absl::BytesToHexString(trusted_.head_hash()),
                         " at 20, 5 checkpoints verified"));
}

TEST_F(AuditVerifierTest, VerifiesWhileTheLogIsOpenAndGrowing) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog());
  ASSERT_OK_AND_ASSIGN(AuditVerification before, VerifyDir());
  EXPECT_EQ(before.entries, kEntries);
  for (uint64_t i = kEntries + 1; i <= kEntries + kCheckpointEvery; ++i) {
    ASSERT_OK(log->AppendAndWait(Decision(i)));
  }
  ASSERT_OK_AND_ASSIGN(AuditVerification after, VerifyDir(trusted_));
  EXPECT_EQ(after.entries, kEntries + kCheckpointEvery);
}

TEST_F(AuditVerifierTest, EditedFieldIsNamed) {
  {
    RawStore store(dir_);
    AuditEntry entry = store.Entry(6);
    entry.set_rule("allow-everyone");  // entry_hash left as it was
    store.PutEntry(6, entry);
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("audit entry 6: entry_hash does not "
                                        "match its contents (edited)"));
}

TEST_F(AuditVerifierTest, EditWithRecomputedHashIsCaughtByTheNextLink) {
  {
    RawStore store(dir_);
    AuditEntry entry = store.Entry(6);
    entry.set_principal("residency://user/bob");
    entry.set_entry_hash(ComputeAuditEntryHash(entry));
    store.PutEntry(6, entry);
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("audit entry 7: prev_hash does not "
                                        "link to entry 6"));
}

TEST_F(AuditVerifierTest, RewrittenChainIsCaughtByTheSignedCheckpoint) {
  // Entry 18 edited and 18-20 re-chained consistently: only the signature
  // over entry 20's original hash can tell.
  {
    RawStore store(dir_);
    std::string prev = store.Entry(17).entry_hash();
    for (uint64_t s = 18; s <= 20; ++s) {
      AuditEntry entry = store.Entry(s);
      if (s == 18) entry.set_decision(AuditEntry::ALLOW);
      entry.set_prev_hash(prev);
      entry.set_entry_hash(ComputeAuditEntryHash(entry));
      prev = entry.entry_hash();
      store.PutEntry(s, entry);
    }
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("checkpoint at 20: head_hash does not "
                                        "match entry 20"));
}

TEST_F(AuditVerifierTest, DeletedEntryIsNamedAsAGap) {
  RawStore(dir_).Delete('e', 6);
  EXPECT_THAT(VerifyDir(), DataLossWith("audit log jumps from entry 5 to 7: "
                                        "entry 6 missing"));
}

TEST_F(AuditVerifierTest, SwappedEntriesAreNamed) {
  {
    RawStore store(dir_);
    const std::string six = store.Get('e', 6);
    const std::string seven = store.Get('e', 7);
    store.Put('e', 6, seven);
    store.Put('e', 7, six);
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("audit log jumps from entry 5 to 7: "
                                        "entry 6 missing"));
}

TEST_F(AuditVerifierTest, SwappedAndRenumberedEntriesBreakTheChain) {
  {
    RawStore store(dir_);
    AuditEntry six = store.Entry(6);
    AuditEntry seven = store.Entry(7);
    seven.set_sequence(6);
    seven.set_entry_hash(ComputeAuditEntryHash(seven));
    six.set_sequence(7);
    six.set_entry_hash(ComputeAuditEntryHash(six));
    store.PutEntry(6, seven);
    store.PutEntry(7, six);
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("audit entry 6: prev_hash does not "
                                        "link to entry 5"));
}

TEST_F(AuditVerifierTest, TruncatedTailIsCaughtWithATrustedCheckpoint) {
  {
    RawStore store(dir_);
    for (uint64_t s = 17; s <= 20; ++s) store.Delete('e', s);
    store.Delete('c', 20);
  }
  // What is left is a well-formed, signed log of 16 entries: without an
  // earlier checkpoint nothing can tell.
  ASSERT_OK_AND_ASSIGN(AuditVerification alone, VerifyDir());
  EXPECT_EQ(alone.entries, 16u);
  EXPECT_THAT(VerifyDir(trusted_),
              DataLossWith("audit log ends at entry 16 but trusted checkpoint "
                           "covers 20 (truncated)"));
}

TEST_F(AuditVerifierTest, TruncatedEntriesBeforeTheirCheckpointAreNamed) {
  {
    RawStore store(dir_);
    store.Delete('e', 19);
    store.Delete('e', 20);
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("checkpoint at 20 follows entry 18: "
                                        "entries 19-20 missing (truncated)"));
}

TEST_F(AuditVerifierTest, RewriteAfterTrustedCheckpointIsNamed) {
  // The log's owner re-signs a rewritten history: every checkpoint verifies,
  // but the trusted one no longer matches.
  {
    RawStore store(dir_);
    AuditSigner signer = Signer();
    std::string prev = store.Entry(9).entry_hash();
    for (uint64_t s = 10; s <= 20; ++s) {
      AuditEntry entry = store.Entry(s);
      if (s == 10) entry.set_rule("rewritten");
      entry.set_prev_hash(prev);
      entry.set_entry_hash(ComputeAuditEntryHash(entry));
      prev = entry.entry_hash();
      store.PutEntry(s, entry);
      if (s % kCheckpointEvery == 0) {
        store.PutCheckpoint(SignedBy(signer, s, entry.entry_hash()));
      }
    }
  }
  ASSERT_OK(VerifyDir().status());
  EXPECT_THAT(VerifyDir(trusted_),
              DataLossWith("audit entry 20 does not match the trusted "
                           "checkpoint at 20"));
}

TEST_F(AuditVerifierTest, UnparsableValueIsNamed) {
  RawStore(dir_).Put('e', 9, "\xff\xff\xff");
  EXPECT_THAT(VerifyDir(), DataLossWith("audit entry 9: stored value is not a "
                                        "valid AuditEntry (corrupted)"));
}

TEST_F(AuditVerifierTest, ForgedCheckpointSignatureIsNamed) {
  {
    RawStore store(dir_);
    AuditCheckpoint checkpoint = store.Checkpoint(12);
    std::string signature = checkpoint.signature();
    signature[5] ^= 0x40;
    checkpoint.set_signature(signature);
    store.PutCheckpoint(checkpoint);
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("checkpoint at 12: bad signature"));
}

TEST_F(AuditVerifierTest, CheckpointSignedByAnotherKeyIsNamed) {
  ASSERT_OK_AND_ASSIGN(AuditSigner mallory, AuditSigner::Generate());
  {
    RawStore store(dir_);
    AuditCheckpoint checkpoint = store.Checkpoint(12);
    store.PutCheckpoint(
        SignedBy(mallory, checkpoint.sequence(), checkpoint.head_hash()));
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("checkpoint at 12: signed by key " +
                                        mallory.public_key_id()));
  // A key id with control characters is named escaped.
  {
    RawStore store(dir_);
    AuditCheckpoint checkpoint = store.Checkpoint(12);
    checkpoint.set_public_key_id("mallory\x1b[2J");
    store.PutCheckpoint(checkpoint);
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("checkpoint at 12: signed by key "
                                        "mallory\\x1b[2J, not the given key"));
  // Claiming the right key id does not help.
  {
    RawStore store(dir_);
    AuditCheckpoint checkpoint = store.Checkpoint(12);
    checkpoint.set_public_key_id(PublicKeyId(public_key_));
    store.PutCheckpoint(checkpoint);
  }
  EXPECT_THAT(VerifyDir(), DataLossWith("checkpoint at 12: bad signature"));
}

TEST_F(AuditVerifierTest, WrongPublicKeyFailsAtTheFirstCheckpoint) {
  ASSERT_OK_AND_ASSIGN(AuditSigner other, AuditSigner::Generate());
  EXPECT_THAT(VerifyAuditDirectory(dir_, other.public_key()),
              DataLossWith("checkpoint at 4: signed by key"));
}

TEST_F(AuditVerifierTest, UnsignedTailFailsUntilTheLogIsReopened) {
  // As after a crash: entries 17-20 with no checkpoint covering them.
  RawStore(dir_).Delete('c', 20);
  EXPECT_THAT(VerifyDir(), DataLossWith("audit log ends at entry 20 without a "
                                        "checkpoint covering it"));
  // Open checks that the unsigned tail chains from checkpoint 16 and signs
  // it at once, before anything is appended or the log is closed.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog());
  ASSERT_OK_AND_ASSIGN(AuditVerification result, VerifyDir(trusted_));
  EXPECT_EQ(result.entries, kEntries);
}

TEST_F(AuditVerifierTest, MissingDirectoryIsNotFound) {
  EXPECT_THAT(VerifyAuditDirectory(root_ + "/nothing-here", public_key_),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(AuditVerifierTest, ReadFromTheMiddleLinksToTheTrustedCheckpoint) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog());
  ASSERT_OK_AND_ASSIGN(AuditCheckpoint at20, log->Checkpoint());
  for (uint64_t i = kEntries + 1; i <= kEntries + 6; ++i) {
    ASSERT_OK(log->AppendAndWait(Decision(i)));
  }
  std::vector<ReadAuditLogResponse> items;
  ASSERT_OK(log->Read(/*start_sequence=*/21, /*max_entries=*/0,
                      [&](const ReadAuditLogResponse& item) {
                        items.push_back(item);
                        return true;
                      }));
  AuditVerifier verifier(public_key_, at20, /*start_sequence=*/21);
  EXPECT_OK(VerifyItems(verifier, items));
  EXPECT_EQ(verifier.entries_verified(), 6u);

  // A trusted checkpoint of another history at 20 (validly signed) does not
  // link to entry 21.
  AuditCheckpoint other = SignedBy(Signer(), 20, std::string(32, '\x42'));
  AuditVerifier mismatched(public_key_, other, /*start_sequence=*/21);
  EXPECT_THAT(VerifyItems(mismatched, items),
              DataLossWith("audit entry 21: prev_hash does not link to entry "
                           "20 of the trusted checkpoint"));
}

TEST_F(AuditVerifierTest, TrustedCheckpointTheReadCannotReachIsRefused) {
  AuditVerifier verifier(public_key_, trusted_, /*start_sequence=*/22);
  EXPECT_THAT(verifier.Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(AuditVerifierTest, TrustedCheckpointWithBadSignatureIsRefused) {
  AuditCheckpoint forged = trusted_;
  forged.set_sequence(forged.sequence() + 1);
  AuditVerifier verifier(public_key_, forged);
  EXPECT_THAT(verifier.Add(Read(1).front()),
              DataLossWith("trusted checkpoint at 21: bad signature"));
}

TEST_F(AuditVerifierTest, StreamWithoutFinalCheckpointFails) {
  std::vector<ReadAuditLogResponse> items = Read(1);
  ASSERT_TRUE(items.back().has_checkpoint());
  items.pop_back();
  AuditVerifier verifier(public_key_);
  EXPECT_THAT(VerifyItems(verifier, items),
              DataLossWith("audit log ends at entry 20 without a checkpoint "
                           "covering it"));
}

TEST_F(AuditVerifierTest, StreamStartingLateFails) {
  std::vector<ReadAuditLogResponse> items = Read(3);
  AuditVerifier verifier(public_key_);  // the reader asked for entry 1
  EXPECT_THAT(VerifyItems(verifier, items),
              DataLossWith("audit log starts at entry 3 but the read began at "
                           "1: entries 1-2 missing"));
}

TEST_F(AuditVerifierTest, FirstEntryMustChainFromZeros) {
  std::vector<ReadAuditLogResponse> items = Read(1);
  AuditEntry* first = items[0].mutable_entry();
  first->set_prev_hash(std::string(32, '\x01'));
  first->set_entry_hash(ComputeAuditEntryHash(*first));
  AuditVerifier verifier(public_key_);
  EXPECT_THAT(VerifyItems(verifier, items),
              DataLossWith("audit entry 1: prev_hash is not 32 zero bytes"));
}

TEST_F(AuditVerifierTest, EmptyStreamAndEmptyItemFail) {
  AuditVerifier empty(public_key_);
  EXPECT_THAT(empty.Finish(), DataLossWith("audit stream is empty"));
  AuditVerifier blank(public_key_);
  EXPECT_THAT(blank.Add(ReadAuditLogResponse()),
              DataLossWith("holds neither an entry nor a checkpoint"));
}

TEST(AuditVerifierKeyTest, PublicKeyOfWrongSizeIsInvalidArgument) {
  AuditVerifier verifier(std::string(31, 'k'));
  EXPECT_THAT(verifier.Finish(), StatusIs(absl::StatusCode::kInvalidArgument));
}

// The audit_verify binary, as an operator runs it.
class AuditVerifyBinaryTest : public AuditVerifierTest {
 protected:
  struct Run {
    int exit_code = -1;
    std::string output;
  };

  Run RunVerify(const std::string& args) {
    Run run;
    const std::string command =
        absl::StrCat(AUDIT_VERIFY_PATH, " ", args, " 2>&1");
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return run;
    char buffer[512];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
      run.output.append(buffer, n);
    }
    const int status = pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
  }
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = root_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string KeyFile() {
    return WriteFile("audit.pem", Signer().PublicKeyPem());
  }
};

TEST_F(AuditVerifyBinaryTest, IntactLogExitsZeroWithSummary) {
  std::string checkpoint_text;
  ASSERT_TRUE(
      google::protobuf::TextFormat::PrintToString(trusted_, &checkpoint_text));
  const std::string checkpoint = WriteFile("trusted.txtpb", checkpoint_text);
  const Run run =
      RunVerify(absl::StrCat("--data_dir=", dir_, " --public_key=", KeyFile(),
                             " --checkpoint=", checkpoint));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr(absl::StrCat(
                              "OK: 20 entries, head ",
                              absl::BytesToHexString(trusted_.head_hash()),
                              " at 20, 5 checkpoints verified")));
}

TEST_F(AuditVerifyBinaryTest, TamperedLogExitsOneNamingTheEntry) {
  RawStore(dir_).Delete('e', 6);
  const Run run =
      RunVerify(absl::StrCat("--data_dir=", dir_, " --public_key=", KeyFile()));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("entry 6 missing"));
}

TEST_F(AuditVerifyBinaryTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunVerify(absl::StrCat("--data_dir=", dir_)).exit_code, 2);
  EXPECT_EQ(RunVerify(absl::StrCat("--data_dir=", dir_, " --public_key=",
                                   WriteFile("bad.pem", "not a key")))
                .exit_code,
            2);
  EXPECT_EQ(
      RunVerify(
          absl::StrCat("--data_dir=", dir_, " --public_key=", KeyFile(),
                       " --checkpoint=", WriteFile("bad.txtpb", "sequence: x")))
          .exit_code,
      2);
}

}  // namespace
}  // namespace residency::key_service
