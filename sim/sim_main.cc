// sim: runs a threat scenario against real services and reports who
// obtained what. sim/run builds it and passes its arguments through.

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rpc/printable.h"
#include "rpc/status_detail.h"
#include "rpc/unknown_flag.h"
#include "sim/compare.h"
#include "sim/engine.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/topology.h"
#include "sim/world.h"

ABSL_FLAG(std::string, scenario, "", "built-in scenario to run (see --list)");
ABSL_FLAG(std::string, scenario_file, "",
          "run the scenario in this text-format file instead "
          "(proto/residency/v1/scenario.proto)");
ABSL_FLAG(bool, list, false, "list the built-in scenarios and exit");
ABSL_FLAG(std::string, report, "text",
          "report format: text (tables for the terminal), json (for CI and "
          "diffs), html (one self-contained page with a data-flow diagram "
          "and latency charts; use with --out) or markdown (md: for a pull "
          "request, with a Mermaid diagram)");
ABSL_FLAG(std::string, compare, "",
          "A,B: run built-ins A and B (each in its own work directory) and "
          "report, in the --report format, what changed in the world and "
          "every metric that differs, exposure first");
ABSL_FLAG(std::string, out, "",
          "write the report to this file instead of standard output");
ABSL_FLAG(uint64_t, seed, 0,
          "replace the scenario's seed (0: keep it); the same scenario and "
          "seed give the same exposure figures");
ABSL_FLAG(std::string, work_dir, "",
          "where services keep their data; default: a fresh temporary "
          "directory, removed at the end unless --keep_work_dir");
ABSL_FLAG(bool, keep_work_dir, false,
          "keep the data directories for inspection after the run");
ABSL_FLAG(bool, quiet, false, "no progress lines on standard error");
ABSL_FLAG(bool, spawn, false,
          "run every key service and storage node as its own process of the "
          "real key_service / storage_node binary (of this build tree), "
          "with certificates, policies, data and logs under the work "
          "directory (tls/, processes/, ks-NAME/, sn-NAME/)");
ABSL_FLAG(std::string, topology, "",
          "run against services already running elsewhere, as this "
          "text-format residency.v1.Topology file names them (addresses, "
          "the CA certificate, the parties' certificates and keys; see "
          "proto/residency/v1/scenario.proto); phases that need the "
          "services' files (audit, insider) cannot run");

namespace {

namespace fs = std::filesystem;

constexpr int kExpectationsFailed = 1;
constexpr int kUsage = 2;
constexpr int kRunFailed = 3;

int Usage(const std::string& message) {
  std::cerr << "sim: " << message << "\n"
            << "Try --help, or --list for the scenarios.\n";
  return kUsage;
}

// The key_service or storage_node binary of this build tree: next to this
// binary's directory (build/sim/sim -> build/key_service/key_service), or
// where the build put it.
std::string ServiceBinary(const std::string& name, const char* built) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path sibling = self.parent_path().parent_path() / name / name;
    if (fs::is_regular_file(sibling, ec)) return sibling.string();
  }
  return built;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "runs a residency threat scenario against real services (in-process, "
      "real gRPC and mTLS on loopback ports; each its own process with "
      "--spawn; already running elsewhere with --topology) and reports what "
      "each party obtained.\n\n"
      "  sim/run --scenario=gov_request\n"
      "  sim/run --list\n"
      "  sim/run --scenario_file=my.textproto --report=json --out=r.json\n"
      "  sim/run --scenario=escrow_backdoor --report=html --out=r.html\n"
      "  sim/run --compare=gov_request,key_relocation\n"
      "  sim/run --scenario=gov_request --spawn       # real binaries\n"
      "  sim/run --scenario=gov_request --topology=lab.textproto\n\n"
      "Exit status: 0 every expectation met; 1 an expectation failed (the "
      "report names it); 2 usage error; 3 the run itself failed.");
  if (std::string bad = residency::rpc::UnknownFlag(argc, argv); !bad.empty()) {
    return Usage(absl::StrCat("unknown flag ", bad));
  }
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    return Usage(absl::StrCat("unexpected argument '", rest[1], "'"));
  }

  if (absl::GetFlag(FLAGS_list)) {
    for (const residency::sim::BuiltinScenario& b :
         residency::sim::BuiltinScenarios()) {
      absl::StatusOr<residency::v1::Scenario> s =
          residency::sim::ParseScenario(b.text, b.name);
      std::cout << b.name << "\t" << (s.ok() ? s->title() : "(invalid)")
                << "\n";
    }
    return 0;
  }

  const std::string name = absl::GetFlag(FLAGS_scenario);
  const std::string file = absl::GetFlag(FLAGS_scenario_file);
  const std::string compare = absl::GetFlag(FLAGS_compare);
  const int given = static_cast<int>(!name.empty()) +
                    static_cast<int>(!file.empty()) +
                    static_cast<int>(!compare.empty());
  if (given != 1) {
    return Usage(
        "give exactly one of --scenario=NAME, --scenario_file=PATH and "
        "--compare=A,B");
  }
  std::string format = absl::GetFlag(FLAGS_report);
  if (format == "md") format = "markdown";
  if (format != "text" && format != "json" && format != "html" &&
      format != "markdown") {
    return Usage(absl::StrCat("--report=", format,
                              " is not text, json, html or markdown"));
  }
  // The scenarios to run: one, or the two of --compare.
  std::vector<residency::v1::Scenario> scenarios;
  if (!compare.empty()) {
    std::vector<std::string> names = absl::StrSplit(compare, ',');
    if (names.size() != 2 || names[0].empty() || names[1].empty()) {
      return Usage(absl::StrCat("--compare=", compare,
                                " must name two built-ins: --compare=A,B"));
    }
    for (const std::string& n : names) {
      absl::StatusOr<residency::v1::Scenario> s =
          residency::sim::LoadBuiltinScenario(n);
      if (!s.ok()) {
        std::cerr << "sim: "
                  << residency::rpc::PrintableMessage(s.status().message())
                  << "\n";
        return kUsage;
      }
      scenarios.push_back(*std::move(s));
    }
  } else {
    absl::StatusOr<residency::v1::Scenario> scenario =
        file.empty() ? residency::sim::LoadBuiltinScenario(name)
                     : residency::sim::LoadScenarioFile(file);
    if (!scenario.ok()) {
      std::cerr << "sim: "
                << residency::rpc::PrintableMessage(scenario.status().message())
                << "\n";
      return kUsage;
    }
    scenarios.push_back(*std::move(scenario));
  }

  residency::sim::WorldOptions world_options;
  const std::string topology_file = absl::GetFlag(FLAGS_topology);
  if (absl::GetFlag(FLAGS_spawn) && !topology_file.empty()) {
    return Usage("give at most one of --spawn and --topology=FILE");
  }
  if (absl::GetFlag(FLAGS_spawn)) {
    world_options.mode = residency::sim::ServiceMode::kSpawn;
    world_options.key_service_binary =
        ServiceBinary("key_service", RESIDENCY_KEY_SERVICE_BINARY);
    world_options.storage_node_binary =
        ServiceBinary("storage_node", RESIDENCY_STORAGE_NODE_BINARY);
  } else if (!topology_file.empty()) {
    if (scenarios.size() != 1) {
      // The second run would find the first one's keys and objects.
      return Usage("--topology runs one scenario, not --compare");
    }
    absl::StatusOr<residency::v1::Topology> topology =
        residency::sim::LoadTopology(topology_file, scenarios[0]);
    if (!topology.ok()) {
      std::cerr << "sim: "
                << residency::rpc::PrintableMessage(topology.status().message())
                << "\n";
      return kUsage;
    }
    world_options.mode = residency::sim::ServiceMode::kTopology;
    world_options.topology = *std::move(topology);
  }

  std::string work_dir = absl::GetFlag(FLAGS_work_dir);
  bool remove_work_dir = false;
  if (work_dir.empty()) {
    std::string pattern =
        (fs::temp_directory_path() / "residency-sim.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "sim: cannot create a temporary directory\n";
      return kRunFailed;
    }
    work_dir = pattern;
    remove_work_dir = !absl::GetFlag(FLAGS_keep_work_dir);
  } else {
    std::error_code ec;
    fs::create_directories(work_dir, ec);
    if (!fs::is_directory(work_dir) || !fs::is_empty(work_dir)) {
      return Usage(
          absl::StrCat("--work_dir=", work_dir, " must be an empty directory"));
    }
  }

  // Each scenario in its own directory when comparing (A/ and B/ names).
  std::vector<residency::sim::Report> reports;
  absl::Status failed;
  for (size_t i = 0; i < scenarios.size() && failed.ok(); ++i) {
    residency::sim::RunOptions options;
    options.work_dir = work_dir;
    if (scenarios.size() > 1) {
      options.work_dir = absl::StrCat(work_dir, "/", i == 0 ? "a-" : "b-",
                                      scenarios[i].name());
      std::error_code ec;
      fs::create_directories(options.work_dir, ec);
    }
    options.progress = absl::GetFlag(FLAGS_quiet) ? nullptr : &std::cerr;
    options.seed = absl::GetFlag(FLAGS_seed);
    options.world = world_options;
    if (options.progress != nullptr && scenarios.size() > 1) {
      std::cerr << "[sim] == " << scenarios[i].name() << " ==" << std::endl;
    }
    absl::StatusOr<residency::sim::Report> report =
        residency::sim::RunScenario(scenarios[i], options);
    if (!report.ok()) {
      failed = absl::Status(
          report.status().code(),
          absl::StrCat(scenarios[i].name(), ": ", report.status().message()));
    } else {
      reports.push_back(*std::move(report));
    }
  }
  if (remove_work_dir) {
    std::error_code ec;
    fs::remove_all(work_dir, ec);
  } else {
    std::cerr << "sim: data directories kept in " << work_dir << "\n";
  }
  if (!failed.ok()) {
    std::cerr << "sim: the scenario could not run: "
              << residency::rpc::Describe(failed) << "\n";
    return kRunFailed;
  }

  std::ofstream file_out;
  std::ostream* out = &std::cout;
  if (const std::string path = absl::GetFlag(FLAGS_out); !path.empty()) {
    file_out.open(path);
    if (!file_out) {
      std::cerr << "sim: cannot write " << path << "\n";
      return kRunFailed;
    }
    out = &file_out;
  }
  if (reports.size() == 2) {
    const residency::sim::Comparison comparison =
        residency::sim::Compare(reports[0], reports[1]);
    if (format == "json") {
      residency::sim::WriteJsonComparison(comparison, *out);
    } else if (format == "html") {
      residency::sim::WriteHtmlComparison(comparison, *out);
    } else if (format == "markdown") {
      residency::sim::WriteMarkdownComparison(comparison, *out);
    } else {
      residency::sim::WriteTextComparison(comparison, *out);
    }
  } else if (format == "json") {
    residency::sim::WriteJsonReport(reports[0], *out);
  } else if (format == "html") {
    residency::sim::WriteHtmlReport(reports[0], *out);
  } else if (format == "markdown") {
    residency::sim::WriteMarkdownReport(reports[0], *out);
  } else {
    residency::sim::WriteTextReport(reports[0], *out);
  }
  out->flush();
  if (!*out) {
    std::cerr << "sim: cannot write the report\n";
    return kRunFailed;
  }
  int exit_status = 0;
  for (const residency::sim::Report& report : reports) {
    for (const residency::sim::ExpectationResult& e : report.expectations) {
      if (e.passed) continue;
      exit_status = kExpectationsFailed;
      if (reports.size() > 1) {
        std::cerr << "sim: " << report.scenario << ": expectation failed: "
                  << residency::rpc::Printable(e.expectation.name()) << "\n";
      }
    }
  }
  return exit_status;
}
