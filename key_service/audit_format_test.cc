#include "key_service/audit_format.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace residency::key_service {
namespace {

using ::residency::v1::AuditCheckpoint;
using ::residency::v1::AuditEntry;

std::string Unhex(absl::string_view hex) { return absl::HexStringToBytes(hex); }
std::string Hex(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}

// An entry with every field 1-13 set to a distinct value.
AuditEntry FullEntry() {
  AuditEntry e;
  e.set_sequence(7);
  e.mutable_time()->set_seconds(1700000000);
  e.mutable_time()->set_nanos(123456789);
  e.set_principal("residency://user/alice");
  e.set_operation(residency::v1::OPERATION_UNWRAP);
  e.set_request_id("req-1");
  auto* j = e.mutable_justification();
  j->set_reason(residency::v1::Justification::THIRD_PARTY_DATA_REQUEST);
  auto* lp = j->mutable_legal_process();
  lp->set_issuing_authority("Beijing PSB");
  lp->set_jurisdiction("CN");
  lp->set_legal_basis("art. 28");
  lp->set_target_owner("alice");
  lp->set_scope("photos");
  lp->set_reference_id("R-9");
  lp->mutable_issued_at()->set_seconds(1690000000);
  lp->mutable_issued_at()->set_nanos(5);
  j->set_detail("ticket 42");
  e.set_key_id("kek-alice");
  e.set_key_version(2);
  e.mutable_object()->set_owner("alice");
  e.mutable_object()->set_object_id("photo.jpg");
  e.mutable_object()->set_version(3);
  e.set_decision(AuditEntry::DENY);
  e.set_rule("no-foreign-courts");
  e.set_status_code(7);
  e.set_status_message("denied");
  e.set_prev_hash(std::string(32, '\x11'));
  return e;
}

// The layout of audit_format.h, written out byte by byte.
const char kFullEntryEncodingHex[] =
    "7265736964656e63792f61756469742d656e7472792f763100"  // label + NUL
    "0000000000000007"                                    // sequence
    "000000006553f100"                                    // time.seconds
    "075bcd15"                                            // time.nanos
    "00000016"                                            // principal (22)
    "7265736964656e63793a2f2f757365722f616c696365"        //
    "00000003"                                            // operation UNWRAP
    "00000005"                                            // request_id (5)
    "7265712d31"                                          //
    "00000003"                                    // reason THIRD_PARTY_DATA_REQ
    "0000000b4265696a696e6720505342"              // issuing_authority
    "00000002434e"                                // jurisdiction
    "000000076172742e203238"                      // legal_basis
    "00000005616c696365"                          // target_owner
    "0000000670686f746f73"                        // scope
    "00000003522d39"                              // reference_id
    "0000000064bb5a80"                            // issued_at.seconds
    "00000005"                                    // issued_at.nanos
    "000000097469636b6574203432"                  // detail
    "000000096b656b2d616c696365"                  // key_id
    "00000002"                                    // key_version
    "00000005616c696365"                          // object.owner
    "0000000970686f746f2e6a7067"                  // object.object_id
    "0000000000000003"                            // object.version
    "00000002"                                    // decision DENY
    "000000116e6f2d666f726569676e2d636f75727473"  // rule
    "00000007"                                    // status_code
    "0000000664656e696564";                       // status_message

// SHA-256(32 x 0x11 || the encoding above), computed independently.
const char kFullEntryHashHex[] =
    "0aa9bd5d46adee1f3c6d3c28fd90069226c16c3cbd83b0d54de9d36b87561970";

TEST(AuditFormatTest, CanonicalEncodingMatchesDocumentedLayout) {
  const std::string encoding = CanonicalAuditEntry(FullEntry());
  EXPECT_EQ(Hex(encoding), kFullEntryEncodingHex);
  EXPECT_EQ(encoding.size(), 257u);
}

TEST(AuditFormatTest, EntryHashIsSha256OfPrevHashAndEncoding) {
  EXPECT_EQ(Hex(ComputeAuditEntryHash(FullEntry())), kFullEntryHashHex);
  EXPECT_EQ(Hex(Sha256(std::string(32, '\x11') + Unhex(kFullEntryEncodingHex))),
            kFullEntryHashHex);
}

TEST(AuditFormatTest, Sha256MatchesFips180Vector) {
  EXPECT_EQ(Hex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuditFormatTest, EmptyEntryEncodesToMinimumSize) {
  AuditEntry empty;
  const std::string encoding = CanonicalAuditEntry(empty);
  EXPECT_EQ(encoding.size(), kMinCanonicalEntrySize);
  EXPECT_EQ(kMinCanonicalEntrySize, 141u);
  EXPECT_EQ(encoding.substr(0, 25), kAuditEntryDomain);
  EXPECT_EQ(encoding.substr(25), std::string(141 - 25, '\0'));
}

TEST(AuditFormatTest, HashCoversEveryCanonicalField) {
  const std::vector<std::pair<const char*, std::function<void(AuditEntry&)>>>
      edits = {
          {"sequence", [](AuditEntry& e) { e.set_sequence(8); }},
          {"time.seconds",
           [](AuditEntry& e) { e.mutable_time()->set_seconds(1); }},
          {"time.nanos", [](AuditEntry& e) { e.mutable_time()->set_nanos(1); }},
          {"principal", [](AuditEntry& e) { e.set_principal("mallory"); }},
          {"operation",
           [](AuditEntry& e) {
             e.set_operation(residency::v1::OPERATION_EXPORT_KEY);
           }},
          {"request_id", [](AuditEntry& e) { e.set_request_id("req-2"); }},
          {"reason",
           [](AuditEntry& e) {
             e.mutable_justification()->set_reason(
                 residency::v1::Justification::SECURITY_AUDIT);
           }},
          {"issuing_authority",
           [](AuditEntry& e) {
             e.mutable_justification()
                 ->mutable_legal_process()
                 ->set_issuing_authority("US DOJ");
           }},
          {"jurisdiction",
           [](AuditEntry& e) {
             e.mutable_justification()
                 ->mutable_legal_process()
                 ->set_jurisdiction("US");
           }},
          {"legal_basis",
           [](AuditEntry& e) {
             e.mutable_justification()
                 ->mutable_legal_process()
                 ->set_legal_basis("CLOUD Act");
           }},
          {"target_owner",
           [](AuditEntry& e) {
             e.mutable_justification()
                 ->mutable_legal_process()
                 ->set_target_owner("bob");
           }},
          {"scope",
           [](AuditEntry& e) {
             e.mutable_justification()->mutable_legal_process()->set_scope(
                 "all");
           }},
          {"reference_id",
           [](AuditEntry& e) {
             e.mutable_justification()
                 ->mutable_legal_process()
                 ->set_reference_id("R-10");
           }},
          {"issued_at.seconds",
           [](AuditEntry& e) {
             e.mutable_justification()
                 ->mutable_legal_process()
                 ->mutable_issued_at()
                 ->set_seconds(2);
           }},
          {"issued_at.nanos",
           [](AuditEntry& e) {
             e.mutable_justification()
                 ->mutable_legal_process()
                 ->mutable_issued_at()
                 ->set_nanos(6);
           }},
          {"detail",
           [](AuditEntry& e) {
             e.mutable_justification()->set_detail("ticket 43");
           }},
          {"key_id", [](AuditEntry& e) { e.set_key_id("kek-bob"); }},
          {"key_version", [](AuditEntry& e) { e.set_key_version(3); }},
          {"object.owner",
           [](AuditEntry& e) { e.mutable_object()->set_owner("bob"); }},
          {"object.object_id",
           [](AuditEntry& e) { e.mutable_object()->set_object_id("x"); }},
          {"object.version",
           [](AuditEntry& e) { e.mutable_object()->set_version(4); }},
          {"decision",
           [](AuditEntry& e) { e.set_decision(AuditEntry::ALLOW); }},
          {"rule", [](AuditEntry& e) { e.set_rule("allow-all"); }},
          {"status_code", [](AuditEntry& e) { e.set_status_code(0); }},
          {"status_message", [](AuditEntry& e) { e.set_status_message("ok"); }},
          {"prev_hash",
           [](AuditEntry& e) { e.set_prev_hash(std::string(32, '\x12')); }},
      };
  const std::string original = ComputeAuditEntryHash(FullEntry());
  for (const auto& [field, edit] : edits) {
    AuditEntry entry = FullEntry();
    edit(entry);
    EXPECT_NE(ComputeAuditEntryHash(entry), original) << field;
  }
}

TEST(AuditFormatTest, StoredHashFieldsAreNotPartOfTheEncoding) {
  AuditEntry entry = FullEntry();
  entry.set_entry_hash(std::string(32, '\x22'));
  EXPECT_EQ(Hex(CanonicalAuditEntry(entry)), kFullEntryEncodingHex);
}

TEST(AuditFormatTest, LengthPrefixesKeepFieldBoundaries) {
  AuditEntry a;
  a.set_principal("ab");
  a.set_request_id("c");
  AuditEntry b;
  b.set_principal("a");
  b.set_request_id("bc");
  EXPECT_NE(CanonicalAuditEntry(a), CanonicalAuditEntry(b));
}

TEST(AuditFormatTest, CheckpointSigningInputMatchesDocumentedLayout) {
  AuditCheckpoint checkpoint;
  checkpoint.set_sequence(40);
  std::string head(32, '\0');
  for (int i = 0; i < 32; ++i) head[i] = static_cast<char>(i);
  checkpoint.set_head_hash(head);
  checkpoint.mutable_time()->set_seconds(1700000000);
  checkpoint.mutable_time()->set_nanos(999);
  // Neither the signature nor the key id is signed.
  checkpoint.set_signature("sig");
  checkpoint.set_public_key_id("id");
  const std::string input = CheckpointSigningInput(checkpoint);
  EXPECT_EQ(input.size(), kCheckpointSigningInputSize);
  EXPECT_EQ(Hex(input),
            "7265736964656e63792f61756469742d636865636b706f696e742f763100"
            "0000000000000028"
            "000102030405060708090a0b0c0d0e0f"
            "101112131415161718191a1b1c1d1e1f"
            "000000006553f100"
            "000003e7");
}

TEST(AuditFormatTest, TimestampConversionKeepsNanosNonNegative) {
  const absl::Time before_epoch =
      absl::FromUnixSeconds(-2) + absl::Nanoseconds(250);
  const google::protobuf::Timestamp ts = ToTimestamp(before_epoch);
  EXPECT_EQ(ts.seconds(), -2);
  EXPECT_EQ(ts.nanos(), 250);
  EXPECT_EQ(FromTimestamp(ts), before_epoch);

  const absl::Time just_before = absl::FromUnixNanos(-1);
  EXPECT_EQ(ToTimestamp(just_before).seconds(), -1);
  EXPECT_EQ(ToTimestamp(just_before).nanos(), 999999999);
}

}  // namespace
}  // namespace residency::key_service
