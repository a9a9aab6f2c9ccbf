// An incremental HTTP/1.1 request parser (RFC 9112, the subset an RPC endpoint needs) and a small
// response writer. Sans-I/O: the caller feeds whatever bytes arrived and gets back a complete
// request, a request for more bytes, or the HTTP status to answer with before closing.
//
// Deliberately strict: bodies only by Content-Length (Transfer-Encoding is refused with 501), no
// obsolete line folding, no whitespace before the colon of a header, and hard limits on the
// header block, the header count and the body, so a client cannot make the server hold more than
// a known amount of memory per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace torrenty::engine::http {

struct Limits {
  size_t max_header_bytes = 16 * 1024;  // request line plus all header lines
  size_t max_headers = 64;
  // torrent-add carries a whole .torrent base64-encoded in the JSON body.
  size_t max_body_bytes = 16 * 1024 * 1024;
};

struct Request {
  std::string method;     // as sent (methods are case-sensitive)
  std::string target;     // the request-target, e.g. "/transmission/rpc"
  int version_minor = 1;  // HTTP/1.<minor>
  // Names lowercased; values with surrounding whitespace trimmed; in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;
  bool expect_continue = false;  // "Expect: 100-continue"

  // The first header with this (lowercase) name, or nullptr.
  const std::string* Header(std::string_view lowercase_name) const;
  // The target's path without its query string; for an absolute-form target
  // ("http://host:port/path", RFC 9112 §3.2.2, what a client sends through a proxy) the part after
  // the authority.
  std::string_view Path() const;
  // The authority of an absolute-form target ("host:port"), or "" for the usual origin form.
  std::string_view Authority() const;
};

enum class ParseStatus { kNeedMore, kComplete, kError };

class RequestParser {
 public:
  explicit RequestParser(Limits limits = {}) : limits_(limits) {}

  // Consumes a prefix of `data` and sets *consumed to its length. kNeedMore: everything was
  // consumed and the request is not complete yet. kComplete: request() is ready; bytes after
  // *consumed belong to the next request (pipelining) and go to Feed after Reset(). kError:
  // error_status() is the status to answer with; the connection must be closed after it.
  ParseStatus Feed(std::string_view data, size_t* consumed);

  // True once the header block is parsed (request() has everything but the body), so a server can
  // refuse early or answer "100 Continue" before the client sends a large body.
  bool headers_complete() const { return state_ == State::kBody || state_ == State::kDone; }
  const Request& request() const { return request_; }
  Request& mutable_request() { return request_; }
  int error_status() const { return error_status_; }
  std::string_view error_reason() const { return error_reason_; }

  // Ready for the next request on the same connection.
  void Reset();

 private:
  enum class State { kHeader, kBody, kDone, kError };

  ParseStatus Fail(int status, std::string_view reason);
  // Parses the complete header block in header_ (without the blank line).
  ParseStatus ParseHeaderBlock();
  ParseStatus ParseRequestLine(std::string_view line);
  ParseStatus ParseHeaderLine(std::string_view line);
  ParseStatus FinishHeaders();

  Limits limits_;
  State state_ = State::kHeader;
  std::string header_;  // the header block as received so far
  size_t scanned_ = 0;  // bytes of header_ already searched for the blank line
  int64_t content_length_ = 0;
  int leading_newlines_ = 0;
  Request request_;
  int error_status_ = 0;
  std::string error_reason_;
};

// The standard reason phrase for the statuses this server uses ("Unknown" otherwise).
std::string_view ReasonPhrase(int status);

// A complete HTTP/1.1 response: status line, the given headers, Content-Length, and
// "Connection: close" when !keep_alive. Header names and values must not contain CR or LF; such
// headers are dropped.
std::string WriteResponse(int status,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view body, bool keep_alive);

}  // namespace torrenty::engine::http
