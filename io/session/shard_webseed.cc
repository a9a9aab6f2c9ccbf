// A shard's web seeds (BEP 19): the torrent's engine on this shard takes their bytes like peer
// blocks; HTTP runs on an HttpFetcher's libcurl thread whose eventfd this shard's ring reads.
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "io/session/shard_internal.h"

namespace torrenty::io {

using engine::Instant;

void Shard::MaybeStartWebSeeds(SessionTorrent* t) {
  const engine::Metainfo& meta = *t->meta;
  if (!env_->web_seeds || meta.web_seeds.empty() ||
      static_cast<int>(t->id % static_cast<uint32_t>(env_->shards)) != index_) {
    return;
  }
  ShardTorrent* st = Instance(t);
  if (st->engine->done() || st->web != nullptr) return;
  if (web_fetcher_ == nullptr) {
    absl::StatusOr<std::unique_ptr<HttpFetcher>> f = HttpFetcher::Create();
    if (!f.ok()) {
      Log(t->id, absl::StrCat("web seeds off: ", f.status().message()));
      return;
    }
    web_fetcher_ = std::move(*f);
    ring_->Read(web_fetcher_->notify_fd(), &web_evt_, sizeof(web_evt_), 0, &web_c_);
  }
  engine::webseed::WebSeedConfig cfg;
  cfg.max_rate = env_->web_seed_max_rate;
  // Peers are on their way only when a tracker will name them (a fleet); a torrent with web
  // seeds alone fetches whole runs from the start.
  cfg.swarm_grace_ms = meta.trackers.empty() ? 0 : 3'000;
  absl::BitGen gen;
  cfg.seed = absl::Uniform<uint64_t>(gen);
  auto elsewhere = [t, me = index_] {
    int64_t sum = 0;
    for (int i = 0; i < t->shards; ++i) {
      if (i != me)
        sum += t->counters[static_cast<size_t>(i)].downloaded.load(std::memory_order_relaxed);
    }
    return sum;
  };
  st->web = std::make_unique<WebSeedDriver>(t->id, meta, st->engine.get(), web_fetcher_.get(), cfg,
                                            std::move(elsewhere));
  st->web_poll_at = now_;
}

void Shard::WebSeedLogs(ShardTorrent& st) {
  std::vector<std::string> lines;
  st.web->TakeLogs(&lines);
  for (std::string& l : lines) Log(st.t->id, std::move(l));
}

void Shard::PollWebSeeds(ShardTorrent& st) {
  st.web_poll_at = st.web->Poll(now_);
  WebSeedLogs(st);
  Drain(st);
}

void Shard::OnWebEvent(int32_t, uint32_t) {
  web_fetcher_->TakeResults(&web_results_);
  for (const HttpResult& r : web_results_) {
    auto it = instances_.find(WebSeedDriver::TorrentOf(r.id));
    if (it == instances_.end() || it->second->web == nullptr || it->second->draining) continue;
    ShardTorrent& st = *it->second;
    st.web->HandleResult(r, now_);
    WebSeedLogs(st);
    Drain(st);
    st.web_poll_at = now_;
  }
  web_results_.clear();
  if (!stopping_) {
    ring_->Read(web_fetcher_->notify_fd(), &web_evt_, sizeof(web_evt_), 0, &web_c_);
  }
}

}  // namespace torrenty::io
