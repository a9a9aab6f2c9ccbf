// One io_uring instance and its completion dispatch. A Ring belongs to exactly one thread.
// Completions are intrusive: the object that issues an operation owns the Completion and keeps it
// alive until the final CQE arrives, so no operation allocates.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "io/metrics/instruments.h"

namespace torrenty::io {

struct Completion {
  // `res` is cqe->res (negative errno on failure), `flags` is cqe->flags.
  using Fn = void (*)(void* ctx, int32_t res, uint32_t flags);
  Fn fn = nullptr;
  void* ctx = nullptr;
  void Complete(int32_t res, uint32_t flags) { fn(ctx, res, flags); }
};

// Binds a member function as a completion target: MakeCompletion<&Peer::OnRecv>(this).
template <auto Method, typename T>
Completion MakeCompletion(T* self) {
  return Completion{
      [](void* ctx, int32_t res, uint32_t flags) { (static_cast<T*>(ctx)->*Method)(res, flags); },
      self};
}

class Ring {
 public:
  static absl::StatusOr<std::unique_ptr<Ring>> Create(unsigned entries = 1024);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Each Prep* queues one SQE whose completion calls `c`. They never block: when the SQ is full
  // the ring submits what it has and takes a fresh entry.
  void Recv(int fd, void* buf, size_t len, Completion* c);
  void Send(int fd, const void* buf, size_t len, Completion* c);
  // Datagram sockets: the peer's address travels in `msg`, which must outlive the operation.
  void RecvMsg(int fd, struct msghdr* msg, unsigned flags, Completion* c);
  // `flags` as for sendmsg(2); a TCP peer's socket wants MSG_NOSIGNAL.
  void SendMsg(int fd, const struct msghdr* msg, Completion* c, unsigned flags = 0);
  void Read(int fd, void* buf, size_t len, uint64_t offset, Completion* c);
  void Write(int fd, const void* buf, size_t len, uint64_t offset, Completion* c);
  void Accept(int fd, Completion* c);
  void Connect(int fd, const struct sockaddr* addr, socklen_t len, Completion* c);
  // Connect bounded by `ts` through a linked timeout: a dead address fails with -ECANCELED.
  void ConnectWithTimeout(int fd, const struct sockaddr* addr, socklen_t len,
                          struct __kernel_timespec* ts, Completion* c);
  void Close(int fd, Completion* c);
  void Fsync(int fd, bool datasync, Completion* c);
  // Completes with 0 on the next RunOnce: lets an operation with nothing to transfer still
  // report through the ring instead of from inside the call that started it.
  void Nop(Completion* c);
  // Cancels every operation in flight on `fd`; `c` (may be null) gets the cancel's own CQE.
  void CancelFd(int fd, Completion* c);
  // Completes with -ETIME after `ms` milliseconds (or earlier with -ECANCELED if cancelled).
  void Timeout(struct __kernel_timespec* ts, Completion* c);
  // Cancels every operation whose completion is `target`; `c` (may be null) gets the cancel's CQE.
  void Cancel(Completion* target, Completion* c);

  // Submits queued SQEs, waits up to `wait_ms` for at least one CQE, and dispatches all ready
  // completions. Returns the number dispatched.
  absl::StatusOr<int> RunOnce(int wait_ms);
  // The same, calling on_wake(ctx) once after the wait and before any completion runs: the
  // owner reads the clock there, once per loop turn, and every completion of the turn sees
  // that time.
  absl::StatusOr<int> RunOnce(int wait_ms, void (*on_wake)(void*), void* ctx);

  io_uring* raw() { return &ring_; }

  // Optional: SQEs submitted and CQEs reaped are added to these (owned by the caller, written
  // only from this ring's thread) once per RunOnce.
  void set_metrics(metrics::ShardCounter* submissions, metrics::ShardCounter* completions) {
    submissions_ = submissions;
    completions_ = completions;
  }

 private:
  Ring() = default;
  io_uring_sqe* Sqe();

  io_uring ring_{};
  bool initialized_ = false;
  uint64_t sqes_ = 0;  // taken since the last RunOnce published them
  metrics::ShardCounter* submissions_ = nullptr;
  metrics::ShardCounter* completions_ = nullptr;
};

}  // namespace torrenty::io
