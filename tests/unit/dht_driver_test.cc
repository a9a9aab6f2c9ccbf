// io::DhtDriver: two session nodes on one ring over real loopback UDP find each other, a lookup
// returns what the other node stored, and the state file brings our id and nodes back.
#include "io/dht/dht_driver.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "io/ring/ring.h"

namespace torrenty::io {
namespace {

using engine::Instant;

Instant Now() {
  using namespace std::chrono;
  return Instant{duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count()};
}

class DhtDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Ring>> r = Ring::Create(256);
    ASSERT_TRUE(r.ok()) << r.status();
    ring_ = std::move(*r);
    dir_ = std::filesystem::temp_directory_path() / ("dht_driver_test." + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    // The drivers' operations point into them: the ring goes first.
    ring_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Runs the ring until `done` or 10 s.
  template <typename Fn>
  bool RunUntil(Fn done, std::vector<DhtDriver*> drivers) {
    const Instant end{Now().ms + 10'000};
    while (Now() < end) {
      if (done()) return true;
      (void)ring_->RunOnce(20);
      for (DhtDriver* d : drivers) d->Tick(Now());
    }
    return done();
  }

  std::unique_ptr<Ring> ring_;
  std::filesystem::path dir_;
};

TEST_F(DhtDriverTest, TwoNodesMeetAnnounceAndKeepState) {
  std::vector<engine::PeerAddress> found;
  DhtDriver::Options ob;
  ob.on_peers = [&](const engine::InfoHash&, const std::vector<engine::PeerAddress>& p) {
    found.insert(found.end(), p.begin(), p.end());
  };
  absl::StatusOr<std::unique_ptr<DhtDriver>> b = DhtDriver::Create(ring_.get(), ob, Now());
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_NE((*b)->port(), 0);

  DhtDriver::Options oa;
  oa.bootstrap = {"127.0.0.1:" + std::to_string((*b)->port())};
  oa.state_file = (dir_ / "sub" / "dht.dat").string();
  absl::StatusOr<std::unique_ptr<DhtDriver>> a = DhtDriver::Create(ring_.get(), oa, Now());
  ASSERT_TRUE(a.ok()) << a.status();
  std::vector<DhtDriver*> both = {a->get(), b->get()};
  ASSERT_TRUE(RunUntil([&] { return (*a)->nodes() >= 1 && (*b)->nodes() >= 1; }, both));

  // b announces to a; b's next lookup gets its own address back from a.
  engine::InfoHash ih{};
  ih[0] = 0xAB;
  ASSERT_TRUE((*b)->GetPeers(ih, 51413, Now()));
  ASSERT_TRUE(RunUntil([&] { return (*a)->node().stored_peers() == 1; }, both));
  ASSERT_TRUE((*b)->GetPeers(ih, 0, Now()));
  ASSERT_TRUE(RunUntil([&] { return !found.empty(); }, both));
  EXPECT_EQ(found[0], (engine::PeerAddress{0x7F000001, 51413}));

  // The state file (its folder made on the way) brings a's id back, and a pings the node it kept.
  ASSERT_TRUE((*a)->Save(Now()).ok());
  absl::StatusOr<std::unique_ptr<Ring>> ring2 = Ring::Create(16);
  ASSERT_TRUE(ring2.ok());
  absl::StatusOr<std::unique_ptr<DhtDriver>> again = DhtDriver::Create(ring2->get(), oa, Now());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->node().id(), (*a)->node().id());
  EXPECT_GE((*again)->node().stats().queries_out, 2u);  // a ping to b, a find_node to b
  ring2->reset();
}

// BEP 32 over the dual-stack socket: a node bootstrapped from [::1]:PORT keeps it in its IPv6
// table, finds what the other stored over IPv6, and saves it in nodes6.
TEST_F(DhtDriverTest, NodesMeetOverIpv6AndKeepThemInNodes6) {
  std::vector<engine::PeerAddress> found;
  DhtDriver::Options ob;
  ob.on_peers = [&](const engine::InfoHash&, const std::vector<engine::PeerAddress>& p) {
    found.insert(found.end(), p.begin(), p.end());
  };
  absl::StatusOr<std::unique_ptr<DhtDriver>> b = DhtDriver::Create(ring_.get(), ob, Now());
  ASSERT_TRUE(b.ok()) << b.status();
  if (!(*b)->ipv6()) GTEST_SKIP() << "no IPv6 in this kernel";
  DhtDriver::Options oa;
  oa.bootstrap = {"[::1]:" + std::to_string((*b)->port())};
  oa.state_file = (dir_ / "dht6.dat").string();
  absl::StatusOr<std::unique_ptr<DhtDriver>> a = DhtDriver::Create(ring_.get(), oa, Now());
  ASSERT_TRUE(a.ok()) << a.status();
  std::vector<DhtDriver*> both = {a->get(), b->get()};
  ASSERT_TRUE(RunUntil(
      [&] { return (*a)->node().table6().size() >= 1 && (*b)->node().table6().size() >= 1; },
      both));
  EXPECT_EQ((*a)->node().table().size(), 0u);

  engine::InfoHash ih{};
  ih[0] = 0x66;
  ASSERT_TRUE((*b)->GetPeers(ih, 51413, Now()));
  ASSERT_TRUE(RunUntil([&] { return (*a)->node().stored_peers() == 1; }, both));
  ASSERT_TRUE((*b)->GetPeers(ih, 0, Now()));
  ASSERT_TRUE(RunUntil([&] { return !found.empty(); }, both));
  std::array<uint8_t, 16> loopback{};
  loopback[15] = 1;
  EXPECT_EQ(found[0], engine::PeerAddress::V6(loopback, 51413));

  ASSERT_TRUE((*a)->Save(Now()).ok());
  absl::StatusOr<std::unique_ptr<Ring>> ring2 = Ring::Create(16);
  ASSERT_TRUE(ring2.ok());
  DhtDriver::Options again_opts;
  again_opts.state_file = oa.state_file;  // no bootstrap: only the saved IPv6 node
  absl::StatusOr<std::unique_ptr<DhtDriver>> again =
      DhtDriver::Create(ring2->get(), again_opts, Now());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->node().id(), (*a)->node().id());
  EXPECT_EQ((*again)->node().stats().queries_out, 1u);  // a ping to b's [::1] address
  ring2->reset();
}

}  // namespace
}  // namespace torrenty::io
