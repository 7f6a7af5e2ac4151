// idle_spin.h - how long a ring reader polls before it announces NEED_WAKEUP
// and sleeps. Adaptive, like an adaptive mutex: polling pays when the other
// side answers within the budget (then neither side makes a syscall under
// load); on an oversubscribed CPU the other side is often not running at all,
// polling only delays it, and the budget shrinks towards plain blocking.
#pragma once

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstdint>

namespace scstu::ring {

inline uint64_t monotonic_nanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class IdleSpin {
 public:
  static constexpr uint64_t kMaxNanos = 50000;  // longest poll before sleeping
  static constexpr uint64_t kPureNanos = 5000;  // then each round also yields the CPU

  // Polls `ready()` for up to the current budget; true as soon as it holds.
  template <typename Ready>
  bool spin(Ready ready) {
    const uint64_t start = monotonic_nanos();
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (ready()) return true;
        cpu_relax();
      }
      const uint64_t spent = monotonic_nanos() - start;
      if (spent >= budget_) {
        budget_ /= 2;  // polling did not pay this time
        return false;
      }
      if (spent >= kPureNanos) sched_yield();
    }
  }
  // After a sleep of `nanos`: a short sleep means polling would have caught it.
  void slept(uint64_t nanos) {
    if (nanos < kMaxNanos) budget_ = std::min(kMaxNanos, std::max(2 * budget_, kPureNanos));
  }
  uint64_t budget() const { return budget_; }

 private:
  uint64_t budget_ = kMaxNanos;
};

}  // namespace scstu::ring
