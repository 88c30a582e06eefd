#include "rpc/server.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/health.h"

namespace residency::rpc {
namespace {

constexpr char kService[] = "residency.v1.Test";

// A server on loopback with nothing but health and reflection, and a
// channel to it. Plaintext: these tests are about the health state, which
// the services' own tests check over mTLS.
class ServingRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.credentials = grpc::InsecureServerCredentials();
    options.health_service_name = kService;
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  }

  // The named service's state, after checking that the whole server (the
  // empty name) reports the same.
  bool Serving() {
    absl::StatusOr<bool> named = IsServing(channel_, kService);
    absl::StatusOr<bool> whole = IsServing(channel_, /*service=*/"");
    EXPECT_TRUE(named.ok()) << named.status();
    EXPECT_TRUE(whole.ok()) << whole.status();
    EXPECT_EQ(named.value_or(false), whole.value_or(true));
    return named.value_or(false);
  }

  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ServingRelayTest, ReportsTheStateSetBeforeAndAfterAttaching) {
  ServingRelay relay;
  relay.SetServing(false);
  EXPECT_TRUE(Serving());  // not attached yet
  relay.Attach(server_.get());
  EXPECT_FALSE(Serving());
  relay.SetServing(true);
  EXPECT_TRUE(Serving());
  relay.SetServing(false);
  EXPECT_FALSE(Serving());
}

TEST_F(ServingRelayTest, ADetachedRelayNoLongerReports) {
  ServingRelay relay;
  relay.Attach(server_.get());
  relay.Attach(nullptr);
  relay.SetServing(false);
  EXPECT_TRUE(Serving());
}

}  // namespace
}  // namespace residency::rpc
