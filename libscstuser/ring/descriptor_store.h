// descriptor_store.h - filling and writing ring descriptors on the hot path.
//
// zero_fill: GCC turns a 128-byte memset, `T x{}` and zeroing loops alike
// into `rep stosq`, whose microcode start-up costs more than the eight stores:
// about a tenth of the producer's time per command (perf,
// docs/PERFORMANCE.md). Unrolled statements stay stores.
//
// prefetch_for_write: the peer reads every descriptor we write (and we read
// every one it writes), so when we write a slot again its cache lines are in
// the peer CPU's cache and each store waits for its line to come back; a few
// dozen such stores fill the store buffer and stall this CPU (perf: the
// producer's time went to ordinary stack pushes right after writing a
// descriptor). Asking for the lines in exclusive state as soon as we know we
// will write them (a freed tag, the next completion) overlaps those round trips
// with other work. A hint only: no effect on what is read or written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace scstu::ring {
namespace detail {

typedef uint64_t Chunk16 __attribute__((vector_size(16), aligned(8), may_alias));

template <size_t... I>
inline void zero_chunks(Chunk16* p, std::index_sequence<I...>) {
  ((p[I] = Chunk16{}), ...);
}

}  // namespace detail

// Zeroes the N bytes at p (N a multiple of 16; p 8-byte aligned).
template <size_t N>
inline void zero_fill(void* p) {
  static_assert(N % 16 == 0 && N <= 256, "whole 16-byte chunks, descriptor-sized");
  detail::zero_chunks(static_cast<detail::Chunk16*>(p), std::make_index_sequence<N / 16>{});
}

// Starts fetching the cache line holding p for writing.
#if defined(__x86_64__)
namespace detail {
inline bool cpu_has_prefetchw() {
  unsigned a, b, c, d;  // CPUID 8000_0001h ECX bit 8: PREFETCHW (all AMD64, Intel since Broadwell)
  return __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c & (1u << 8)) != 0;
}
inline const bool kHasPrefetchW = cpu_has_prefetchw();
}  // namespace detail

inline void prefetch_for_write(const void* p) {
  if (detail::kHasPrefetchW)
    asm volatile("prefetchw %0" ::"m"(*static_cast<const char*>(p)));
  else
    __builtin_prefetch(p, 1);
}
#else
inline void prefetch_for_write(const void* p) { __builtin_prefetch(p, 1); }
#endif

}  // namespace scstu::ring
