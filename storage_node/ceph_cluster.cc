#include "storage_node/ceph_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace residency::storage_node {
namespace {

namespace fs = std::filesystem;

constexpr char kCeph[] = "/usr/bin/ceph";
constexpr char kCephMon[] = "/usr/bin/ceph-mon";
constexpr char kCephOsd[] = "/usr/bin/ceph-osd";
constexpr char kMonmaptool[] = "/usr/bin/monmaptool";
constexpr char kRados[] = "/usr/bin/rados";

// A random (version 4) UUID, as Ceph's fsid and OSD uuid.
std::string RandomUuid() {
  std::random_device random;
  uint8_t b[16];
  for (uint8_t& byte : b) byte = static_cast<uint8_t>(random());
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
      b[12], b[13], b[14], b[15]);
}

// A loopback port nobody listens on right now (the kernel's choice for an
// ephemeral bind). Another process may take it before the monitor binds
// it; Start then tries another.
absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("cannot open a socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return absl::InternalError("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string Tail(const std::string& text, size_t bytes = 4000) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

}  // namespace

bool CephCluster::Installed() {
  for (const char* binary : {kCeph, kCephMon, kCephOsd, kMonmaptool, kRados}) {
    if (::access(binary, X_OK) != 0) return false;
  }
  return true;
}

CephCluster::CephCluster(CephClusterOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<CephCluster>> CephCluster::Start(
    CephClusterOptions options) {
  if (!Installed()) {
    return absl::FailedPreconditionError(
        "Ceph is not installed (ceph-mon, ceph-osd, ceph-common): run "
        "scripts/install-deps as root");
  }
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("the Ceph cluster needs a directory");
  }
  const absl::Time deadline = absl::Now() + options.start_timeout;
  std::unique_ptr<CephCluster> cluster(new CephCluster(std::move(options)));
  const CephClusterOptions& o = cluster->options_;
  std::error_code ec;
  for (const char* sub : {"run", "log", "mon", "osd"}) {
    fs::create_directories(fs::path(o.dir) / sub, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", o.dir, "/", sub, ": ", ec.message()));
    }
  }
  cluster->conf_path_ = o.dir + "/ceph.conf";
  cluster->fsid_ = RandomUuid();
  absl::Status status = cluster->StartMonitor();
  if (status.ok()) status = cluster->CreateOsd();
  if (status.ok()) status = cluster->SpawnOsd();
  if (status.ok()) {
    status =
        cluster->Run("create the pool", kCeph,
                     {"-c", cluster->conf_path_, "osd", "pool", "create",
                      o.pool, absl::StrCat(o.pg_num), absl::StrCat(o.pg_num)},
                     absl::Seconds(30));
  }
  if (status.ok()) status = cluster->WaitForWrites(deadline);
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("the Ceph cluster in ", o.dir,
                                     " did not start: ", status.message(), "\n",
                                     cluster->Logs()));
  }
  return cluster;
}

CephCluster::~CephCluster() {
  // The OSD first: without its monitor it would wait to report its stop.
  if (osd_ != nullptr) osd_->Terminate(absl::Seconds(10));
  if (mon_ != nullptr) mon_->Terminate(absl::Seconds(10));
}

std::string CephCluster::monitor_address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::Status CephCluster::Run(const std::string& what,
                              const std::string& binary,
                              const std::vector<std::string>& args,
                              absl::Duration timeout) {
  absl::StatusOr<process::ProcessResult> result =
      process::RunProcess(binary, args, timeout);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot ", what, " (", binary, " exited with ", result->exit_code,
        result->timed_out ? ", timed out" : "", "): ", Tail(result->err)));
  }
  return absl::OkStatus();
}

absl::Status CephCluster::StartMonitor() {
  const CephClusterOptions& o = options_;
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    port_ = *port;
    // The monitor's store is made afresh for each port it is tried on.
    fs::remove_all(fs::path(o.dir) / "mon");
    fs::create_directories(fs::path(o.dir) / "mon");
    std::ofstream conf(conf_path_, std::ios::trunc);
    conf << "# A throwaway single-host test cluster (residency CephCluster).\n"
         << "[global]\n"
         << "fsid = " << fsid_ << "\n"
         << "mon_host = v2:127.0.0.1:" << port_ << "\n"
         << "public_addr = 127.0.0.1\n"
         << "ms_bind_ipv4 = true\n"
         << "ms_bind_ipv6 = false\n"
         << "auth_cluster_required = none\n"
         << "auth_service_required = none\n"
         << "auth_client_required = none\n"
         << "run_dir = " << o.dir << "/run\n"
         << "admin_socket = " << o.dir << "/run/$cluster-$name.asok\n"
         << "pid_file = " << o.dir << "/run/$name.pid\n"
         << "log_file = " << o.dir << "/log/$name.log\n"
         << "mon_data = " << o.dir << "/mon/$cluster-$id\n"
         << "osd_data = " << o.dir << "/osd/$cluster-$id\n"
         << "osd_objectstore = memstore\n"
         << "memstore_device_bytes = " << o.memstore_bytes << "\n"
         << "osd_pool_default_size = 1\n"
         << "osd_pool_default_min_size = 1\n"
         << "osd_crush_chooseleaf_type = 0\n"
         << "mon_allow_pool_size_one = true\n"
         << "mon_warn_on_pool_no_redundancy = false\n"
         << "mon_data_avail_crit = 0\n"
         << "mon_data_avail_warn = 0\n"
         // A stopped OSD saves what memstore holds (a fast shutdown would
         // skip that and lose it).
         << "osd_fast_shutdown = false\n"
         << "[client]\n"
         << "rados_osd_op_timeout = "
         << absl::ToInt64Seconds(o.client_op_timeout) << "\n"
         << "rados_mon_op_timeout = "
         << absl::ToInt64Seconds(o.client_op_timeout) << "\n"
         << "log_file = " << o.dir << "/log/client.$pid.log\n"
         << "admin_socket = " << o.dir << "/run/$cluster-$name.$pid.asok\n";
    conf.close();
    if (!conf) return absl::InternalError("cannot write " + conf_path_);
    const std::string monmap = o.dir + "/monmap";
    absl::Status s = Run(
        "make the monitor map", kMonmaptool,
        {"--create", "--clobber", "--addv", "a",
         absl::StrCat("[v2:127.0.0.1:", port_, "]"), "--fsid", fsid_, monmap},
        absl::Seconds(30));
    if (s.ok()) {
      s = Run("make the monitor's store", kCephMon,
              {"-c", conf_path_, "--mkfs", "-i", "a", "--monmap", monmap},
              absl::Seconds(30));
    }
    if (!s.ok()) return s;
    absl::StatusOr<std::unique_ptr<process::ChildProcess>> mon =
        process::ChildProcess::Start(kCephMon,
                                     {"-c", conf_path_, "-i", "a", "-f"},
                                     o.dir + "/log/mon.stderr");
    if (!mon.ok()) return mon.status();
    mon_ = *std::move(mon);
    // Answers once it has formed its quorum of one.
    last = Run("reach the monitor", kCeph,
               {"-c", conf_path_, "--connect-timeout", "10", "mon", "stat"},
               absl::Seconds(20));
    if (last.ok()) return absl::OkStatus();
    mon_->Terminate(absl::Seconds(5));
    mon_.reset();
  }
  return last;
}

absl::Status CephCluster::CreateOsd() {
  std::error_code ec;
  fs::create_directories(fs::path(options_.dir) / "osd" / "ceph-0", ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create the OSD's directory: ", ec.message()));
  }
  const std::string uuid = RandomUuid();
  absl::Status s =
      Run("register the OSD", kCeph,
          {"-c", conf_path_, "osd", "new", uuid, "0"}, absl::Seconds(30));
  if (!s.ok()) return s;
  // --no-mon-config: the OSD's mkfs would otherwise ask the monitor for
  // its configuration with credentials it does not have yet.
  return Run("make the OSD's store", kCephOsd,
             {"-c", conf_path_, "-i", "0", "--mkfs", "--osd-uuid", uuid,
              "--no-mon-config"},
             absl::Seconds(60));
}

absl::Status CephCluster::SpawnOsd() {
  absl::StatusOr<std::unique_ptr<process::ChildProcess>> osd =
      process::ChildProcess::Start(kCephOsd,
                                   {"-c", conf_path_, "-i", "0", "-f"},
                                   options_.dir + "/log/osd.stderr");
  if (!osd.ok()) return osd.status();
  osd_ = *std::move(osd);
  return absl::OkStatus();
}

absl::Status CephCluster::WaitForWrites(absl::Time deadline) {
  const std::string probe = options_.dir + "/probe";
  std::ofstream(probe) << "probe\n";
  absl::Status last = absl::DeadlineExceededError("no write was tried");
  while (absl::Now() < deadline) {
    if (osd_ != nullptr && !osd_->running()) {
      return absl::UnavailableError("the OSD exited");
    }
    last = Run("write a test object", kRados,
               {"-c", conf_path_, "-p", options_.pool, "put", "residency-probe",
                probe},
               absl::Seconds(5));
    if (last.ok()) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return absl::UnavailableError(
      absl::StrCat("the pool took no write in time: ", last.message()));
}

absl::Status CephCluster::StopOsd() {
  if (osd_ == nullptr) return absl::FailedPreconditionError("no OSD runs");
  const int exit = osd_->Terminate(absl::Seconds(30));
  osd_.reset();
  if (exit != 0) {
    return absl::InternalError(
        absl::StrCat("the OSD exited with ", exit, " when stopped"));
  }
  return absl::OkStatus();
}

absl::Status CephCluster::StartOsd(absl::Duration timeout) {
  if (osd_ != nullptr && osd_->running()) return absl::OkStatus();
  if (absl::Status s = SpawnOsd(); !s.ok()) return s;
  return WaitForWrites(absl::Now() + timeout);
}

bool CephCluster::osd_running() { return osd_ != nullptr && osd_->running(); }

std::string CephCluster::Logs() const {
  std::string logs;
  for (const char* name :
       {"mon.stderr", "osd.stderr", "mon.a.log", "osd.0.log"}) {
    const std::string text =
        process::ReadFileOrEmpty(options_.dir + "/log/" + name);
    if (!text.empty()) {
      absl::StrAppend(&logs, "--- ", name, ":\n", Tail(text, 2000), "\n");
    }
  }
  return logs;
}

}  // namespace residency::storage_node
