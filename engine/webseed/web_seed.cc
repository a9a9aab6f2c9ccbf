#include "engine/webseed/web_seed.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace torrenty::engine::webseed {
namespace {

constexpr int64_t kNumberMax = int64_t{1} << 62;

// Digits only, no sign or spaces, at most kNumberMax.
std::optional<int64_t> ParseDecimal(absl::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
    if (v > kNumberMax) return std::nullopt;
  }
  return v;
}

// Pad-file bytes are zeros the server need not be asked for.
constexpr std::array<uint8_t, 16 * 1024> kZeros{};

}  // namespace

std::optional<ContentRange> ParseContentRange(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (!absl::ConsumePrefix(&value, "bytes ")) return std::nullopt;
  value = absl::StripLeadingAsciiWhitespace(value);
  const size_t dash = value.find('-');
  const size_t slash = value.find('/');
  if (dash == absl::string_view::npos || slash == absl::string_view::npos || slash < dash) {
    return std::nullopt;
  }
  std::optional<int64_t> first = ParseDecimal(value.substr(0, dash));
  std::optional<int64_t> last = ParseDecimal(value.substr(dash + 1, slash - dash - 1));
  if (!first || !last || *first > *last) return std::nullopt;
  ContentRange r{*first, *last, -1};
  const absl::string_view total = value.substr(slash + 1);
  if (total != "*") {
    std::optional<int64_t> t = ParseDecimal(total);
    if (!t || *last >= *t) return std::nullopt;
    r.total = *t;
  }
  return r;
}

std::optional<int64_t> ParseRetryAfter(absl::string_view value) {
  return ParseDecimal(absl::StripAsciiWhitespace(value));
}

std::string PercentEncode(absl::string_view component) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(component.size());
  for (unsigned char c : component) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string FileUrl(absl::string_view base, const Metainfo& meta, size_t file_index) {
  const bool slash = !base.empty() && base.back() == '/';
  if (!meta.multi_file) {
    return slash ? absl::StrCat(base, PercentEncode(meta.name)) : std::string(base);
  }
  std::string url = absl::StrCat(base, slash ? "" : "/", PercentEncode(meta.name));
  for (const std::string& c : meta.files[file_index].path) {
    absl::StrAppend(&url, "/", PercentEncode(c));
  }
  return url;
}

WebSeeds::WebSeeds(const Metainfo& meta, std::vector<std::string> urls, WebSeedConfig config)
    : meta_(meta), config_(config), file_map_(meta) {
  for (std::string& u : urls) {
    // Only HTTP(S): a torrent is untrusted, and ftp:// or file:// mirrors are not ours to open.
    const std::string lower = absl::AsciiStrToLower(u.substr(0, 8));
    if (!absl::StartsWith(lower, "http://") && !absl::StartsWith(lower, "https://")) continue;
    Seed s;
    s.url = std::move(u);
    seeds_.push_back(std::move(s));
  }
  if (meta.num_pieces() > 0) {
    cursor_ =
        static_cast<uint32_t>((config_.seed * 0x9E3779B97F4A7C15ull >> 17) % meta.num_pieces());
  }
}

bool WebSeeds::active() const {
  return std::any_of(seeds_.begin(), seeds_.end(), [](const Seed& s) { return !s.dropped; });
}

void WebSeeds::TakeLogs(std::vector<std::string>* out) {
  for (std::string& l : logs_) out->push_back(std::move(l));
  logs_.clear();
}

void WebSeeds::Refill(Instant now) {
  if (config_.max_rate <= 0) return;
  if (refilled_at_.ms == INT64_MIN / 2) refilled_at_ = now;
  const double burst = static_cast<double>(config_.max_rate);
  tokens_ = std::min(burst, tokens_ + static_cast<double>(now.ms - refilled_at_.ms) *
                                          static_cast<double>(config_.max_rate) / 1000.0);
  refilled_at_ = now;
}

bool WebSeeds::Eligible(uint32_t piece, bool peers_delivering, const WebSeedHost& host) const {
  if (!host.Fetchable(piece)) return false;
  return !peers_delivering || host.Availability(piece) == 0;
}

void WebSeeds::Poll(Instant now, WebSeedHost& host, std::vector<RangeRequest>* out) {
  if (meta_.num_pieces() == 0) return;
  const int64_t peer_payload = host.PeerPayload();
  if (peer_payload != peer_payload_seen_) {
    peer_payload_seen_ = peer_payload;
    peer_payload_at_ = now;
  }
  const bool peers_delivering = now.ms - peer_payload_at_.ms < config_.peer_stall_ms;
  if (first_poll_.ms == INT64_MIN / 2) first_poll_ = now;
  const bool in_swarm = host.Peers() > 0 || now.ms - first_poll_.ms < config_.swarm_grace_ms;
  Refill(now);
  bool more = true;
  while (more) {
    more = false;
    // One run per server per round, so several servers share the work.
    for (size_t i = 0; i < seeds_.size(); ++i) {
      Seed& s = seeds_[i];
      if (s.dropped || now < s.retry_at || s.runs >= config_.connections_per_seed) continue;
      // After a failure a single request probes the server before the others follow.
      if (s.failures > 0 && s.runs > 0) continue;
      if (config_.max_rate > 0 && tokens_ < 0) return;
      if (in_swarm && runs_.size() >= config_.swarm_requests) return;
      if (!StartRun(i, now, host, peers_delivering, in_swarm, out)) return;
      more = true;
    }
  }
}

bool WebSeeds::StartRun(size_t seed_index, Instant /*now*/, WebSeedHost& host,
                        bool peers_delivering, bool in_swarm, std::vector<RangeRequest>* out) {
  const uint32_t n = meta_.num_pieces();
  uint32_t first = n;
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t p = (cursor_ + k) % n;
    if (Eligible(p, peers_delivering, host)) {
      first = p;
      break;
    }
  }
  if (first == n || !host.Start(first)) return false;
  int64_t limit = in_swarm ? meta_.piece_length
                           : std::max<int64_t>(config_.request_bytes_max, meta_.piece_length);
  // Under a rate cap a run is at most about a second of it, so the cap holds on average.
  if (config_.max_rate > 0) limit = std::min(limit, std::max(config_.max_rate, meta_.piece_length));
  uint32_t last = first;
  int64_t bytes = meta_.PieceSize(first);
  while (last + 1 < n && bytes + meta_.PieceSize(last + 1) <= limit &&
         Eligible(last + 1, peers_delivering, host) && host.Start(last + 1)) {
    ++last;
    bytes += meta_.PieceSize(last);
  }
  cursor_ = (last + 1) % n;
  tokens_ -= static_cast<double>(bytes);

  const uint64_t run_id = next_id_++;
  Run& run = runs_[run_id];
  run.seed = seed_index;
  run.first_piece = first;
  run.last_piece = last;
  for (uint32_t p = first; p <= last; ++p) run.piece_left.push_back(meta_.PieceSize(p));
  ++seeds_[seed_index].runs;

  const int64_t offset = static_cast<int64_t>(first) * meta_.piece_length;
  slices_.clear();
  file_map_.Map(offset, bytes, &slices_);
  std::vector<FileSlice> slices;
  slices.swap(slices_);
  for (const FileSlice& sl : slices) {
    if (!sl.pad) ++run.requests_left;
  }
  for (const FileSlice& sl : slices) {
    const int64_t at = offset + sl.range_offset;
    if (sl.pad) {
      for (int64_t done = 0; done < sl.length;) {
        const int64_t len = std::min<int64_t>(sl.length - done, kZeros.size());
        Deliver(run, at + done, absl::MakeConstSpan(kZeros.data(), static_cast<size_t>(len)), host);
        done += len;
      }
      continue;
    }
    const uint64_t id = next_id_++;
    requests_[id] = Request{run_id, at, sl.file_offset, sl.file_offset + sl.length - 1};
    out->push_back(RangeRequest{id, seed_index,
                                FileUrl(seeds_[seed_index].url, meta_, sl.file_index),
                                sl.file_offset, sl.file_offset + sl.length - 1});
  }
  if (run.requests_left == 0) {  // nothing but pad
    --seeds_[seed_index].runs;
    runs_.erase(run_id);
  }
  return true;
}

void WebSeeds::Deliver(Run& run, int64_t torrent_offset, absl::Span<const uint8_t> data,
                       WebSeedHost& host) {
  while (!data.empty()) {
    const uint32_t piece = static_cast<uint32_t>(torrent_offset / meta_.piece_length);
    const int64_t begin = torrent_offset - static_cast<int64_t>(piece) * meta_.piece_length;
    const int64_t len =
        std::min<int64_t>(static_cast<int64_t>(data.size()), meta_.PieceSize(piece) - begin);
    int64_t& left = run.piece_left[piece - run.first_piece];
    host.Data(piece, static_cast<uint32_t>(begin), data.first(static_cast<size_t>(len)));
    left -= len;
    if (left == 0) hashing_[piece] = run.seed;
    data.remove_prefix(static_cast<size_t>(len));
    torrent_offset += len;
  }
}

void WebSeeds::FailRun(uint64_t run_id, WebSeedHost& host) {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return;
  Run& run = it->second;
  for (uint32_t p = run.first_piece; p <= run.last_piece; ++p) {
    if (run.piece_left[p - run.first_piece] != 0) host.Cancel(p);
  }
  --seeds_[run.seed].runs;
  absl::erase_if(requests_, [run_id](const auto& kv) { return kv.second.run == run_id; });
  runs_.erase(it);
}

void WebSeeds::Backoff(Seed& seed, Instant now, std::optional<int64_t> retry_after_s,
                       absl::string_view why) {
  ++seed.failures;
  int64_t wait = config_.backoff_base_ms << std::min<uint32_t>(seed.failures - 1, 20);
  wait = std::min(wait, config_.backoff_max_ms);
  if (retry_after_s.has_value()) {
    wait = std::clamp(*retry_after_s * 1000, config_.backoff_base_ms, config_.retry_after_max_ms);
  }
  seed.retry_at = Instant{now.ms + wait};
  logs_.push_back(absl::StrCat("web seed ", seed.url, ": ", why, "; retrying in ", wait, " ms"));
}

void WebSeeds::Drop(size_t seed_index, WebSeedHost& host, absl::string_view why) {
  Seed& s = seeds_[seed_index];
  if (s.dropped) return;
  s.dropped = true;
  std::vector<uint64_t> ids;
  for (const auto& [id, run] : runs_)
    if (run.seed == seed_index) ids.push_back(id);
  for (uint64_t id : ids) FailRun(id, host);
  logs_.push_back(absl::StrCat("web seed ", s.url, " dropped: ", why));
}

void WebSeeds::HandleResponse(uint64_t id, const RangeResponse& r, Instant now, WebSeedHost& host) {
  auto rq = requests_.find(id);
  if (rq == requests_.end()) return;
  const Request req = rq->second;
  requests_.erase(rq);
  auto rit = runs_.find(req.run);
  if (rit == runs_.end()) return;
  Run& run = rit->second;
  Seed& seed = seeds_[run.seed];
  const int64_t want = req.last - req.first + 1;

  std::string why;
  std::optional<int64_t> retry_after;
  if (!r.error.empty()) {
    why = r.error;
  } else if (r.status == 206) {
    std::optional<ContentRange> cr = ParseContentRange(r.content_range);
    if (!cr.has_value() || cr->first != req.first || cr->last != req.last) {
      why = absl::StrCat("Content-Range \"", r.content_range.substr(0, 80), "\" is not bytes ",
                         req.first, "-", req.last);
    }
  } else if (r.status == 200) {
    // A server that ignores Range sends the whole file: only usable when that is what we asked.
    if (req.first != 0) why = "server ignores Range (200 for a partial request)";
  } else {
    why = absl::StrCat("HTTP status ", r.status);
    if (r.status == 503) retry_after = ParseRetryAfter(r.retry_after);
  }
  if (why.empty() && static_cast<int64_t>(r.body.size()) != want) {
    why = absl::StrCat("body of ", r.body.size(), " bytes for a range of ", want);
  }
  if (!why.empty()) {
    FailRun(req.run, host);
    Backoff(seed, now, retry_after, why);
    return;
  }
  seed.failures = 0;
  bytes_received_ += want;
  Deliver(run, req.torrent_offset, r.body, host);
  if (--run.requests_left == 0) {
    --seed.runs;
    runs_.erase(rit);
  }
}

void WebSeeds::HandlePieceHashed(uint32_t piece, bool ok, Instant /*now*/, WebSeedHost& host) {
  auto it = hashing_.find(piece);
  if (it == hashing_.end()) return;
  const size_t seed_index = it->second;
  hashing_.erase(it);
  if (ok) return;
  Seed& s = seeds_[seed_index];
  ++s.bad_pieces;
  logs_.push_back(absl::StrCat("web seed ", s.url, ": piece ", piece, " failed its hash check (",
                               s.bad_pieces, " of ", config_.bad_pieces_max, ")"));
  if (s.bad_pieces >= config_.bad_pieces_max) {
    Drop(seed_index, host, absl::StrCat(s.bad_pieces, " pieces failed their hash check"));
  }
}

}  // namespace torrenty::engine::webseed
