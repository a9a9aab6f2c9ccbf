// Mailbox wake-ups (io/session/mailbox.h): one eventfd write per burst of posts, and never a
// message left in a queue whose owner sleeps. The eventfd counter shows how many writes were made.
#include "io/session/mailbox.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace torrenty::io {
namespace {

// The eventfd's counter (the writes since the last read), 0 when it is not readable; resets it.
uint64_t Wakes(int fd) {
  uint64_t n = 0;
  if (::read(fd, &n, sizeof(n)) != static_cast<ssize_t>(sizeof(n))) return 0;
  return n;
}

TEST(MailboxTest, OnlyThePostIntoAnEmptyQueueWakesTheOwner) {
  Mailbox<int> box;
  ASSERT_GE(box.fd(), 0);
  box.Post(1);
  box.Post(2);
  box.Post(3);
  EXPECT_EQ(Wakes(box.fd()), 1u);
  std::vector<int> got;
  box.Take(&got);
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  // Taken: the queue is empty again, so the next post must wake the owner.
  box.Post(4);
  EXPECT_EQ(Wakes(box.fd()), 1u);
  box.Take(&got);
  EXPECT_EQ(got, (std::vector<int>{4}));
  EXPECT_EQ(Wakes(box.fd()), 0u);
}

TEST(MailboxTest, WakeListWakesEachMailboxOnceWhenAsked) {
  Mailbox<int> a;
  Mailbox<int> b;
  WakeList wakes;
  for (int i = 0; i < 5; ++i) wakes.Post(&a, i);
  wakes.Post(&b, 7);
  EXPECT_EQ(Wakes(a.fd()), 0u) << "nobody is woken before the producer is about to sleep";
  EXPECT_EQ(Wakes(b.fd()), 0u);
  EXPECT_FALSE(wakes.empty());
  wakes.WakeAll();
  EXPECT_TRUE(wakes.empty());
  EXPECT_EQ(Wakes(a.fd()), 1u);
  EXPECT_EQ(Wakes(b.fd()), 1u);
  std::vector<int> got;
  a.Take(&got);
  EXPECT_EQ(got.size(), 5u);

  // A mailbox whose queue already held a message (posted by someone who owes its wake-up) is not
  // woken again by this list.
  b.Post(8);  // b still holds 7: no new wake-up
  EXPECT_EQ(Wakes(b.fd()), 0u);
  wakes.Post(&b, 9);
  wakes.WakeAll();
  EXPECT_EQ(Wakes(b.fd()), 0u);
  b.Take(&got);
  EXPECT_EQ(got, (std::vector<int>{7, 8, 9}));

  // The owner took between two posts of one turn: both found the queue empty, one write wakes it.
  wakes.Post(&a, 10);
  a.Take(&got);
  wakes.Post(&a, 11);
  wakes.WakeAll();
  EXPECT_EQ(Wakes(a.fd()), 1u);
}

// Producers post from their own threads, some straight away, some through a WakeList flushed
// after a burst; the owner sleeps in poll() and takes after every wake-up it reads. A lost
// wake-up leaves messages in the queue while the owner sleeps: the deadline fails the test.
TEST(MailboxTest, ThreadsNeverLeaveTheOwnerAsleepOnMessages) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 20000;
  Mailbox<int> box;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&box, p] {
      WakeList wakes;
      for (int i = 0; i < kPerProducer; ++i) {
        if (p % 2 == 0) {
          box.Post(i);
        } else {
          wakes.Post(&box, i);
          if (i % 7 == 6) wakes.WakeAll();
        }
      }
      wakes.WakeAll();
    });
  }
  int64_t received = 0;
  std::vector<int> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (received < int64_t{kProducers} * kPerProducer) {
    pollfd pfd{box.fd(), POLLIN, 0};
    // Only the wake-up may end the sleep: a timeout here means a message waits unannounced.
    const int r = ::poll(&pfd, 1, 5000);
    ASSERT_EQ(r, 1) << "owner asleep with " << (int64_t{kProducers} * kPerProducer - received)
                    << " messages not yet taken";
    (void)Wakes(box.fd());
    box.Take(&got);
    received += static_cast<int64_t>(got.size());
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
  }
  for (std::thread& t : producers) t.join();
  box.Take(&got);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(received, int64_t{kProducers} * kPerProducer);
}

}  // namespace
}  // namespace torrenty::io
