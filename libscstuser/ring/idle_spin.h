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
  // After false the caller sleeps (or finds work at its last check) and
  // reports how long with waited().
  template <typename Ready>
  bool spin(Ready ready) {
    const uint64_t start = monotonic_nanos();
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (ready()) return true;
        cpu_relax();
      }
      spent_ = monotonic_nanos() - start;
      if (spent_ >= budget_) return false;
      if (spent_ >= kPureNanos) sched_yield();
    }
  }
  // After a failed spin(): the caller waited `nanos` more (0 when work turned
  // up before it slept). The whole wait decides the next budget: a wait that
  // polling up to kMaxNanos would have covered grows the budget to twice that
  // wait (a sleep and a doorbell cost more than the poll: the peer is busy
  // with a batch and answers soon); a longer one halves it (the peer is idle
  // or not running; polling only burns a CPU it may need).
  //
  // Deciding on the whole wait matters: halving on every failed poll (the
  // old rule) let the budget fall below the time the peer needs for a batch,
  // after which every batch cost a sleep and a wake-up on each side and the
  // budget never recovered (docs/PERFORMANCE.md, ring: most of the 500 ns
  // per command at QD 128 was this waiting, not work).
  void waited(uint64_t nanos) {
    if (nanos == 0) return;  // work came just as the poll ended: the budget fit
    const uint64_t total = spent_ + nanos;
    if (total <= kMaxNanos)
      budget_ = std::min(kMaxNanos, std::max(budget_, 2 * total));
    else
      budget_ /= 2;
  }
  uint64_t budget() const { return budget_; }

 private:
  uint64_t budget_ = kMaxNanos;
  uint64_t spent_ = 0;
};

}  // namespace scstu::ring
