// Fuzzes the RPC server's HTTP/1.1 request parser. The stream is parsed once as a whole and once
// in chunks whose sizes come from the input's first bytes, as it would arrive from a socket,
// request after request (pipelining). Both runs must agree on every request and on the error, and
// every result must respect the limits: no body over max_body_bytes, no more headers than
// max_headers, only the documented error statuses, never more consumed than fed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/rpc/http_request.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace http = torrenty::engine::http;

constexpr size_t kHeaderSize = 4;

struct Outcome {
  bool error = false;
  int status = 0;
  std::string method, target, body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = false;
  bool operator==(const Outcome&) const = default;
};

http::Limits MakeLimits(uint8_t b) {
  http::Limits l;
  l.max_header_bytes = 64 + (b & 0x0f) * 64;
  l.max_headers = 1 + ((b >> 4) & 0x0f);
  l.max_body_bytes = (b & 0x80) ? 16 : 4096;
  return l;
}

void CheckRequest(const http::Request& r, const http::Limits& limits) {
  FUZZ_CHECK(r.body.size() <= limits.max_body_bytes);
  FUZZ_CHECK(r.headers.size() <= limits.max_headers);
  FUZZ_CHECK(!r.method.empty() && !r.target.empty());
  FUZZ_CHECK(r.version_minor == 0 || r.version_minor == 1);
  for (const auto& [name, value] : r.headers) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
    FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos);
  }
}

std::vector<Outcome> Parse(std::string_view stream, const uint8_t* chunks, size_t nchunks,
                           const http::Limits& limits) {
  std::vector<Outcome> out;
  http::RequestParser parser(limits);
  size_t off = 0, chunk_index = 0;
  std::string_view pending;
  while (off < stream.size() || !pending.empty()) {
    if (pending.empty()) {
      size_t n = nchunks == 0 ? stream.size() : 1 + chunks[chunk_index++ % nchunks];
      n = std::min(n, stream.size() - off);
      pending = stream.substr(off, n);
      off += n;
    }
    size_t used = 0;
    const http::ParseStatus st = parser.Feed(pending, &used);
    FUZZ_CHECK(used <= pending.size());
    pending.remove_prefix(used);
    if (st == http::ParseStatus::kNeedMore) {
      FUZZ_CHECK(pending.empty());
      continue;
    }
    Outcome o;
    if (st == http::ParseStatus::kError) {
      o.error = true;
      o.status = parser.error_status();
      FUZZ_CHECK(o.status == 400 || o.status == 413 || o.status == 417 || o.status == 431 ||
                 o.status == 501 || o.status == 505);
      out.push_back(o);
      // The connection is closed after an error.
      size_t again = 0;
      FUZZ_CHECK(parser.Feed("x", &again) == http::ParseStatus::kError && again == 0);
      return out;
    }
    const http::Request& r = parser.request();
    CheckRequest(r, limits);
    o.method = r.method;
    o.target = r.target;
    o.body = r.body;
    o.headers = r.headers;
    o.keep_alive = r.keep_alive;
    out.push_back(o);
    parser.Reset();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kHeaderSize) return 0;
  const http::Limits limits = MakeLimits(data[0]);
  const std::string_view stream(reinterpret_cast<const char*>(data + kHeaderSize),
                                size - kHeaderSize);
  const std::vector<Outcome> whole = Parse(stream, nullptr, 0, limits);
  const std::vector<Outcome> chunked = Parse(stream, data + 1, kHeaderSize - 1, limits);
  FUZZ_CHECK(whole == chunked);

  // The response writer never emits a header line with CR or LF inside it.
  const std::string resp = http::WriteResponse(
      200 + (data[1] % 400), {{"X-Test", std::string(stream.substr(0, 32))}}, stream, data[2] & 1);
  const size_t end = resp.find("\r\n\r\n");
  FUZZ_CHECK(end != std::string::npos);
  FUZZ_CHECK(resp.compare(end + 4, std::string::npos, stream.data(), stream.size()) == 0);
  return 0;
}
