// LbaRangeLock: shared/exclusive semantics, the lock-free shared fast path,
// arrival-order fairness, and a multi-threaded stress of all of it.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "scsi/sbc_advanced_job.h"

namespace scstu::scsi {
namespace {

struct Waiter {
  LbaRangeLock::Holder h;
  std::atomic<int> grants{0};
  Waiter(uint64_t lba, uint64_t blocks, bool exclusive) {
    h.lba = lba;
    h.blocks = blocks;
    h.exclusive = exclusive;
    h.owner = this;
    h.granted = [](LbaRangeLock::Holder& x) { static_cast<Waiter*>(x.owner)->grants++; };
  }
};

TEST(LbaRangeLock, SharedHoldsUseTheFastPathUntilAnExclusiveAppears) {
  LbaRangeLock lock;
  Waiter s1(0, 10, false), s2(5, 10, false);
  EXPECT_TRUE(lock.acquire(s1.h));
  EXPECT_TRUE(lock.acquire(s2.h));
  EXPECT_TRUE(s1.h.fast);
  EXPECT_EQ(lock.held(), 0u);  // not in the list
  // An exclusive range elsewhere still waits: fast holds are range-less.
  Waiter x(100, 1, true);
  EXPECT_FALSE(lock.acquire(x.h));
  // New shared holds now take the slow path; a non-overlapping one is granted.
  Waiter s3(200, 1, false);
  EXPECT_TRUE(lock.acquire(s3.h));
  EXPECT_FALSE(s3.h.fast);
  lock.release(s1.h);
  EXPECT_EQ(x.grants, 0);
  lock.release(s2.h);
  EXPECT_EQ(x.grants, 1);  // the last fast hold drained
  lock.release(s3.h);
  lock.release(x.h);
  EXPECT_EQ(lock.held(), 0u);
  Waiter s4(0, 1, false);
  EXPECT_TRUE(lock.acquire(s4.h));
  EXPECT_TRUE(s4.h.fast);
  lock.release(s4.h);
}

TEST(LbaRangeLock, ExclusiveExcludesOverlapsOnlyAndWaitersKeepOrder) {
  LbaRangeLock lock;
  Waiter x1(0, 10, true), x2(10, 10, true);
  EXPECT_TRUE(lock.acquire(x1.h));
  EXPECT_TRUE(lock.acquire(x2.h));  // adjacent, not overlapping
  Waiter s_over(5, 1, false), x_over(9, 2, true), s_after(12, 1, false);
  EXPECT_FALSE(lock.acquire(s_over.h));
  EXPECT_FALSE(lock.acquire(x_over.h));
  EXPECT_FALSE(lock.acquire(s_after.h));
  lock.release(x1.h);
  EXPECT_EQ(s_over.grants, 1);
  EXPECT_EQ(x_over.grants, 0);  // still overlaps x2 and the granted shared hold
  lock.release(s_over.h);
  EXPECT_EQ(x_over.grants, 0);
  lock.release(x2.h);
  EXPECT_EQ(x_over.grants, 1);
  EXPECT_EQ(s_after.grants, 1);  // 12 does not overlap x_over's 9..10
  lock.release(x_over.h);
  lock.release(s_after.h);
  EXPECT_EQ(lock.held(), 0u);
}

// Threads take random shared and exclusive holds on a small range; a
// per-block owner count proves an exclusive hold never overlaps another.
TEST(LbaRangeLock, StressNoOverlapWithExclusive) {
  LbaRangeLock lock;
  constexpr int kBlocks = 16;
  std::array<std::atomic<int>, kBlocks> shared{};
  std::array<std::atomic<int>, kBlocks> exclusive{};
  std::atomic<bool> bad{false};
  auto worker = [&](int seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < 3000; ++i) {
      struct Slot {
        LbaRangeLock::Holder h;
        std::atomic<bool> granted{false};
      } slot;
      slot.h.lba = rng() % kBlocks;
      slot.h.blocks = 1 + rng() % (kBlocks - slot.h.lba);
      slot.h.exclusive = rng() % 3 == 0;
      slot.h.owner = &slot;
      slot.h.granted = [](LbaRangeLock::Holder& h) {
        static_cast<Slot*>(h.owner)->granted.store(true, std::memory_order_release);
      };
      if (!lock.acquire(slot.h)) {
        while (!slot.granted.load(std::memory_order_acquire)) std::this_thread::yield();
      }
      for (uint64_t b = slot.h.lba; b < slot.h.lba + slot.h.blocks; ++b) {
        if (slot.h.exclusive) {
          if (exclusive[b]++ != 0 || shared[b] != 0) bad = true;
        } else {
          shared[b]++;
          if (exclusive[b] != 0) bad = true;
        }
      }
      for (uint64_t b = slot.h.lba; b < slot.h.lba + slot.h.blocks; ++b) {
        (slot.h.exclusive ? exclusive[b] : shared[b])--;
      }
      lock.release(slot.h);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();
  EXPECT_FALSE(bad.load());
  EXPECT_EQ(lock.held(), 0u);
}

}  // namespace
}  // namespace scstu::scsi
