// The HTTP/1.1 server of `torrenty serve`: Transmission RPC at /transmission/rpc (and .../rpc/,
// where transmission-remote posts), Prometheus metrics at /metrics, 404 elsewhere. It runs on its
// own thread and io_uring ring and only ever waits on its sockets; the backend answers from memory.
//
// Checks, in order, on every request: the Host header against an allow-list (421, closing the
// DNS-rebinding hole of CVE-2018-5702 before a browser could show a login prompt), HTTP Basic auth
// when configured (401 with WWW-Authenticate), then for RPC the X-Transmission-Session-Id CSRF
// token (409 carrying the token, as Transmission does). Connections, header and body sizes are
// bounded, and a connection that completes no request within the idle timeout is closed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "io/rpc/rpc_backend.h"

namespace torrenty::io::rpc {

struct RpcServerOptions {
  // An IP address (IPv6 with or without brackets). Anything but loopback requires auth.
  std::string bind_address = "127.0.0.1";
  uint16_t port = 9091;  // 0 = an ephemeral port; RpcServer::port() reports it
  // Basic auth is on when `username` is not empty.
  std::string username;
  std::string password;
  // Host names accepted in the Host header besides localhost, IP literals and bind_address.
  std::vector<std::string> allowed_hosts;
  size_t max_connections = 64;
  size_t max_body_bytes = 16 * 1024 * 1024;
  absl::Duration idle_timeout = absl::Seconds(30);
};

class RpcServer {
 public:
  // `backend` must outlive the server (or at least Stop()).
  RpcServer(RpcBackend* backend, RpcServerOptions options);
  ~RpcServer();  // Stop()s
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // Validates the options, binds and listens (so a busy port or a bad address is reported here),
  // then serves on a new thread. Fails if already started.
  [[nodiscard]] absl::Status Start();
  // Closes the listener and every connection and joins the thread. Idempotent; any thread.
  void Stop();

  // The bound port (the ephemeral one when options.port was 0); 0 before Start().
  uint16_t port() const { return port_.load(); }
  // The current X-Transmission-Session-Id.
  const std::string& session_id() const { return session_id_; }

 private:
  class Loop;

  RpcBackend* backend_;
  RpcServerOptions options_;
  std::string session_id_;
  std::atomic<uint16_t> port_{0};
  std::mutex mu_;  // serializes Start/Stop
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  int stop_fd_ = -1;  // eventfd: Stop() wakes the loop
};

}  // namespace torrenty::io::rpc
