#ifndef RESIDENCY_TESTS_CEPH_TEST_CLUSTER_H_
#define RESIDENCY_TESTS_CEPH_TEST_CLUSTER_H_

// The Ceph cluster RADOS tests run against. Under CTest, the fixture
// "ceph_cluster" (storage_node/ceph_test_cluster_main.cc) has started one
// for the whole run in RESIDENCY_CEPH_TEST_DIR (a compile definition of the
// tests that need it). A test binary run by hand, with no such cluster
// running, starts its own for the process, stopped at exit.
//
// Tests keep apart by using a RADOS namespace of their own.

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "rpc/process.h"
#include "storage_node/ceph_cluster.h"

namespace residency::testing {

inline constexpr char kCephTestPool[] = "residency";

namespace internal {

// A cluster of this process's own, in a temporary directory removed after.
struct OwnCephCluster {
  std::string dir;
  std::unique_ptr<storage_node::CephCluster> cluster;
  ~OwnCephCluster() {
    cluster.reset();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace internal

// The ceph.conf of a running test cluster with pool kCephTestPool.
inline absl::StatusOr<std::string> TestCephConf() {
#ifdef RESIDENCY_CEPH_TEST_DIR
  {
    const std::string dir = RESIDENCY_CEPH_TEST_DIR;
    int pid = 0;
    if (std::filesystem::exists(dir + "/ready") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(
                             process::ReadFileOrEmpty(dir + "/holder.pid")),
                         &pid) &&
        pid > 0 && ::kill(pid, 0) == 0) {
      return dir + "/cluster/ceph.conf";
    }
  }
#endif
  static internal::OwnCephCluster* own = [] {
    auto* o = new internal::OwnCephCluster;
    std::string tmpl =
        std::filesystem::temp_directory_path().string() + "/ceph_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return o;
    o->dir = tmpl;
    storage_node::CephClusterOptions options;
    options.dir = o->dir;
    options.pool = kCephTestPool;
    absl::StatusOr<std::unique_ptr<storage_node::CephCluster>> started =
        storage_node::CephCluster::Start(options);
    if (started.ok()) o->cluster = *std::move(started);
    std::atexit([] { delete own; });
    return o;
  }();
  if (own->cluster == nullptr) {
    return absl::UnavailableError(
        "no Ceph test cluster: none runs for this CTest run and this "
        "process could not start one");
  }
  return own->cluster->conf_path();
}

}  // namespace residency::testing

#endif  // RESIDENCY_TESTS_CEPH_TEST_CLUSTER_H_
