// spin_lock.h - a test-and-set lock for critical sections of a few stores
// (publishing a ring entry). Uncontended it costs one atomic exchange; never
// hold it across anything that can block for long.
#pragma once

#include <atomic>

namespace scstu::ring {

class SpinLock {
 public:
  void lock() {
    while (flag_.test_and_set(std::memory_order_acquire)) {
      while (flag_.test(std::memory_order_relaxed)) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
    }
  }
  void unlock() { flag_.clear(std::memory_order_release); }

 private:
  std::atomic_flag flag_ = ATOMIC_FLAG_INIT;
};

}  // namespace scstu::ring
