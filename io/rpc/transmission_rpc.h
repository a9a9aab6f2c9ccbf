// The Transmission RPC protocol (rpc-spec, RPC version 16 as Transmission 3.00 speaks it): one JSON
// request body in, one JSON response body out, served by an RpcBackend. Transport-free, so the
// HTTP server and the tests drive it the same way.
//
// Speeds in the protocol are in KiB/s (kSpeedUnitBytes; session-get's "units" says so); the
// backend sees bytes/s. Every failure -- malformed JSON, a wrong type, an unknown method or
// torrent id, a backend error -- becomes a response whose "result" is an error string; Handle()
// never throws.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "io/rpc/rpc_backend.h"

namespace torrenty::io::rpc {

inline constexpr int64_t kSpeedUnitBytes = 1024;
inline constexpr int kRpcVersion = 16;
inline constexpr int kRpcVersionMinimum = 1;

class TransmissionRpc {
 public:
  explicit TransmissionRpc(RpcBackend* backend);

  // What session-get reports as "session-id": the server's X-Transmission-Session-Id.
  void set_session_id(std::string id) { session_id_ = std::move(id); }
  // Unix seconds; "recently-active" means active within the last 60 s of this clock.
  void set_clock(std::function<int64_t()> now) { now_ = std::move(now); }

  // Never throws.
  std::string Handle(std::string_view request_body);

 private:
  RpcBackend* backend_;
  std::string session_id_;
  std::function<int64_t()> now_;
};

}  // namespace torrenty::io::rpc
