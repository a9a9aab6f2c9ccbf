// Tracker HTTP(S) GETs on a dedicated libcurl thread, so a slow or dead tracker never blocks the
// ring thread. Results are handed back through an eventfd the ring thread watches.
//
// Every request goes through one curl multi handle, whose DNS cache and connection cache all its
// transfers share: a session should use one HttpFetcher for all its torrents, so a tracker host is
// resolved once per `dns_cache_timeout_s` and its keep-alive connections (or HTTP/2 streams) are
// reused across torrents instead of a new TCP and TLS handshake per announce.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace torrenty::io {

struct HttpResult {
  uint64_t id = 0;
  absl::StatusOr<std::string> body;
  // GetRange only: the final response's status (0 when none came), and its Content-Range and
  // Retry-After headers (empty when absent). `body` then holds the body whatever the status.
  int status = 0;
  std::string content_range;
  std::string retry_after;
};

class HttpFetcher {
 public:
  // Bodies larger than this are refused: no tracker response legitimately comes close.
  static constexpr size_t kMaxBodyBytes = 4 << 20;
  static constexpr long kMaxRedirects = 3;
  // Used when Get is given a non-positive timeout.
  static constexpr int kDefaultTimeoutMs = 30'000;

  struct Options {
    // Connections open at once to one host (scheme, host, port) and over all hosts. Requests
    // beyond them wait in curl's queue (their timeout runs meanwhile) and then reuse a connection.
    long max_host_connections = 4;
    long max_total_connections = 64;
    // How long all requests reuse a resolved name (libcurl's default is 60 s).
    long dns_cache_timeout_s = 300;
  };

  static absl::StatusOr<std::unique_ptr<HttpFetcher>> Create();
  static absl::StatusOr<std::unique_ptr<HttpFetcher>> Create(Options options);
  // Stops and joins the worker promptly; requests still in flight are abandoned without results.
  ~HttpFetcher();
  HttpFetcher(const HttpFetcher&) = delete;
  HttpFetcher& operator=(const HttpFetcher&) = delete;

  // Queues a GET of `url` (http or https only, also for redirects). Exactly one HttpResult with
  // this `id` follows: the 2xx body, or an error (DeadlineExceeded after `timeout_ms` for the
  // whole transfer, Unavailable with the status for non-2xx, ResourceExhausted for an oversized
  // body, Unavailable/InvalidArgument for transport errors). Thread-safe; never blocks.
  void Get(uint64_t id, std::string url, int timeout_ms);

  // Queues a GET of bytes [first, last] of `url` (web seeds, BEP 19). The result carries the
  // status and headers of the final response; its body is refused (ResourceExhausted) past
  // last - first + 1 bytes (64 KiB for an error page), so a server that ignores Range cannot
  // make us buffer a whole file. `max_recv_rate` (bytes/s, 0 = none) caps this transfer.
  // A transfer that moves less than 1 KiB/s for 30 s is abandoned (DeadlineExceeded).
  void GetRange(uint64_t id, std::string url, int64_t first, int64_t last, int timeout_ms,
                int64_t max_recv_rate);

  // An eventfd (EFD_NONBLOCK|EFD_CLOEXEC) that becomes readable when results are ready. Read its
  // 8-byte counter, then call TakeResults.
  int notify_fd() const { return event_fd_; }

  // Appends every finished result to `out`. Thread-safe.
  void TakeResults(std::vector<HttpResult>* out);

 private:
  struct Request {
    uint64_t id = 0;
    std::string url;
    int timeout_ms = 0;
    bool ranged = false;
    int64_t first = 0, last = 0;
    int64_t max_recv_rate = 0;
  };
  struct Transfer;

  HttpFetcher() = default;
  void Run();
  void Start(Request request);
  void Finish(Transfer* transfer, int curl_code);
  // Publishes a result and signals notify_fd.
  void Deliver(HttpResult result);
  // CURLOPT_WRITEFUNCTION; `user` is the Transfer.
  static size_t OnBodyData(char* data, size_t size, size_t nmemb, void* user);
  // CURLOPT_HEADERFUNCTION for ranged requests; `user` is the Transfer.
  static size_t OnHeader(char* data, size_t size, size_t nmemb, void* user);

  Options options_;
  int event_fd_ = -1;
  void* multi_ = nullptr;  // CURLM*, kept opaque so includers need no curl headers.
  std::thread thread_;

  // std::mutex rather than absl::Mutex so ThreadSanitizer sees the synchronisation.
  std::mutex mu_;
  bool stop_ = false;                // guarded by mu_
  std::vector<Request> pending_;     // guarded by mu_
  std::vector<HttpResult> results_;  // guarded by mu_

  // Worker-thread only.
  std::vector<std::unique_ptr<Transfer>> transfers_;
};

}  // namespace torrenty::io
