// A thread's inbox: a vector swapped out under a short lock, plus an eventfd that the owning
// ring reads, so a post wakes the owner without it ever blocking on the lock while idle.
#pragma once

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <mutex>
#include <utility>
#include <vector>

namespace torrenty::io {

template <typename Message>
class Mailbox {
 public:
  Mailbox() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Mailbox() {
    if (fd_ >= 0) ::close(fd_);
  }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // -1 when eventfd failed; the owner checks this at start-up.
  int fd() const { return fd_; }

  void Post(Message m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(m));
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof(one));
  }

  // Replaces *out with everything posted since the last call.
  void Take(std::vector<Message>* out) {
    out->clear();
    std::lock_guard<std::mutex> lock(mu_);
    out->swap(queue_);
  }

 private:
  const int fd_;
  // std::mutex rather than absl::Mutex so ThreadSanitizer sees the synchronisation.
  std::mutex mu_;
  std::vector<Message> queue_;  // guarded by mu_
};

}  // namespace torrenty::io
