#include "io/webseed/web_seed_driver.h"

#include <utility>

namespace torrenty::io {

using engine::Instant;

namespace {

// Web seeds are asked again this often while they have work, so a piece a peer gave up or a
// server's backoff ending is picked up without a timer per event.
constexpr int64_t kPollMs = 200;
// A whole run (up to 4 MiB) within this, besides libcurl's 1 KiB/s-for-30 s stall rule.
constexpr int kRequestTimeoutMs = 600'000;

}  // namespace

class WebSeedDriver::Host final : public engine::webseed::WebSeedHost {
 public:
  Host(engine::Torrent* t, std::function<int64_t()> elsewhere)
      : t_(t), elsewhere_(std::move(elsewhere)) {}
  bool Fetchable(uint32_t piece) const override { return t_->WebSeedFetchable(piece); }
  uint32_t Availability(uint32_t piece) const override { return t_->Availability(piece); }
  int64_t PeerPayload() const override {
    return t_->stats().downloaded_payload - t_->stats().web_seed_payload +
           (elsewhere_ ? elsewhere_() : 0);
  }
  uint32_t Peers() const override { return t_->stats().peers_connected; }
  bool Start(uint32_t piece) override { return t_->StartWebSeedPiece(piece); }
  void Data(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data) override {
    t_->HandleWebSeedData(piece, begin, data);
  }
  void Cancel(uint32_t piece) override { t_->CancelWebSeedPiece(piece); }

 private:
  engine::Torrent* t_;
  std::function<int64_t()> elsewhere_;
};

WebSeedDriver::WebSeedDriver(uint32_t torrent_id, const engine::Metainfo& meta,
                             engine::Torrent* torrent, HttpFetcher* fetcher,
                             engine::webseed::WebSeedConfig config,
                             std::function<int64_t()> elsewhere)
    : torrent_id_(torrent_id),
      torrent_(torrent),
      fetcher_(fetcher),
      max_rate_(config.max_rate),
      host_(std::make_unique<Host>(torrent, std::move(elsewhere))),
      seeds_(meta, meta.web_seeds, config) {}

WebSeedDriver::~WebSeedDriver() = default;

Instant WebSeedDriver::Poll(Instant now) {
  if (torrent_->done() || !seeds_.active()) return Instant{INT64_MAX};
  requests_.clear();
  seeds_.Poll(now, *host_, &requests_);
  for (engine::webseed::RangeRequest& r : requests_) {
    fetcher_->GetRange((uint64_t{torrent_id_} << kIdShift) | r.id, std::move(r.url), r.first,
                       r.last, kRequestTimeoutMs, max_rate_);
  }
  return Instant{now.ms + kPollMs};
}

void WebSeedDriver::HandleResult(const HttpResult& result, Instant now) {
  engine::webseed::RangeResponse response;
  if (!result.body.ok()) {
    response.error = std::string(result.body.status().message());
  } else if (result.status == 0) {
    response.error = "no HTTP response";
  } else {
    response.status = result.status;
    response.content_range = result.content_range;
    response.retry_after = result.retry_after;
    response.body = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(result.body->data()),
                                        result.body->size());
  }
  seeds_.HandleResponse(result.id & ((uint64_t{1} << kIdShift) - 1), response, now, *host_);
}

void WebSeedDriver::HandlePieceHashed(uint32_t piece, bool ok, Instant now) {
  seeds_.HandlePieceHashed(piece, ok, now, *host_);
}

}  // namespace torrenty::io
