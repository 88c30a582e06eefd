#include "key_service/audit_log.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/audit_format.h"
#include "key_service/audit_signer.h"
#include "key_service/audit_verifier.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/fault_file_system.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::key_service {
namespace {

using ::residency::testing::FaultFileSystem;
using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::residency::v1::AuditCheckpoint;
using ::residency::v1::AuditEntry;
using ::residency::v1::ReadAuditLogResponse;
using ::testing::HasSubstr;

constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;

// A clock that moves one millisecond per call, from a fixed start.
class StepClock {
 public:
  absl::Time Now() {
    return absl::FromUnixSeconds(1700000000) +
           absl::Milliseconds(ticks_.fetch_add(1));
  }

 private:
  std::atomic<int64_t> ticks_{0};
};

AuditEntry Decision(absl::string_view request_id) {
  AuditEntry entry;
  entry.set_principal("residency://user/alice");
  entry.set_operation(residency::v1::OPERATION_UNWRAP);
  entry.set_request_id(std::string(request_id));
  entry.mutable_justification()->set_reason(
      residency::v1::Justification::CUSTOMER_INITIATED_ACCESS);
  entry.set_key_id("kek-alice");
  entry.set_key_version(1);
  entry.mutable_object()->set_owner("residency://user/alice");
  entry.mutable_object()->set_object_id("photo.jpg");
  entry.mutable_object()->set_version(1);
  entry.set_decision(AuditEntry::ALLOW);
  entry.set_rule("owner-may-unwrap");
  return entry;
}

std::vector<ReadAuditLogResponse> ReadAll(const AuditLog& log, uint64_t start,
                                          uint64_t max_entries,
                                          absl::Status* status = nullptr) {
  std::vector<ReadAuditLogResponse> items;
  absl::Status read =
      log.Read(start, max_entries, [&](const ReadAuditLogResponse& item) {
        items.push_back(item);
        return true;
      });
  if (status != nullptr) {
    *status = read;
  } else {
    EXPECT_OK(read);
  }
  return items;
}

// "e3" for entry 3, "c4" for a checkpoint at 4.
std::vector<std::string> Shape(const std::vector<ReadAuditLogResponse>& items) {
  std::vector<std::string> out;
  for (const ReadAuditLogResponse& item : items) {
    out.push_back(item.has_entry()
                      ? absl::StrCat("e", item.entry().sequence())
                      : absl::StrCat("c", item.checkpoint().sequence()));
  }
  return out;
}

absl::Status Verify(const std::vector<ReadAuditLogResponse>& items,
                    const std::string& public_key, uint64_t start = 1) {
  AuditVerifier verifier(public_key, std::nullopt, start);
  for (const ReadAuditLogResponse& item : items) {
    absl::Status status = verifier.Add(item);
    if (!status.ok()) return status;
  }
  return verifier.Finish();
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(const std::string root, temp_.Make("audit_log_test"));
    dir_ = root + "/log";
    ASSERT_OK_AND_ASSIGN(AuditSigner signer, AuditSigner::Generate());
    seed_ = signer.seed().Clone();
    public_key_ = signer.public_key();
  }

  AuditSigner Signer() {
    absl::StatusOr<AuditSigner> signer = AuditSigner::FromSeed(seed_);
    EXPECT_TRUE(signer.ok());
    return *std::move(signer);
  }
  AuditLogOptions Options(uint64_t checkpoint_every) {
    AuditLogOptions options;
    options.checkpoint_every = checkpoint_every;
    options.clock = [this] { return clock_.Now(); };
    return options;
  }
  absl::StatusOr<std::unique_ptr<AuditLog>> OpenLog(
      uint64_t checkpoint_every = 4) {
    return AuditLog::Open(dir_, Signer(), Options(checkpoint_every));
  }

  TempDir temp_;
  std::string dir_;
  crypto::SecretBytes seed_;
  std::string public_key_;
  StepClock clock_;
};

TEST_F(AuditLogTest, AppendFillsSequenceTimeAndChain) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog());
  EXPECT_EQ(log->last_sequence(), 0u);
  for (int i = 1; i <= 3; ++i) {
    AuditEntry entry = Decision(absl::StrCat("req-", i));
    // Whatever the caller puts in the log's own fields is replaced.
    entry.set_sequence(99);
    entry.set_prev_hash("bogus");
    entry.set_entry_hash("bogus");
    ASSERT_OK(log->AppendAndWait(std::move(entry)));
  }
  EXPECT_EQ(log->last_sequence(), 3u);
  EXPECT_EQ(log->durable_sequence(), 3u);

  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/1, /*max_entries=*/0);
  ASSERT_EQ(Shape(items), (std::vector<std::string>{"e1", "e2", "e3", "c3"}));
  std::string prev = ZeroAuditHash();
  for (int i = 0; i < 3; ++i) {
    const AuditEntry& e = items[i].entry();
    EXPECT_EQ(e.sequence(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(e.request_id(), absl::StrCat("req-", i + 1));
    EXPECT_EQ(e.rule(), "owner-may-unwrap");
    EXPECT_EQ(e.prev_hash(), prev);
    EXPECT_EQ(e.entry_hash(), ComputeAuditEntryHash(e));
    EXPECT_EQ(e.time().seconds(), 1700000000);
    prev = e.entry_hash();
  }
  // The clock ticks once per call, so entry times increase with sequence.
  EXPECT_LT(items[0].entry().time().nanos(), items[1].entry().time().nanos());
  EXPECT_EQ(items[3].checkpoint().head_hash(), prev);
  EXPECT_EQ(items[3].checkpoint().public_key_id(), log->public_key_id());
  EXPECT_OK(Verify(items, public_key_));
}

TEST_F(AuditLogTest, ReadInterleavesStoredCheckpointsAndEndsWithOne) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
  for (int i = 1; i <= 10; ++i) {
    ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
  }
  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/0, /*max_entries=*/0);
  EXPECT_EQ(Shape(items),
            (std::vector<std::string>{"e1", "e2", "e3", "e4", "c4", "e5", "e6",
                                      "e7", "e8", "c8", "e9", "e10", "c10"}));
  EXPECT_OK(Verify(items, public_key_));
}

TEST_F(AuditLogTest, BoundedReadEndsWithCheckpointOfItsLastEntry) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
  for (int i = 1; i <= 10; ++i) {
    ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
  }
  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/3, /*max_entries=*/4);
  EXPECT_EQ(Shape(items),
            (std::vector<std::string>{"e3", "e4", "c4", "e5", "e6", "c6"}));
  EXPECT_OK(Verify(items, public_key_, /*start=*/3));
  // The same items claimed as a read from the start are missing 1-2.
  EXPECT_THAT(Verify(items, public_key_, /*start=*/1), StatusIs(kDataLoss));
}

TEST_F(AuditLogTest, ReadPastTheHeadSendsOnlyTheHeadCheckpoint) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
  for (int i = 1; i <= 5; ++i) {
    ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
  }
  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/6, /*max_entries=*/0);
  ASSERT_EQ(Shape(items), (std::vector<std::string>{"c5"}));
  EXPECT_OK(Verify(items, public_key_, /*start=*/6));
}

TEST_F(AuditLogTest, EmptyLogReadsAsCheckpointAtZero) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog());
  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/1, /*max_entries=*/0);
  ASSERT_EQ(Shape(items), (std::vector<std::string>{"c0"}));
  EXPECT_EQ(items[0].checkpoint().head_hash(), ZeroAuditHash());
  EXPECT_OK(Verify(items, public_key_));
}

TEST_F(AuditLogTest, ReadStopsWhenTheSinkDeclines) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
  for (int i = 1; i <= 6; ++i) {
    ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
  }
  int calls = 0;
  absl::Status status =
      log->Read(/*start_sequence=*/1, /*max_entries=*/0,
                [&](const ReadAuditLogResponse&) { return ++calls < 3; });
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 3);
}

TEST_F(AuditLogTest, CheckpointSignsTheDurableHead) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(100));
  ASSERT_OK(log->AppendAndWait(Decision("req-1")));
  ASSERT_OK(log->AppendAndWait(Decision("req-2")));
  ASSERT_OK_AND_ASSIGN(AuditCheckpoint checkpoint, log->Checkpoint());
  EXPECT_EQ(checkpoint.sequence(), 2u);
  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/1, /*max_entries=*/0);
  EXPECT_EQ(checkpoint.head_hash(), items[1].entry().entry_hash());
  EXPECT_OK(VerifyEd25519(public_key_, CheckpointSigningInput(checkpoint),
                          checkpoint.signature()));
}

TEST_F(AuditLogTest, EntriesSurviveReopenAndTheChainContinues) {
  std::string head_hash;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
    for (int i = 1; i <= 5; ++i) {
      ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
    }
    ASSERT_OK_AND_ASSIGN(AuditCheckpoint head, log->Checkpoint());
    head_hash = head.head_hash();
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
  EXPECT_EQ(log->last_sequence(), 5u);
  ASSERT_OK(log->AppendAndWait(Decision("req-6")));
  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/1, /*max_entries=*/0);
  // Closing stored a checkpoint of entry 5, which is not a multiple of 4.
  EXPECT_EQ(Shape(items),
            (std::vector<std::string>{"e1", "e2", "e3", "e4", "c4", "e5", "c5",
                                      "e6", "c6"}));
  EXPECT_EQ(items[5].entry().entry_hash(), head_hash);
  EXPECT_EQ(items[7].entry().prev_hash(), head_hash);
  EXPECT_EQ(items[7].entry().request_id(), "req-6");
  EXPECT_OK(Verify(items, public_key_));
}

TEST_F(AuditLogTest, ClosedLogVerifiesOfflineWithItsClosingCheckpoint) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
    for (int i = 1; i <= 5; ++i) {
      ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
    }
  }
  ASSERT_OK_AND_ASSIGN(AuditVerification result,
                       VerifyAuditDirectory(dir_, public_key_));
  EXPECT_EQ(result.entries, 5u);
  EXPECT_EQ(result.checkpoints, 2u);  // at 4 and, on close, at 5
  EXPECT_EQ(result.head_sequence, 5u);
}

TEST_F(AuditLogTest, ReopenWithAnotherKeyIsRefused) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
    ASSERT_OK(log->AppendAndWait(Decision("req-1")));
  }
  ASSERT_OK_AND_ASSIGN(AuditSigner other, AuditSigner::Generate());
  absl::StatusOr<std::unique_ptr<AuditLog>> log =
      AuditLog::Open(dir_, std::move(other), Options(4));
  EXPECT_THAT(log, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("is signed by key"));
}

TEST_F(AuditLogTest, ConcurrentAppendsAreGroupCommittedIntoOneChain) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 40;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(64));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!log->AppendAndWait(Decision(absl::StrCat("t", t, "-", i))).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  constexpr uint64_t kTotal = kThreads * kPerThread;
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(log->last_sequence(), kTotal);
  EXPECT_EQ(log->durable_sequence(), kTotal);
  // Group commit: concurrent appenders share synced writes.
  EXPECT_LT(log->write_batches(), kTotal);
  EXPECT_GT(log->write_batches(), 0u);

  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/1, /*max_entries=*/0);
  EXPECT_OK(Verify(items, public_key_));
  std::set<std::string> request_ids;
  uint64_t entries = 0;
  for (const ReadAuditLogResponse& item : items) {
    if (!item.has_entry()) continue;
    ++entries;
    request_ids.insert(item.entry().request_id());
  }
  EXPECT_EQ(entries, kTotal);
  EXPECT_EQ(request_ids.size(), kTotal);
}

// The answers of one round do not hold up the next round's write when more
// entries are waiting: the second entry becomes durable while the first
// one's callback is still running, and its own callback waits for that one.
TEST_F(AuditLogTest, ASlowCallbackDoesNotHoldUpTheNextWrite) {
  // Declared before the log, so that they outlive its threads.
  absl::Notification writing_first, second_queued, first_answering,
      release_first, second_answered;
  // The writer signs a checkpoint with every entry and stamps it with this
  // clock. The first round (the first entry alone) waits until the second
  // entry is queued; the second round waits until the first one's callback
  // is running.
  const std::thread::id test_thread = std::this_thread::get_id();
  std::atomic<int> writer_calls{0};
  AuditLogOptions options = Options(/*checkpoint_every=*/1);
  options.clock = [&] {
    if (std::this_thread::get_id() != test_thread) {
      const int call = ++writer_calls;
      if (call == 1) {
        writing_first.Notify();
        second_queued.WaitForNotificationWithTimeout(absl::Seconds(30));
      } else if (call == 2) {
        first_answering.WaitForNotificationWithTimeout(absl::Seconds(30));
      }
    }
    return clock_.Now();
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log,
                       AuditLog::Open(dir_, Signer(), std::move(options)));
  log->Append(Decision("req-1"), [&](absl::Status status) {
    EXPECT_OK(status);
    first_answering.Notify();
    release_first.WaitForNotificationWithTimeout(absl::Seconds(30));
  });
  // Whatever fails below, the first callback is let go before the log is
  // destroyed.
  absl::Cleanup release = [&] {
    if (!release_first.HasBeenNotified()) release_first.Notify();
  };
  ASSERT_TRUE(writing_first.WaitForNotificationWithTimeout(absl::Seconds(30)));
  log->Append(Decision("req-2"), [&](absl::Status status) {
    EXPECT_OK(status);
    second_answered.Notify();
  });
  second_queued.Notify();
  ASSERT_TRUE(
      first_answering.WaitForNotificationWithTimeout(absl::Seconds(30)));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (log->durable_sequence() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(log->durable_sequence(), 2u);
  // Its answer still waits for the one before it.
  EXPECT_FALSE(second_answered.HasBeenNotified());
  release_first.Notify();
  EXPECT_TRUE(
      second_answered.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

// An entry that a callback appends while the log is being destroyed is
// still written and answered.
TEST_F(AuditLogTest, AnEntryAppendedByACallbackDuringDestructionIsWritten) {
  absl::Notification writing_first, second_queued;
  std::atomic<int> answered{0};
  const std::thread::id test_thread = std::this_thread::get_id();
  AuditLogOptions options = Options(/*checkpoint_every=*/1);
  options.clock = [&] {
    if (std::this_thread::get_id() != test_thread &&
        !second_queued.HasBeenNotified()) {
      writing_first.Notify();
      second_queued.WaitForNotificationWithTimeout(absl::Seconds(30));
    }
    return clock_.Now();
  };
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log,
                         AuditLog::Open(dir_, Signer(), std::move(options)));
    AuditLog* const raw = log.get();
    // Answered on the reply thread (the second entry is waiting by then);
    // appends once the destructor has most likely begun.
    log->Append(Decision("req-1"), [&, raw](absl::Status status) {
      EXPECT_OK(status);
      absl::SleepFor(absl::Milliseconds(300));
      raw->Append(Decision("follow-up"), [&](absl::Status status) {
        EXPECT_OK(status);
        ++answered;
      });
      ++answered;
    });
    ASSERT_TRUE(
        writing_first.WaitForNotificationWithTimeout(absl::Seconds(30)));
    log->Append(Decision("req-2"), [&](absl::Status status) {
      EXPECT_OK(status);
      ++answered;
    });
    second_queued.Notify();
  }
  EXPECT_EQ(answered.load(), 3);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(1));
  EXPECT_EQ(log->last_sequence(), 3u);
  EXPECT_OK(Verify(ReadAll(*log, /*start=*/1, /*max_entries=*/0), public_key_));
}

// A caller that is alone is answered by the writer itself, the thread that
// stamped its checkpoint, with no hand-off to the reply thread.
TEST_F(AuditLogTest, ALoneCallerIsAnsweredByTheWriter) {
  const std::thread::id test_thread = std::this_thread::get_id();
  absl::Mutex mu;
  std::thread::id writer;
  AuditLogOptions options = Options(/*checkpoint_every=*/1);
  options.clock = [&] {
    if (std::this_thread::get_id() != test_thread) {
      absl::MutexLock lock(&mu);
      writer = std::this_thread::get_id();
    }
    return clock_.Now();
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log,
                       AuditLog::Open(dir_, Signer(), std::move(options)));
  for (int i = 1; i <= 3; ++i) {
    std::thread::id answered_on;
    absl::Notification answered;
    log->Append(Decision(absl::StrCat("req-", i)), [&](absl::Status s) {
      EXPECT_OK(s);
      answered_on = std::this_thread::get_id();
      answered.Notify();
    });
    answered.WaitForNotification();
    absl::MutexLock lock(&mu);
    EXPECT_EQ(answered_on, writer) << "entry " << i;
  }
}

// Entries already queued when a write fails chain onto the entries that
// failed. They are refused, not written (which would leave a gap that Open
// refuses), so after a transient disk fault the log opens again at its
// durable head and continues.
TEST_F(AuditLogTest, EntriesQueuedBehindAFailedWriteAreRefused) {
  auto fs = std::make_shared<FaultFileSystem>();
  AuditLogOptions options = Options(/*checkpoint_every=*/4);
  options.file_system = fs;
  std::atomic<int> failures{0};
  options.on_failed = [&failures] { ++failures; };
  // Declared before the log, which may still answer entry 3 as it closes.
  std::atomic<bool> queued{false};
  absl::Notification third_answered;
  absl::Status third;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log,
                         AuditLog::Open(dir_, Signer(), std::move(options)));
    ASSERT_OK(log->AppendAndWait(Decision("req-1")));
    AuditLog* const raw = log.get();
    absl::Cleanup no_hook = [&fs] { fs->set_on_fault(nullptr); };
    // While the write of entry 2 fails, entry 3 is queued behind it, and
    // then the disk recovers.
    fs->set_on_fault([&] {
      if (queued.exchange(true)) return;
      raw->Append(Decision("req-3"), [&](absl::Status status) {
        third = std::move(status);
        third_answered.Notify();
      });
      fs->set_fault(FaultFileSystem::Fault::kNone);
    });
    fs->set_fault(FaultFileSystem::Fault::kDiskFull);
    EXPECT_THAT(log->AppendAndWait(Decision("req-2")),
                StatusIs(absl::StatusCode::kInternal,
                         HasSubstr("writing audit entries up to 2")));
    ASSERT_TRUE(queued.load());
    ASSERT_TRUE(
        third_answered.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_THAT(third, StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("after a failed write")));
    EXPECT_THAT(log->AppendAndWait(Decision("req-4")),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(log->durable_sequence(), 1u);
    // Told once, at the write that failed.
    EXPECT_EQ(failures.load(), 1);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog());
  EXPECT_EQ(log->last_sequence(), 1u);
  ASSERT_OK(log->AppendAndWait(Decision("req-2-again")));
  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/1, /*max_entries=*/0);
  // c1: the reopened log signs the head that the failed one left uncovered.
  ASSERT_EQ(Shape(items), (std::vector<std::string>{"e1", "c1", "e2", "c2"}));
  EXPECT_EQ(items[2].entry().request_id(), "req-2-again");
  EXPECT_OK(Verify(items, public_key_));
}

TEST_F(AuditLogTest, CallbacksRunInSequenceOrderAndDestructionDrainsThem) {
  constexpr int kEntries = 200;
  absl::Mutex mu;
  std::vector<absl::Status> statuses;
  std::vector<uint64_t> order;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(16));
    for (int i = 1; i <= kEntries; ++i) {
      log->Append(Decision(absl::StrCat("req-", i)),
                  [&, i](absl::Status status) {
                    absl::MutexLock lock(&mu);
                    statuses.push_back(std::move(status));
                    order.push_back(i);
                  });
    }
    // Destroyed with callbacks still queued.
  }
  ASSERT_EQ(order.size(), static_cast<size_t>(kEntries));
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_EQ(order[i], static_cast<uint64_t>(i + 1));
    EXPECT_OK(statuses[i]);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(16));
  EXPECT_EQ(log->last_sequence(), static_cast<uint64_t>(kEntries));
  EXPECT_OK(Verify(ReadAll(*log, /*start=*/1, /*max_entries=*/0), public_key_));
}

TEST_F(AuditLogTest, OversizedEntryIsRefusedWithoutUsingASequence) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog());
  AuditEntry big = Decision("req-big");
  big.set_status_message(std::string(kMaxAuditEntryBytes, 'x'));
  EXPECT_THAT(log->AppendAndWait(std::move(big)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(log->last_sequence(), 0u);

  AuditEntry fits = Decision("req-fits");
  fits.set_status_message(std::string(kMaxAuditEntryBytes - 1024, 'x'));
  ASSERT_OK(log->AppendAndWait(std::move(fits)));
  EXPECT_EQ(log->last_sequence(), 1u);
  EXPECT_OK(Verify(ReadAll(*log, /*start=*/1, /*max_entries=*/0), public_key_));
}

// Edits the stored log directly, with the AuditLog closed.
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
  AuditEntry Entry(uint64_t sequence) {
    std::string value;
    EXPECT_TRUE(
        db_->Get(rocksdb::ReadOptions(), Key('e', sequence), &value).ok());
    AuditEntry entry;
    EXPECT_TRUE(entry.ParseFromString(value));
    return entry;
  }
  void Put(uint64_t sequence, const AuditEntry& entry) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), Key('e', sequence),
                         entry.SerializeAsString())
                    .ok());
  }
  void Delete(char prefix, uint64_t sequence) {
    ASSERT_TRUE(
        db_->Delete(rocksdb::WriteOptions(), Key(prefix, sequence)).ok());
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

TEST_F(AuditLogTest, OpenRefusesATailThatDoesNotChain) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
    for (int i = 1; i <= 6; ++i) {
      ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
    }
  }
  {
    RawStore store(dir_);
    AuditEntry last = store.Entry(6);
    last.set_decision(AuditEntry::DENY);
    store.Put(6, last);
  }
  absl::StatusOr<std::unique_ptr<AuditLog>> log = OpenLog(4);
  EXPECT_THAT(log, StatusIs(kDataLoss));
  EXPECT_THAT(std::string(log.status().message()), HasSubstr("audit entry 6"));
}

TEST_F(AuditLogTest, OpenRefusesAnUnsignedTailWithABrokenLink) {
  // Entries 5-6 follow checkpoint 4 and were never signed (the log stopped
  // without closing): Open checks them link, not just the last one.
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
    for (int i = 1; i <= 6; ++i) {
      ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
    }
  }
  {
    RawStore store(dir_);
    AuditEntry fifth = store.Entry(5);
    fifth.set_rule("edited");
    fifth.set_entry_hash(ComputeAuditEntryHash(fifth));
    store.Put(5, fifth);
    // Without the closing checkpoint at 6, entries 5-6 are the unsigned tail.
    store.Delete('c', 6);
  }
  absl::StatusOr<std::unique_ptr<AuditLog>> log = OpenLog(4);
  EXPECT_THAT(log, StatusIs(kDataLoss));
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("audit entry 6: prev_hash does not link to entry 5"));
}

TEST_F(AuditLogTest, OpenRefusesAnEditedEntryInTheUnsignedTail) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
    for (int i = 1; i <= 6; ++i) {
      ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
    }
  }
  {
    RawStore store(dir_);
    AuditEntry fifth = store.Entry(5);
    fifth.set_decision(AuditEntry::DENY);  // entry_hash left as it was
    store.Put(5, fifth);
    store.Delete('c', 6);
  }
  absl::StatusOr<std::unique_ptr<AuditLog>> log = OpenLog(4);
  EXPECT_THAT(log, StatusIs(kDataLoss));
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("audit entry 5: entry_hash does not match its "
                        "contents (edited)"));
}

TEST_F(AuditLogTest, OpenRefusesEntriesTruncatedBelowACheckpoint) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
    for (int i = 1; i <= 6; ++i) {
      ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
    }
  }
  {
    RawStore store(dir_);
    store.Delete('e', 5);
    store.Delete('e', 6);
  }
  absl::StatusOr<std::unique_ptr<AuditLog>> log = OpenLog(4);
  EXPECT_THAT(log, StatusIs(kDataLoss));
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("ends at entry 4 but its checkpoint covers 6 "
                        "(truncated)"));
}

TEST_F(AuditLogTest, ReadRefusesToSignAnEntryAlteredOnDisk) {
  // Entry 6 is rewritten with a consistent hash; its successor still links
  // to the original, and checkpoint 8 signs the original chain. A bounded
  // read ending at 6 must not vouch for the rewrite with a fresh signature.
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
    for (int i = 1; i <= 10; ++i) {
      ASSERT_OK(log->AppendAndWait(Decision(absl::StrCat("req-", i))));
    }
  }
  {
    RawStore store(dir_);
    AuditEntry sixth = store.Entry(6);
    sixth.set_decision(AuditEntry::DENY);
    sixth.set_entry_hash(ComputeAuditEntryHash(sixth));
    store.Put(6, sixth);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, OpenLog(4));
  absl::Status status;
  const std::vector<ReadAuditLogResponse> items =
      ReadAll(*log, /*start=*/5, /*max_entries=*/2, &status);
  EXPECT_THAT(status, StatusIs(kDataLoss));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("refusing to sign a checkpoint at 6"));
  EXPECT_EQ(Shape(items), (std::vector<std::string>{"e5", "e6"}));
}

}  // namespace
}  // namespace residency::key_service
