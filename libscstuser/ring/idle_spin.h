// idle_spin.h - how long a ring reader polls before it announces NEED_WAKEUP
// and sleeps. Time-based, so the budget means the same on every CPU: long
// enough to span the other side's turnaround between batches (then neither
// side makes a syscall under load), short enough not to hold a core when idle.
#pragma once

#include <sched.h>
#include <time.h>

#include <cstdint>

namespace scstu::ring {

inline constexpr uint64_t kIdleSpinNanos = 50000;
inline constexpr uint64_t kPureSpinNanos = 5000;

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

// Polls `ready()` for up to kIdleSpinNanos; true as soon as it holds. After
// the first few microseconds each round yields the CPU: on an oversubscribed
// machine the thread we wait for may be queued behind us on this core.
template <typename Ready>
bool spin_until(Ready ready) {
  const uint64_t start = monotonic_nanos();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    const uint64_t now = monotonic_nanos();
    if (now - start >= kIdleSpinNanos) return false;
    if (now - start >= kPureSpinNanos) sched_yield();
  }
}

}  // namespace scstu::ring
