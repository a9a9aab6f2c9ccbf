#include "engine/rpc/http_request.h"

#include <gtest/gtest.h>

#include <string>

namespace torrenty::engine::http {
namespace {

struct Result {
  ParseStatus status;
  size_t consumed;
};

Result FeedAll(RequestParser& p, std::string_view data) {
  size_t used = 0;
  const ParseStatus s = p.Feed(data, &used);
  return {s, used};
}

TEST(HttpRequest, ParsesPostWithBodyAndLowercasesHeaderNames) {
  RequestParser p;
  const std::string req =
      "POST /transmission/rpc HTTP/1.1\r\nHost: 127.0.0.1:9091\r\n"
      "X-Transmission-Session-Id:  abc \r\nContent-Length: 5\r\n\r\nhello";
  const Result r = FeedAll(p, req);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, req.size());
  EXPECT_EQ(p.request().method, "POST");
  EXPECT_EQ(p.request().target, "/transmission/rpc");
  EXPECT_EQ(p.request().body, "hello");
  ASSERT_NE(p.request().Header("x-transmission-session-id"), nullptr);
  EXPECT_EQ(*p.request().Header("x-transmission-session-id"), "abc");
  EXPECT_TRUE(p.request().keep_alive);
}

TEST(HttpRequest, ByteByByteEqualsWhole) {
  const std::string req =
      "POST /x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  RequestParser p;
  ParseStatus s = ParseStatus::kNeedMore;
  for (size_t i = 0; i < req.size(); ++i) {
    size_t used = 0;
    s = p.Feed(std::string_view(req).substr(i, 1), &used);
    ASSERT_EQ(used, 1u) << i;
    if (i + 1 < req.size()) {
      ASSERT_EQ(s, ParseStatus::kNeedMore) << i;
    }
  }
  ASSERT_EQ(s, ParseStatus::kComplete);
  EXPECT_EQ(p.request().body, "abc");
  EXPECT_EQ(p.request().Path(), "/x");
  EXPECT_FALSE(p.request().keep_alive);
}

TEST(HttpRequest, PipelinedRequestsLeaveTheRestUnconsumed) {
  const std::string one = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string two = "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestParser p;
  const std::string both = one + two;
  Result r = FeedAll(p, both);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, one.size());
  EXPECT_EQ(p.request().target, "/metrics");
  p.Reset();
  r = FeedAll(p, std::string_view(both).substr(r.consumed));
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(p.request().target, "/b");
}

TEST(HttpRequest, AbsoluteFormTarget) {
  RequestParser p;
  ASSERT_EQ(
      FeedAll(p, "GET HTTP://localhost:9091/transmission/rpc/?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
          .status,
      ParseStatus::kComplete);
  EXPECT_EQ(p.request().Path(), "/transmission/rpc/");
  EXPECT_EQ(p.request().Authority(), "localhost:9091");
  p.Reset();
  ASSERT_EQ(FeedAll(p, "GET http://h HTTP/1.1\r\nHost: a\r\n\r\n").status, ParseStatus::kComplete);
  EXPECT_EQ(p.request().Path(), "/");
  EXPECT_EQ(p.request().Authority(), "h");
  p.Reset();
  ASSERT_EQ(FeedAll(p, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n").status, ParseStatus::kComplete);
  EXPECT_EQ(p.request().Authority(), "");
}

TEST(HttpRequest, AcceptsBareLfAndLeadingEmptyLines) {
  RequestParser p;
  ASSERT_EQ(FeedAll(p, "\r\n\nGET / HTTP/1.0\nConnection: keep-alive\n\n").status,
            ParseStatus::kComplete);
  EXPECT_EQ(p.request().version_minor, 0);
  EXPECT_TRUE(p.request().keep_alive);
  p.Reset();
  ASSERT_EQ(FeedAll(p, "GET / HTTP/1.0\r\n\r\n").status, ParseStatus::kComplete);
  EXPECT_FALSE(p.request().keep_alive);
}

TEST(HttpRequest, ExpectContinueIsVisibleOnceTheHeaderIsIn) {
  RequestParser p;
  const Result r =
      FeedAll(p, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n");
  EXPECT_EQ(r.status, ParseStatus::kNeedMore);
  EXPECT_TRUE(p.headers_complete());
  EXPECT_TRUE(p.request().expect_continue);
  EXPECT_EQ(FeedAll(p, "body").status, ParseStatus::kComplete);
}

int ErrorOf(std::string_view data, Limits limits = {}) {
  RequestParser p(limits);
  const Result r = FeedAll(p, data);
  if (r.status != ParseStatus::kError) return 0;
  return p.error_status();
}

TEST(HttpRequest, Errors) {
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\n\r\n"), 400);  // no Host
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(ErrorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400);
  EXPECT_EQ(ErrorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            400);
  EXPECT_EQ(ErrorOf("POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n"), 417);
  EXPECT_EQ(ErrorOf("\r\n\r\n\r\n\r\n\r\n"), 400);
  // Identical repeated lengths are allowed.
  EXPECT_EQ(ErrorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx"), 0);
}

TEST(HttpRequest, BodyLimitIs413BeforeAnyBodyArrives) {
  Limits l;
  l.max_body_bytes = 16 * 1024 * 1024;
  EXPECT_EQ(ErrorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16777217\r\n\r\n", l), 413);
  EXPECT_EQ(ErrorOf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16777216\r\n\r\n", l), 0);
}

TEST(HttpRequest, HeaderLimitsAre431) {
  Limits l;
  l.max_header_bytes = 256;
  l.max_headers = 3;
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", l), 431);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", l), 0);
  // A header block that never ends is refused once it passes the limit, not buffered forever.
  RequestParser p(l);
  const std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(100, 'a');
  size_t used = 0;
  EXPECT_EQ(p.Feed(endless, &used), ParseStatus::kNeedMore);
  ParseStatus s = ParseStatus::kNeedMore;
  for (int i = 0; i < 10 && s == ParseStatus::kNeedMore; ++i) {
    s = p.Feed(std::string(100, 'a'), &used);
  }
  EXPECT_EQ(s, ParseStatus::kError);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(HttpRequest, ErrorIsSticky) {
  RequestParser p;
  EXPECT_EQ(FeedAll(p, "BAD\r\n\r\n").status, ParseStatus::kError);
  const Result r = FeedAll(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(HttpResponse, WritesStatusHeadersLengthAndClose) {
  const std::string r = WriteResponse(409, {{"X-Transmission-Session-Id", "tok"}}, "body", false);
  EXPECT_EQ(r,
            "HTTP/1.1 409 Conflict\r\nX-Transmission-Session-Id: tok\r\nContent-Length: 4\r\n"
            "Connection: close\r\n\r\nbody");
  // A header that would split the response is dropped.
  const std::string s = WriteResponse(200, {{"A", "x\r\nInjected: 1"}}, "", true);
  EXPECT_EQ(s.find("Injected"), std::string::npos);
}

}  // namespace
}  // namespace torrenty::engine::http
