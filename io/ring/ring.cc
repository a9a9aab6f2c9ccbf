#include "io/ring/ring.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace torrenty::io {

absl::StatusOr<std::unique_ptr<Ring>> Ring::Create(unsigned entries) {
  std::unique_ptr<Ring> ring(new Ring());
  io_uring_params params{};
  // No IORING_SETUP_SINGLE_ISSUER: a shard's ring is created on the main thread and then driven
  // by the shard's own thread, which that flag forbids (submissions fail with EEXIST).
  params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  int rc = io_uring_queue_init_params(entries, &ring->ring_, &params);
  if (rc == -EINVAL) {
    // Older kernels lack the hint flags; they are optimisations, not requirements.
    params = {};
    rc = io_uring_queue_init_params(entries, &ring->ring_, &params);
  }
  if (rc < 0) {
    return absl::ErrnoToStatus(-rc,
                               "io_uring_queue_init failed (is io_uring disabled? try "
                               "'sysctl -w kernel.io_uring_disabled=0')");
  }
  ring->initialized_ = true;
  return ring;
}

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

io_uring_sqe* Ring::Sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    // SQ full: hand what we have to the kernel and retry; never drop an operation.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  ++sqes_;
  return sqe;
}

void Ring::Recv(int fd, void* buf, size_t len, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_recv(sqe, fd, buf, len, 0);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::RecvMsg(int fd, struct msghdr* msg, unsigned flags, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_recvmsg(sqe, fd, msg, flags);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::SendMsg(int fd, const struct msghdr* msg, Completion* c, unsigned flags) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_sendmsg(sqe, fd, msg, flags);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Send(int fd, const void* buf, size_t len, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Read(int fd, void* buf, size_t len, uint64_t offset, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), offset);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Write(int fd, const void* buf, size_t len, uint64_t offset, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(len), offset);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Accept(int fd, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Connect(int fd, const struct sockaddr* addr, socklen_t len, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_connect(sqe, fd, addr, len);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::ConnectWithTimeout(int fd, const struct sockaddr* addr, socklen_t len,
                              struct __kernel_timespec* ts, Completion* c) {
  // The pair must go to the kernel in one submission or the link is lost.
  if (io_uring_sq_space_left(&ring_) < 2) io_uring_submit(&ring_);
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_connect(sqe, fd, addr, len);
  io_uring_sqe_set_data(sqe, c);
  sqe->flags |= IOSQE_IO_LINK;
  io_uring_sqe* t = Sqe();
  io_uring_prep_link_timeout(t, ts, 0);
  io_uring_sqe_set_data(t, nullptr);
}

void Ring::Fsync(int fd, bool datasync, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Nop(Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::CancelFd(int fd, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Close(int fd, Completion* c) {
  io_uring_sqe* sqe = Sqe();
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer follows descriptors through the libc calls it intercepts and cannot see a
  // close done by the ring: when another thread (another session of the same test process) gets
  // the number again, it reports the reuse as a race on the descriptor. Under TSan the close goes
  // through libc, and the completion still arrives through the ring, so the flow is the same.
  ::close(fd);
  io_uring_prep_nop(sqe);
#else
  io_uring_prep_close(sqe, fd);
#endif
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Timeout(struct __kernel_timespec* ts, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_timeout(sqe, ts, 0, 0);
  io_uring_sqe_set_data(sqe, c);
}

void Ring::Cancel(Completion* target, Completion* c) {
  io_uring_sqe* sqe = Sqe();
  io_uring_prep_cancel(sqe, target, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data(sqe, c);
}

absl::StatusOr<int> Ring::RunOnce(int wait_ms) { return RunOnce(wait_ms, nullptr, nullptr); }

absl::StatusOr<int> Ring::RunOnce(int wait_ms, void (*on_wake)(void*), void* ctx) {
  __kernel_timespec ts{};
  ts.tv_sec = wait_ms / 1000;
  ts.tv_nsec = static_cast<long long>(wait_ms % 1000) * 1000000;
  io_uring_cqe* cqe = nullptr;
  int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, wait_ms >= 0 ? &ts : nullptr, nullptr);
  // ETIME: nothing completed within wait_ms; EINTR: a signal arrived (the caller checks its flag).
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
    return absl::ErrnoToStatus(-rc, "io_uring_submit_and_wait");
  }
  if (on_wake != nullptr) on_wake(ctx);
  // Counted when taken: each SQE goes to the kernel in this submit (or, after EBUSY, the next).
  if (submissions_ != nullptr) submissions_->Add(sqes_);
  sqes_ = 0;
  int dispatched = 0;
  io_uring_cqe* batch[256];
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ring_, batch, 256);
    if (n == 0) break;
    for (unsigned i = 0; i < n; ++i) {
      auto* c = static_cast<Completion*>(io_uring_cqe_get_data(batch[i]));
      int32_t res = batch[i]->res;
      uint32_t flags = batch[i]->flags;
      // Advance before the callback so a callback that re-enters RunOnce cannot see it twice.
      io_uring_cqe_seen(&ring_, batch[i]);
      if (c != nullptr && c->fn != nullptr) c->Complete(res, flags);
      ++dispatched;
    }
  }
  if (completions_ != nullptr) completions_->Add(static_cast<uint64_t>(dispatched));
  return dispatched;
}

}  // namespace torrenty::io
