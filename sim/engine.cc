#include "sim/engine.h"

#include <filesystem>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sim/audit_trail.h"
#include "sim/ledger.h"
#include "sim/phases.h"
#include "sim/world.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;

std::string Describe(const residency::v1::Phase& phase) {
  switch (phase.action_case()) {
    case residency::v1::Phase::kWorkload:
      return absl::StrCat("users ", residency::v1::Workload::Kind_Name(
                                        phase.workload().kind()));
    case residency::v1::Phase::kCompulsion:
      return absl::StrCat(
          "authority/",
          absl::AsciiStrToLower(phase.compulsion().jurisdiction()),
          " compels operators and custodians");
    case residency::v1::Phase::kKeyAction:
      return absl::StrCat(
          "owners ",
          residency::v1::KeyAction::Kind_Name(phase.key_action().kind()),
          " their keys");
    case residency::v1::Phase::kAudit:
      return "security audit of " + phase.audit().storage_node();
    case residency::v1::Phase::kInsider:
      return absl::StrCat(
          "insider at ", phase.insider().storage_node(), " copies its data",
          phase.insider().tamper() ? " and tampers with reads" : "");
    case residency::v1::Phase::kTap:
      return absl::StrCat("tap on ", phase.tap().a(), "-", phase.tap().b());
    default:
      return "";
  }
}

// `label` names the phase in operation names: its name, or "phase-N".
absl::Status RunPhase(const residency::v1::Phase& phase,
                      const std::string& label, World& world, Ledger& ledger) {
  switch (phase.action_case()) {
    case residency::v1::Phase::kWorkload:
      if (phase.workload().kind() == residency::v1::Workload::MIXED) {
        return RunMixed(label, phase.workload(), world, ledger);
      }
      return RunWorkload(phase.workload(), world, ledger);
    case residency::v1::Phase::kTap:
      return RunTap(phase.tap(), world, ledger);
    case residency::v1::Phase::kCompulsion:
      return RunCompulsion(phase.compulsion(), world, ledger);
    case residency::v1::Phase::kKeyAction:
      return RunKeyAction(phase.key_action(), world, ledger);
    case residency::v1::Phase::kAudit:
      return RunAudit(phase.audit(), world, ledger);
    case residency::v1::Phase::kInsider:
      return RunInsiderDump(phase.insider(), world, ledger);
    default:
      return absl::UnimplementedError(
          absl::StrCat("this phase kind (", Describe(phase),
                       ") is not implemented by the simulator yet"));
  }
}

// What the report says beyond the figures.
void Notes(World& world, Report& report) {
  uint64_t objects = 0, bytes = 0;
  for (const User& u : world.users()) {
    objects += u.objects.size();
    for (const Truth& t : u.objects) bytes += t.size;
  }
  report.notes.push_back(absl::StrCat(
      "Metadata the onshore operator holds without any key: ",
      world.users().size(), " owners, ", objects,
      " object names and exact sizes (", bytes,
      " bytes), write times, and which key service and jurisdiction hold "
      "each key."));
  for (const Endpoint& node : world.storage_nodes()) {
    if (world.NodeSpec(node.name).store() !=
        residency::v1::StorageNodeSpec::STORE_RADOS) {
      continue;
    }
    report.notes.push_back(absl::StrCat(
        "Storage node ", node.name,
        " kept its objects in a Ceph RADOS pool "
        "(namespace ",
        node.name, ") behind ", node.gateways.size(),
        node.gateways.size() == 1 ? " gateway" : " gateways",
        world.mode() == ServiceMode::kTopology
            ? "."
            : "; the simulator ran a single-host cluster for it (one "
              "monitor, one memstore OSD on 127.0.0.1) under ceph/ in the "
              "work directory."));
  }
  if (world.mode() == ServiceMode::kSpawn) {
    report.notes.push_back(
        "Services ran as separate processes of the real key_service and "
        "storage_node binaries (--spawn); their logs are in "
        "processes/*.log under the work directory.");
  } else if (world.mode() == ServiceMode::kTopology) {
    report.notes.push_back(
        "Services ran elsewhere, as the --topology file names them; the "
        "simulator reached them over the network only.");
  }
}

}  // namespace

absl::StatusOr<Report> RunScenario(const residency::v1::Scenario& scenario,
                                   const RunOptions& options) {
  if (options.work_dir.empty() || !fs::is_directory(options.work_dir)) {
    return absl::InvalidArgumentError(
        "the run needs an existing work directory");
  }
  const uint64_t seed =
      options.seed != 0 ? options.seed : scenario.population().seed();
  Report report;
  report.scenario = scenario.name();
  report.title = scenario.title();
  report.description = scenario.description();
  report.models.assign(scenario.models().begin(), scenario.models().end());
  report.seed = seed;

  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<World>> world =
      World::Start(scenario, options.work_dir, seed, options.world);
  if (!world.ok()) return world.status();
  Ledger ledger(**world, report, options.progress);
  // Partition windows count from the first phase, not from set-up.
  (*world)->links().Start();
  int index = 0;
  for (const residency::v1::Phase& phase : scenario.phases()) {
    ++index;
    ledger.Progress(absl::StrCat("phase ", index, "/", scenario.phases_size(),
                                 " ", phase.name(), ": ", Describe(phase)));
    const std::string label =
        phase.name().empty() ? absl::StrCat("phase-", index) : phase.name();
    (*world)->links().PhaseBegins(phase.name());
    if (absl::Status s = RunPhase(phase, label, **world, ledger); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("phase ", index, " (", phase.name(),
                                       "): ", s.message()));
    }
  }
  if (absl::Status s = FinishTaps(**world, ledger); !s.ok()) return s;
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (absl::Status s = RecordOperatorHoldings(**world, ledger); !s.ok()) {
    return s;
  }
  for (const LinkStats& link : (*world)->links().Stats()) {
    auto& f = report.links[absl::StrCat(link.a, "-", link.b)];
    f["calls"] += link.calls;
    f["lost"] += link.lost;
    f["partitioned"] += link.partitioned;
    f["request_bytes"] += link.request_bytes;
    f["response_bytes"] += link.response_bytes;
  }
  Notes(**world, report);

  // After the phases: an auditor reads and verifies every key service's
  // audit log while the services run, then each stored log again offline
  // once the world is stopped and the logs are closed (audit_trail.h).
  absl::StatusOr<std::vector<AuditRead>> audit_reads =
      ReadAuditLogs(**world, ledger);
  if (!audit_reads.ok()) return audit_reads.status();
  report.world = scenario.world();
  report.population = scenario.population();
  if (options.before_stop) options.before_stop(**world);
  (*world)->Stop();
  ledger.Progress(absl::StrCat("services stopped (",
                               ServiceModeName((*world)->mode()), ")"));
  world->reset();
  if (options.after_stop) options.after_stop(options.work_dir);
  VerifyStoredAuditLogs(*audit_reads, report);

  report.Check(scenario.expectations());
  return report;
}

}  // namespace residency::sim
