// sim --spawn and sim --topology=FILE, through the sim binary, against the
// real key_service and storage_node binaries.
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "rpc/process.h"
#include "sim/scenario.h"
#include "sim/world.h"
#include "tests/ceph_test_cluster.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/pki.h"

namespace residency::sim {
namespace {

using ::residency::testing::TempDir;

namespace fs = std::filesystem;

using ::residency::process::ProcessResult;
using ::residency::process::ReadFileOrEmpty;
using ::residency::process::ServerProcess;
using ::testing::HasSubstr;

class SimModesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("sim_spawn_test"));
  }
  void TearDown() override {
    more_gateways_.clear();
    node_.reset();
    keys_.reset();
  }

  ProcessResult Sim(const std::vector<std::string>& args) {
    absl::StatusOr<ProcessResult> result =
        process::RunProcess(RESIDENCY_SIM_BINARY, args, absl::Seconds(120));
    EXPECT_OK(result.status());
    return result.ok() ? *std::move(result) : ProcessResult{};
  }

  // Processes whose command line mentions `text`.
  static std::vector<std::string> ProcessesMentioning(const std::string& text) {
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = ReadFileOrEmpty(entry.path().string() + "/cmdline");
      for (char& c : cmdline) {
        if (c == '\0') c = ' ';
      }
      if (absl::StrContains(cmdline, text))
        found.push_back(name + ": " + cmdline);
    }
    return found;
  }

  // gov_request's services, started here with certificates from one CA, and
  // a topology file naming them. `skip` leaves that service out of it.
  //
  // `gateways` > 0: the storage node is that many gateways over a pool of
  // the test Ceph cluster (onshore_cluster's world has the same parties).
  void StartServices(int gateways = 0) {
    ASSERT_OK_AND_ASSIGN(v1::Scenario scenario,
                         LoadBuiltinScenario("gov_request"));
    const std::string tls_dir = dir_ + "/tls";
    fs::create_directories(tls_dir);
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("lab-ca"));
    std::vector<std::string> principals = {
        "residency://service/us-custodian", "residency://service/cn-node",
        "residency://authority/cn", "residency://operator/cn-telecom",
        "residency://operator/auditor"};
    for (int i = 1; i <= 4; ++i) {
      principals.push_back(absl::StrCat("residency://user/user-", i));
    }
    for (const std::string& p : principals) {
      ASSERT_OK_AND_ASSIGN(tls::Identity id, ca.Issue(p));
      ASSERT_OK(id.WriteFiles(tls_dir, IdentityStem(p)));
    }
    std::string policy;
    ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(
        scenario.world().key_services(0).policy(), &policy));
    std::ofstream(dir_ + "/us.policy") << policy;
    auto tls_flags = [&](const std::string& stem) {
      return std::vector<std::string>{
          "--tls_ca=" + tls_dir + "/ca.crt",
          "--tls_cert=" + tls_dir + "/" + stem + ".crt",
          "--tls_key=" + tls_dir + "/" + stem + ".key"};
    };
    std::vector<std::string> ks_args = tls_flags("service.us-custodian");
    ks_args.insert(ks_args.end(),
                   {"--jurisdiction=US", "--policy=" + dir_ + "/us.policy",
                    "--data_dir=" + dir_ + "/ks"});
    ASSERT_OK_AND_ASSIGN(
        keys_, ServerProcess::Start(RESIDENCY_KEY_SERVICE_BINARY, ks_args, dir_,
                                    "ks"));
    std::vector<std::string> node_args = tls_flags("service.cn-node");
    node_args.insert(node_args.end(),
                     {"--jurisdiction=CN",
                      "--operator_principal=residency://operator/cn-telecom"});
    if (gateways == 0) {
      node_args.push_back("--data_dir=" + dir_ + "/sn");
    } else {
      ASSERT_OK_AND_ASSIGN(const std::string conf,
                           residency::testing::TestCephConf());
      node_args.insert(
          node_args.end(),
          {"--store=rados", "--rados_conf=" + conf,
           std::string("--rados_pool=") + residency::testing::kCephTestPool,
           absl::StrCat("--rados_namespace=sim-", ::getpid(), "-",
                        fs::path(dir_).filename().string())});
    }
    ASSERT_OK_AND_ASSIGN(
        node_, ServerProcess::Start(RESIDENCY_STORAGE_NODE_BINARY, node_args,
                                    dir_, "sn"));
    for (int g = 1; g < gateways; ++g) {
      ASSERT_OK_AND_ASSIGN(
          std::unique_ptr<ServerProcess> gateway,
          ServerProcess::Start(RESIDENCY_STORAGE_NODE_BINARY, node_args, dir_,
                               absl::StrCat("sn-", g + 1)));
      more_gateways_.push_back(std::move(gateway));
    }
  }

  std::string WriteTopology(bool with_node = true) {
    std::string text = absl::StrCat(
        "# the lab\n"
        "ca_file: \"tls/ca.crt\"\n"
        "identity_dir: \"tls\"\n"
        "services {\n"
        "  name: \"us-custodian\"\n"
        "  address: \"",
        keys_->address(),
        "\"\n"
        "  audit_public_key_file: \"ks/audit_public_key.pem\"\n"
        "}\n");
    if (with_node) {
      absl::StrAppend(&text, "services { name: \"cn-node\" address: \"",
                      node_->address(), "\"");
      for (const auto& gateway : more_gateways_) {
        absl::StrAppend(&text, " gateways: \"", gateway->address(), "\"");
      }
      absl::StrAppend(&text, " }\n");
    }
    const std::string path = dir_ + "/topology.textproto";
    std::ofstream(path) << text;
    return path;
  }

  TempDir temp_;
  std::string dir_;
  std::unique_ptr<ServerProcess> keys_;
  std::unique_ptr<ServerProcess> node_;
  std::vector<std::unique_ptr<ServerProcess>> more_gateways_;
};

TEST_F(SimModesTest, SpawnRunsGovRequestWithRealBinariesAndStopsThem) {
  const std::string work = dir_ + "/work";
  ProcessResult r = Sim({"--scenario=gov_request", "--spawn",
                         "--work_dir=" + work, "--report=json"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("\"passed\": true"));
  // The services were processes of the real binaries, now gone.
  EXPECT_THAT(ReadFileOrEmpty(work + "/processes/us-custodian.log"),
              HasSubstr("key_service: residency://service/us-custodian "
                        "serving on 127.0.0.1:"));
  EXPECT_THAT(ReadFileOrEmpty(work + "/processes/cn-node.log"),
              HasSubstr("storage_node: residency://service/cn-node serving"));
  EXPECT_TRUE(fs::exists(work + "/ks-us-custodian/audit_public_key.pem"));
  struct stat st;
  ASSERT_EQ(::stat((work + "/tls/service.us-custodian.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_THAT(ProcessesMentioning("--data_dir=" + work), ::testing::IsEmpty());
}

TEST_F(SimModesTest, TopologyRunsGovRequestAgainstRunningServices) {
  StartServices();
  ASSERT_NE(node_, nullptr);
  const std::string topology = WriteTopology();
  ProcessResult r = Sim({"--scenario=gov_request", "--topology=" + topology,
                         "--work_dir=" + dir_ + "/work"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("not checked offline"));
  // The services are left running.
  EXPECT_TRUE(keys_->running());
  EXPECT_TRUE(node_->running());
}

TEST_F(SimModesTest, TopologyRunsOnshoreClusterAgainstTwoRunningGateways) {
  StartServices(/*gateways=*/2);
  ASSERT_NE(node_, nullptr);
  ASSERT_EQ(more_gateways_.size(), 1u);
  ProcessResult r =
      Sim({"--scenario=onshore_cluster", "--topology=" + WriteTopology(),
           "--work_dir=" + dir_ + "/work"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("export_gateways_agree{node=cn-node} == 1 "
                               "(actual 1)"));
  EXPECT_THAT(r.err, HasSubstr("gateway 2 of cn-node: handed over the same"));
  // The gateways are left running; no cluster was started for the run.
  for (ServerProcess* gateway : {node_.get(), more_gateways_[0].get()}) {
    EXPECT_TRUE(gateway->running());
  }
  EXPECT_FALSE(fs::exists(dir_ + "/work/ceph"));
}

TEST_F(SimModesTest, MalformedTopologyGivesLineAndColumn) {
  const std::string path = dir_ + "/bad.textproto";
  std::ofstream(path) << "ca_file: \"ca.crt\"\nservices {\n  nmae: \"x\"\n}\n";
  ProcessResult r =
      Sim({"--scenario=gov_request", "--topology=" + path, "--quiet"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("topology file " + path + ":3:3:"));
}

TEST_F(SimModesTest, TopologyMissingAServiceNamesIt) {
  StartServices();
  ASSERT_NE(node_, nullptr);
  const std::string topology = WriteTopology(/*with_node=*/false);
  ProcessResult r =
      Sim({"--scenario=gov_request", "--topology=" + topology, "--quiet"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no address for storage node 'cn-node'"));
}

TEST_F(SimModesTest, TopologyCannotRunPhasesThatNeedDataDirs) {
  // insider_dump's world is gov_request's: the same services serve it.
  StartServices();
  ASSERT_NE(node_, nullptr);
  ASSERT_OK_AND_ASSIGN(v1::Scenario insider,
                       LoadBuiltinScenario("insider_dump"));
  ASSERT_EQ(insider.world().storage_nodes(0).name(), "cn-node");
  ProcessResult r = Sim(
      {"--scenario=insider_dump", "--topology=" + WriteTopology(), "--quiet"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("needs the services' data directories"));
}

}  // namespace
}  // namespace residency::sim
