// HttpFetcher: one worker thread driving a libcurl multi handle; see http_fetcher.h.
#include "io/tracker/http_fetcher.h"

#include <curl/curl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace torrenty::io {
namespace {

CURLM* Multi(void* p) { return static_cast<CURLM*>(p); }

absl::Status GlobalInit() {
  // curl_global_init is not thread-safe and must run once per process.
  static std::once_flag once;
  static CURLcode code = CURLE_OK;
  std::call_once(once, [] { code = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (code != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(code)));
  }
  return absl::OkStatus();
}

}  // namespace

struct HttpFetcher::Transfer {
  uint64_t id = 0;
  CURL* easy = nullptr;
  std::string body;
  size_t max_body = kMaxBodyBytes;
  bool ranged = false;
  std::string content_range;
  std::string retry_after;
  bool too_large = false;
  char error[CURL_ERROR_SIZE] = {};
};

size_t HttpFetcher::OnBodyData(char* data, size_t size, size_t nmemb, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  if (n > transfer->max_body - transfer->body.size()) {
    // Returning a short count makes curl abort the transfer with CURLE_WRITE_ERROR.
    transfer->too_large = true;
    return 0;
  }
  transfer->body.append(data, n);
  return n;
}

size_t HttpFetcher::OnHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  absl::string_view line(data, n);
  // Each response of a redirect chain starts with its status line: keep only the last one's.
  if (absl::StartsWith(line, "HTTP/")) {
    transfer->content_range.clear();
    transfer->retry_after.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return n;
  const absl::string_view name = line.substr(0, colon);
  const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  // Bounded: a header value is untrusted.
  if (absl::EqualsIgnoreCase(name, "content-range")) {
    transfer->content_range = std::string(value.substr(0, 256));
  } else if (absl::EqualsIgnoreCase(name, "retry-after")) {
    transfer->retry_after = std::string(value.substr(0, 64));
  }
  return n;
}

absl::StatusOr<std::unique_ptr<HttpFetcher>> HttpFetcher::Create() { return Create(Options{}); }

absl::StatusOr<std::unique_ptr<HttpFetcher>> HttpFetcher::Create(Options options) {
  if (absl::Status s = GlobalInit(); !s.ok()) return s;
  std::unique_ptr<HttpFetcher> fetcher(new HttpFetcher());
  fetcher->options_ = options;
  fetcher->event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fetcher->event_fd_ < 0) return absl::ErrnoToStatus(errno, "eventfd");
  fetcher->multi_ = curl_multi_init();
  if (fetcher->multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
  CURLMcode mrc = CURLM_OK;
  auto set = [&](CURLMoption option, long value) {
    if (mrc == CURLM_OK) mrc = curl_multi_setopt(Multi(fetcher->multi_), option, value);
  };
  set(CURLMOPT_MAX_HOST_CONNECTIONS, std::max(options.max_host_connections, 1L));
  set(CURLMOPT_MAX_TOTAL_CONNECTIONS, std::max(options.max_total_connections, 1L));
  // Idle connections kept for reuse: as many as may be open.
  set(CURLMOPT_MAXCONNECTS, std::max(options.max_total_connections, 1L));
  if (mrc != CURLM_OK) {
    return absl::InternalError(absl::StrCat("curl_multi_setopt: ", curl_multi_strerror(mrc)));
  }
  fetcher->thread_ = std::thread([f = fetcher.get()] { f->Run(); });
  return fetcher;
}

HttpFetcher::~HttpFetcher() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    curl_multi_wakeup(Multi(multi_));
    thread_.join();
  }
  if (multi_ != nullptr) curl_multi_cleanup(Multi(multi_));
  if (event_fd_ >= 0) close(event_fd_);
}

void HttpFetcher::Get(uint64_t id, std::string url, int timeout_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(Request{id, std::move(url), timeout_ms});
  }
  // Interrupts curl_multi_poll in the worker; safe from any thread.
  curl_multi_wakeup(Multi(multi_));
}

void HttpFetcher::GetRange(uint64_t id, std::string url, int64_t first, int64_t last,
                           int timeout_ms, int64_t max_recv_rate) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(Request{id, std::move(url), timeout_ms, true, first, last, max_recv_rate});
  }
  curl_multi_wakeup(Multi(multi_));
}

void HttpFetcher::TakeResults(std::vector<HttpResult>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (HttpResult& r : results_) out->push_back(std::move(r));
  results_.clear();
}

void HttpFetcher::Run() {
  while (true) {
    std::vector<Request> incoming;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      incoming.swap(pending_);
    }
    for (Request& r : incoming) Start(std::move(r));

    int running = 0;
    curl_multi_perform(Multi(multi_), &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(Multi(multi_), &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      // `msg` dies with the handle's removal, so copy what we need first.
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      Transfer* transfer = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &transfer);
      Finish(transfer, code);
    }
    // Sleeps until socket activity, a curl timer, or Get/~HttpFetcher's wakeup.
    curl_multi_poll(Multi(multi_), nullptr, 0, 1000, nullptr);
  }
  for (std::unique_ptr<Transfer>& t : transfers_) {
    curl_multi_remove_handle(Multi(multi_), t->easy);
    curl_easy_cleanup(t->easy);
  }
  transfers_.clear();
}

void HttpFetcher::Start(Request request) {
  auto transfer = std::make_unique<Transfer>();
  transfer->id = request.id;
  CURL* easy = curl_easy_init();
  auto fail = [&](absl::Status status) {
    if (easy != nullptr) curl_easy_cleanup(easy);
    HttpResult result;
    result.id = request.id;
    result.body = std::move(status);
    Deliver(std::move(result));
  };
  if (easy == nullptr) return fail(absl::InternalError("curl_easy_init failed"));
  transfer->easy = easy;
  const long timeout_ms = request.timeout_ms > 0 ? request.timeout_ms : kDefaultTimeoutMs;
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(easy, option, value);
  };
  set(CURLOPT_URL, request.url.c_str());
  set(CURLOPT_PRIVATE, static_cast<void*>(transfer.get()));
  set(CURLOPT_WRITEFUNCTION, &OnBodyData);
  set(CURLOPT_WRITEDATA, static_cast<void*>(transfer.get()));
  set(CURLOPT_ERRORBUFFER, transfer->error);
  // Signals would hit whatever thread they like; timeouts must not rely on SIGALRM.
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_TIMEOUT_MS, timeout_ms);
  set(CURLOPT_FOLLOWLOCATION, 1L);
  set(CURLOPT_MAXREDIRS, kMaxRedirects);
  // A tracker URL comes from an untrusted torrent: never let it (or a redirect) reach file://,
  // gopher:// and friends.
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(CURLOPT_USERAGENT, "Torrenty/0.1");
  if (request.ranged) {
    transfer->ranged = true;
    transfer->max_body =
        std::max<size_t>(static_cast<size_t>(request.last - request.first + 1), 64 << 10);
    const std::string range = absl::StrCat(request.first, "-", request.last);
    set(CURLOPT_RANGE, range.c_str());  // copied by libcurl
    set(CURLOPT_HEADERFUNCTION, &OnHeader);
    set(CURLOPT_HEADERDATA, static_cast<void*>(transfer.get()));
    set(CURLOPT_LOW_SPEED_LIMIT, 1024L);
    set(CURLOPT_LOW_SPEED_TIME, 30L);
    if (request.max_recv_rate > 0) {
      set(CURLOPT_MAX_RECV_SPEED_LARGE, static_cast<curl_off_t>(request.max_recv_rate));
    }
  } else {
    set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxBodyBytes));
    set(CURLOPT_ACCEPT_ENCODING, "");  // Whatever this libcurl can decode (gzip is common).
  }
  set(CURLOPT_DNS_CACHE_TIMEOUT, options_.dns_cache_timeout_s);
  if (rc != CURLE_OK) {
    return fail(absl::InternalError(absl::StrCat("curl_easy_setopt: ", curl_easy_strerror(rc))));
  }
  if (CURLMcode mrc = curl_multi_add_handle(Multi(multi_), easy); mrc != CURLM_OK) {
    return fail(
        absl::InternalError(absl::StrCat("curl_multi_add_handle: ", curl_multi_strerror(mrc))));
  }
  transfers_.push_back(std::move(transfer));
}

void HttpFetcher::Finish(Transfer* transfer, int curl_code) {
  const auto code = static_cast<CURLcode>(curl_code);
  HttpResult result;
  result.id = transfer->id;
  absl::StatusOr<std::string>& body = result.body;
  const std::string detail =
      transfer->error[0] != '\0' ? transfer->error : curl_easy_strerror(code);
  if (transfer->too_large || code == CURLE_FILESIZE_EXCEEDED) {
    body = absl::ResourceExhaustedError(
        absl::StrCat("response body exceeds ", transfer->max_body, " bytes"));
  } else if (code == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &status);
    if (transfer->ranged) {
      result.status = static_cast<int>(status);
      result.content_range = std::move(transfer->content_range);
      result.retry_after = std::move(transfer->retry_after);
      body = std::move(transfer->body);
    } else if (status >= 200 && status < 300) {
      body = std::move(transfer->body);
    } else {
      body = absl::UnavailableError(absl::StrCat("HTTP status ", status));
    }
  } else if (code == CURLE_OPERATION_TIMEDOUT) {
    body = absl::DeadlineExceededError(absl::StrCat("timed out: ", detail));
  } else if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL) {
    body = absl::InvalidArgumentError(detail);
  } else {
    body = absl::UnavailableError(detail);
  }

  curl_multi_remove_handle(Multi(multi_), transfer->easy);
  curl_easy_cleanup(transfer->easy);
  transfers_.erase(std::find_if(transfers_.begin(), transfers_.end(),
                                [&](const auto& t) { return t.get() == transfer; }));
  Deliver(std::move(result));
}

void HttpFetcher::Deliver(HttpResult result) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    results_.push_back(std::move(result));
  }
  const uint64_t one = 1;
  if (write(event_fd_, &one, sizeof(one)) < 0) {
    // Only EAGAIN is possible (counter at its maximum), and then the fd is readable anyway.
  }
}

}  // namespace torrenty::io
