// A thread's inbox: a vector swapped out under a short lock, plus an eventfd that the owning
// ring reads, so a post wakes the owner without it ever blocking on the lock while idle.
//
// Only the post that finds the queue empty wakes the owner: any later one lands in a queue whose
// wake-up is already on its way, and the owner takes both together. A wake-up is an eventfd write
// and, when the owner sleeps, a trip through the scheduler for it; a download of 16 KiB
// pieces spent about a quarter of its CPU on one per piece. Producers with a loop of their own
// Push, and Wake once before they sleep (WakeList), so a burst of posts costs one wake-up.
#pragma once

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace torrenty::io {

// Adds one to an eventfd, which makes it readable for the ring that owns it.
inline void WakeEventFd(int fd) {
  // Only fails (EAGAIN) if the counter would overflow, in which case it is readable anyway.
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof(one));
}

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
    if (Push(std::move(m))) Wake();
  }

  // Queues `m` without waking the owner. True when the queue was empty: then the caller owes the
  // owner a Wake() before it next blocks (the owner may be asleep and nobody else will wake it).
  [[nodiscard]] bool Push(Message m) {
    std::lock_guard<std::mutex> lock(mu_);
    const bool was_empty = queue_.empty();
    queue_.push_back(std::move(m));
    return was_empty;
  }

  void Wake() { WakeEventFd(fd_); }

  // Replaces *out with everything posted since the last call. After it, the next Push reports an
  // empty queue again, so an owner must Take after each wake-up it reads, or it could sleep on a
  // queue nobody wakes it for.
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

// The mailboxes a thread pushed to since it last slept, each woken once when it is about to.
class WakeList {
 public:
  template <typename Message>
  void Post(Mailbox<Message>* to, Message m) {
    if (!to->Push(std::move(m))) return;
    const int fd = to->fd();
    for (int f : fds_) {
      if (f == fd) return;
    }
    fds_.push_back(fd);
  }

  // Before the thread blocks (and before it exits).
  void WakeAll() {
    for (int fd : fds_) WakeEventFd(fd);
    fds_.clear();
  }

  bool empty() const { return fds_.empty(); }

 private:
  std::vector<int> fds_;  // a handful: the coordinator's and the other shards'
};

}  // namespace torrenty::io
