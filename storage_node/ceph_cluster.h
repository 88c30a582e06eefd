#ifndef RESIDENCY_STORAGE_NODE_CEPH_CLUSTER_H_
#define RESIDENCY_STORAGE_NODE_CEPH_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rpc/process.h"

namespace residency::storage_node {

struct CephClusterOptions {
  // Work directory (created if missing): ceph.conf, the monitor's store, the
  // OSD's directory, run files (pid, admin sockets) and logs all live here.
  std::string dir;
  // The pool created for the object store.
  std::string pool = "residency";
  uint32_t pg_num = 8;
  // What the memstore OSD may hold (it keeps everything in memory).
  uint64_t memstore_bytes = uint64_t{1} << 30;
  // How long a client waits for an OSD or monitor before an operation
  // fails (ETIMEDOUT), written to the conf's [client] section.
  absl::Duration client_op_timeout = absl::Seconds(10);
  // Bound on the whole start-up.
  absl::Duration start_timeout = absl::Seconds(60);
};

// A throwaway single-host Ceph cluster from Debian's packages: one monitor
// and one memstore OSD on 127.0.0.1 (an ephemeral port), no manager, no
// systemd, cephx off, every file in `dir`. For tests, the simulator and
// benchmarks of the RADOS store: nothing here is fit for real data (the OSD
// keeps objects in memory and writes them to `dir` only on a clean stop).
//
// Start() returns once a test object can be written to the pool (health
// stays empty without a manager, so it is not waited on). The destructor
// stops the OSD before the monitor and reaps both; `dir` is left in place.
//
// Thread safety: none; one owner drives it.
class CephCluster {
 public:
  // Whether the Ceph daemons and tools are installed.
  static bool Installed();

  // FAILED_PRECONDITION when Ceph is not installed; UNAVAILABLE with the
  // daemons' logs when the cluster does not come up in time.
  static absl::StatusOr<std::unique_ptr<CephCluster>> Start(
      CephClusterOptions options);

  ~CephCluster();
  CephCluster(const CephCluster&) = delete;
  CephCluster& operator=(const CephCluster&) = delete;

  // The ceph.conf clients use (-c, rados_conf_read_file).
  const std::string& conf_path() const { return conf_path_; }
  const std::string& pool() const { return options_.pool; }
  // "127.0.0.1:PORT" of the monitor.
  std::string monitor_address() const;

  // Stops the OSD with SIGTERM (a clean stop: memstore saves what it holds
  // to the OSD directory) and waits for it to exit. Operations on the pool
  // then block until the client's op timeout.
  absl::Status StopOsd();
  // Starts the OSD again and waits until the pool takes a write.
  absl::Status StartOsd(absl::Duration timeout = absl::Seconds(60));
  bool osd_running();

  // The daemons' stderr and log files, for a failure message.
  std::string Logs() const;

 private:
  explicit CephCluster(CephClusterOptions options);

  absl::Status Run(const std::string& what, const std::string& binary,
                   const std::vector<std::string>& args,
                   absl::Duration timeout);
  absl::Status StartMonitor();
  absl::Status CreateOsd();
  absl::Status SpawnOsd();
  // Writes a small object until the pool takes it or `deadline` passes.
  absl::Status WaitForWrites(absl::Time deadline);

  const CephClusterOptions options_;
  std::string conf_path_;
  std::string fsid_;
  int port_ = 0;
  std::unique_ptr<process::ChildProcess> mon_;
  std::unique_ptr<process::ChildProcess> osd_;
};

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_CEPH_CLUSTER_H_
