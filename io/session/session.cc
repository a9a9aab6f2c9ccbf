#include "io/session/session.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "absl/random/random.h"
#include "engine/base/peer_id.h"

namespace torrenty::io {
namespace {
// The hash pool wakes its clients through a 64-bit mask.
constexpr int kShardsMax = 64;
// A scrape waits this long for the coordinator's torrent counts before using the last ones.
constexpr auto kMetricsCallTimeout = std::chrono::seconds(2);
}  // namespace

Session::Session(SessionConfig config) : config_(std::move(config)) {}

Session::~Session() {
  // Hash workers may still hold spans into the shards' piece buffers: stop them first.
  hash_pool_.reset();
  // Shards before the coordinator: their engines and disk queues point into the torrents'
  // SessionTorrent (files, claims), which the coordinator owns.
  shards_.clear();
  coordinator_.reset();
}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(SessionConfig config) {
  std::unique_ptr<Session> s(new Session(std::move(config)));
  int threads = s->config_.threads;
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, kShardsMax);
  absl::StatusOr<std::unique_ptr<HashPool>> pool = HashPool::Create(s->config_.hash_threads);
  if (!pool.ok()) return pool.status();
  s->hash_pool_ = std::move(*pool);
  // Receive buffers get their share of --piece-memory up front, so that the piece buffers,
  // which would otherwise fill the whole budget, and the buffers of busy peers together stay
  // within it.
  const int64_t receive_share = ReceiveBufferBudget::ShareOf(s->config_.piece_memory_bytes);
  s->receive_budget_ = std::make_unique<ReceiveBufferBudget>(receive_share);
  s->piece_memory_ =
      std::make_unique<SharedPieceMemory>(s->config_.piece_memory_bytes - receive_share);

  ShardEnv& env = s->shard_env_;
  env.shards = threads;
  env.hash_pool = s->hash_pool_.get();
  env.piece_memory = s->piece_memory_.get();
  env.receive_budget = s->receive_budget_.get();
  env.log_verbose = s->config_.verbosity == Verbosity::kVerbose;
  env.port = s->config_.port;
  env.port_explicit = s->config_.port_explicit;
  env.bind_address = s->config_.bind_address;
  env.bind_given = s->config_.bind_given;
  env.max_open_files = s->config_.max_open_files;
  env.web_seeds = s->config_.web_seeds;
  env.web_seed_max_rate = s->config_.web_seed_max_rate;
  for (int i = 0; i < threads; ++i) s->shards_.push_back(std::make_unique<Shard>(i, &env));
  for (auto& shard : s->shards_) env.inboxes.push_back(&shard->inbox());

  CoordinatorEnv cenv;
  cenv.config = &s->config_;
  cenv.shards = threads;
  cenv.inboxes = env.inboxes;
  cenv.piece_memory = s->piece_memory_.get();
  absl::BitGen gen;
  cenv.self_id = engine::MakePeerId(absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
  s->coordinator_ = std::make_unique<Coordinator>(cenv);
  env.coordinator = &s->coordinator_->inbox();
  // Shard 0 first: it picks the port the other shards then share.
  for (auto& shard : s->shards_) {
    if (absl::Status st = shard->Init(); !st.ok()) return st;
  }
  s->coordinator_->set_port(env.port);
  if (absl::Status st = s->coordinator_->Init(); !st.ok()) return st;
  return s;
}

absl::StatusOr<TorrentId> Session::AddTorrent(AddTorrentParams params) {
  return coordinator_->Add(std::move(params));
}

absl::Status Session::Run() {
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(shards_.size());
  for (size_t i = 0; i < shards_.size(); ++i) {
    threads.emplace_back([this, i, &results] { results[i] = shards_[i]->Loop(); });
  }
  running_.store(true);
  absl::Status st = coordinator_->Loop();
  running_.store(false);
  if (!st.ok()) {
    // The coordinator may have failed before its stop reached the shards: the joins below must
    // not wait forever.
    for (auto& shard : shards_) {
      ShardMessage m;
      m.type = ShardMessage::Type::kStop;
      shard->inbox().Post(std::move(m));
    }
  }
  for (std::thread& t : threads) t.join();
  for (absl::Status& r : results) {
    if (st.ok() && !r.ok()) st = r;
  }
  absl::Status finish = coordinator_->Finish();
  return st.ok() ? finish : st;
}

void Session::RequestStop() {
  CoordinatorMessage m;
  m.type = CoordinatorMessage::Type::kRequestStop;
  coordinator_->inbox().Post(std::move(m));
}

void Session::Call(std::function<void(Coordinator&)> fn) {
  CoordinatorMessage m;
  m.type = CoordinatorMessage::Type::kCall;
  Coordinator* c = coordinator_.get();
  m.call = [c, fn = std::move(fn)] { fn(*c); };
  coordinator_->inbox().Post(std::move(m));
}

absl::StatusOr<std::string> Session::Metrics() {
  if (running_.load()) {
    auto counted = std::make_shared<std::promise<void>>();
    std::future<void> done = counted->get_future();
    Call([counted](Coordinator& c) {
      c.CountTorrents();
      counted->set_value();
    });
    done.wait_for(kMetricsCallTimeout);
  }
  std::vector<const metrics::ShardInstruments*> shards;
  shards.reserve(shards_.size());
  for (const auto& shard : shards_) shards.push_back(&shard->metrics());
  return metrics::ScrapeSessionMetrics(shards, coordinator_->metrics());
}

void Session::BlockStopSignals(bool reload) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (reload) sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
}

}  // namespace torrenty::io
