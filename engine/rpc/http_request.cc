#include "engine/rpc/http_request.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace torrenty::engine::http {
namespace {

// Empty lines a client may send before the request line (RFC 9112 §2.2 says to ignore "at least
// one"); more than this is not a confused client but a stream of garbage.
constexpr int kMaxLeadingNewlines = 8;

bool IsTokenChar(unsigned char c) {
  if (absl::ascii_isalnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsTokenChar(static_cast<unsigned char>(c));
  });
}

// Field values: visible ASCII, space, tab and obs-text; no other control characters.
bool IsFieldValue(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const unsigned char c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

// Debian's abseil has its own string_view type.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t p = s.find(sep);
    out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) return out;
    s.remove_prefix(p + 1);
  }
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const std::string* Request::Header(std::string_view lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return &value;
  }
  return nullptr;
}

namespace {

// For "scheme://authority/path...", the offset of "authority"; 0 for other forms.
size_t AuthorityStart(std::string_view t) {
  for (const std::string_view scheme :
       {std::string_view("http://"), std::string_view("https://")}) {
    if (t.size() >= scheme.size() &&
        absl::EqualsIgnoreCase(AV(t.substr(0, scheme.size())), AV(scheme))) {
      return scheme.size();
    }
  }
  return 0;
}

}  // namespace

std::string_view Request::Authority() const {
  std::string_view t = target;
  const size_t start = AuthorityStart(t);
  if (start == 0) return {};
  t.remove_prefix(start);
  return t.substr(0, t.find_first_of("/?"));
}

std::string_view Request::Path() const {
  std::string_view t = target;
  if (const size_t start = AuthorityStart(t); start != 0) {
    const size_t slash = t.find('/', start);
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
  }
  const size_t q = t.find('?');
  return q == std::string_view::npos ? t : t.substr(0, q);
}

void RequestParser::Reset() {
  state_ = State::kHeader;
  header_.clear();
  scanned_ = 0;
  content_length_ = 0;
  request_ = Request{};
  error_status_ = 0;
  error_reason_.clear();
  leading_newlines_ = 0;
}

ParseStatus RequestParser::Fail(int status, std::string_view reason) {
  state_ = State::kError;
  error_status_ = status;
  error_reason_ = std::string(reason);
  return ParseStatus::kError;
}

ParseStatus RequestParser::Feed(std::string_view data, size_t* consumed) {
  *consumed = 0;
  if (state_ == State::kError) return ParseStatus::kError;
  if (state_ == State::kDone) return ParseStatus::kComplete;

  if (state_ == State::kHeader) {
    while (header_.empty() && *consumed < data.size() &&
           (data[*consumed] == '\r' || data[*consumed] == '\n')) {
      if (++leading_newlines_ > kMaxLeadingNewlines) return Fail(400, "empty lines before request");
      ++*consumed;
    }
    const std::string_view rest = data.substr(*consumed);
    // Never hold more than the limit (plus the terminator's bytes) of header.
    const size_t room =
        limits_.max_header_bytes + 3 - std::min(header_.size(), limits_.max_header_bytes + 3);
    const size_t old_size = header_.size();
    header_.append(rest.substr(0, std::min(rest.size(), room)));
    size_t end = std::string::npos;  // one past the blank line
    size_t block = 0;                // length of the header block without the blank line
    for (size_t i = scanned_; i < header_.size(); ++i) {
      if (header_[i] != '\n') continue;
      if (i + 1 < header_.size() && header_[i + 1] == '\n') {
        end = i + 2;
        block = i + 1;
        break;
      }
      if (i + 2 < header_.size() && header_[i + 1] == '\r' && header_[i + 2] == '\n') {
        end = i + 3;
        block = i + 1;
        break;
      }
    }
    if (end == std::string::npos) {
      if (header_.size() > limits_.max_header_bytes) return Fail(431, "header too large");
      // The terminator may straddle this chunk and the next: rescan the last two bytes.
      scanned_ = header_.size() >= 2 ? header_.size() - 2 : 0;
      *consumed += header_.size() - old_size;
      return ParseStatus::kNeedMore;
    }
    if (end > limits_.max_header_bytes) return Fail(431, "header too large");
    *consumed += end - old_size;
    header_.resize(block);
    if (ParseHeaderBlock() == ParseStatus::kError) return ParseStatus::kError;
    if (FinishHeaders() == ParseStatus::kError) return ParseStatus::kError;
    if (state_ == State::kDone) return ParseStatus::kComplete;
    data.remove_prefix(*consumed);
    size_t body_consumed = 0;
    const ParseStatus s = Feed(data, &body_consumed);
    *consumed += body_consumed;
    return s;
  }

  // kBody
  const size_t want = static_cast<size_t>(content_length_) - request_.body.size();
  const size_t take = std::min(want, data.size());
  request_.body.append(data.substr(0, take));
  *consumed = take;
  if (request_.body.size() == static_cast<size_t>(content_length_)) {
    state_ = State::kDone;
    return ParseStatus::kComplete;
  }
  return ParseStatus::kNeedMore;
}

ParseStatus RequestParser::ParseHeaderBlock() {
  std::string_view block = header_;
  bool first = true;
  while (!block.empty()) {
    const size_t nl = block.find('\n');
    std::string_view line = block.substr(0, nl);
    block.remove_prefix(nl == std::string_view::npos ? block.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return Fail(400, "bare CR in header");
    const ParseStatus s = first ? ParseRequestLine(line) : ParseHeaderLine(line);
    if (s == ParseStatus::kError) return s;
    first = false;
  }
  return ParseStatus::kNeedMore;
}

ParseStatus RequestParser::ParseRequestLine(std::string_view line) {
  const std::vector<std::string_view> parts = Split(line, ' ');
  if (parts.size() != 3) return Fail(400, "malformed request line");
  if (!IsToken(parts[0])) return Fail(400, "malformed method");
  const std::string_view target = parts[1];
  if (target.empty()) return Fail(400, "empty request target");
  for (const char ch : target) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return Fail(400, "control character in request target");
  }
  const std::string_view version = parts[2];
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[5])) ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[7]))) {
    return Fail(400, "malformed HTTP version");
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return Fail(505, "HTTP version not supported");
  }
  request_.method = std::string(parts[0]);
  request_.target = std::string(target);
  request_.version_minor = version[7] - '0';
  return ParseStatus::kNeedMore;
}

ParseStatus RequestParser::ParseHeaderLine(std::string_view line) {
  if (line.empty()) return Fail(400, "empty header line");
  if (line.front() == ' ' || line.front() == '\t') return Fail(400, "obsolete line folding");
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return Fail(400, "header line without colon");
  const std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return Fail(400, "malformed header name");
  const std::string_view value = TrimOws(line.substr(colon + 1));
  if (!IsFieldValue(value)) return Fail(400, "control character in header value");
  if (request_.headers.size() >= limits_.max_headers) return Fail(431, "too many headers");
  request_.headers.emplace_back(absl::AsciiStrToLower(AV(name)), std::string(value));
  return ParseStatus::kNeedMore;
}

ParseStatus RequestParser::FinishHeaders() {
  int hosts = 0;
  bool has_length = false;
  bool close = false;
  bool keep_alive_token = false;
  for (const auto& [name, value] : request_.headers) {
    if (name == "host") {
      ++hosts;
    } else if (name == "transfer-encoding") {
      return Fail(501, "Transfer-Encoding is not supported; send Content-Length");
    } else if (name == "content-length") {
      // A list of identical values is allowed (RFC 9112 §6.3); anything else is an attack.
      for (std::string_view item : Split(value, ',')) {
        item = TrimOws(item);
        if (item.empty() || item.size() > 18 || !std::all_of(item.begin(), item.end(), [](char c) {
              return absl::ascii_isdigit(static_cast<unsigned char>(c));
            })) {
          return Fail(400, "malformed Content-Length");
        }
        int64_t n = 0;
        for (const char c : item) n = n * 10 + (c - '0');
        if (has_length && n != content_length_) return Fail(400, "conflicting Content-Length");
        has_length = true;
        content_length_ = n;
      }
    } else if (name == "connection") {
      for (std::string_view token : Split(value, ',')) {
        token = TrimOws(token);
        if (absl::EqualsIgnoreCase(AV(token), "close")) close = true;
        if (absl::EqualsIgnoreCase(AV(token), "keep-alive")) keep_alive_token = true;
      }
    } else if (name == "expect") {
      if (!absl::EqualsIgnoreCase(value, "100-continue")) return Fail(417, "unknown expectation");
      request_.expect_continue = true;
    }
  }
  if (hosts > 1 || (hosts == 0 && request_.version_minor == 1)) {
    return Fail(400, "a request needs exactly one Host header");
  }
  if (static_cast<uint64_t>(content_length_) > limits_.max_body_bytes) {
    return Fail(413, "request body too large");
  }
  request_.keep_alive = request_.version_minor == 1 ? !close : (keep_alive_token && !close);
  // A 1.0 client does not know 100 Continue.
  if (request_.version_minor == 0) request_.expect_continue = false;
  header_.clear();
  header_.shrink_to_fit();
  state_ = content_length_ == 0 ? State::kDone : State::kBody;
  if (state_ == State::kBody) {
    // Trust the declared length only up to a modest first allocation.
    request_.body.reserve(std::min<size_t>(static_cast<size_t>(content_length_), 64 * 1024));
  }
  return ParseStatus::kNeedMore;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string WriteResponse(int status,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view body, bool keep_alive) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", AV(ReasonPhrase(status)), "\r\n");
  for (const auto& [name, value] : headers) {
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      continue;
    }
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n");
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out.append(body);
  return out;
}

}  // namespace torrenty::engine::http
