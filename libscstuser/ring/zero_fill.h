// zero_fill.h - zeroes a descriptor-sized object with plain 16-byte stores.
// GCC turns a 128-byte memset, `T x{}` and zeroing loops alike into `rep
// stosq`, whose microcode start-up costs more than the eight stores: on the
// ring's hot path that was about a tenth of the producer's time per command
// (perf, docs/PERFORMANCE.md). Unrolled statements are left as stores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace scstu::ring {
namespace detail {

typedef uint64_t ZeroChunk __attribute__((vector_size(16), aligned(8), may_alias));

template <size_t... I>
inline void zero_chunks(ZeroChunk* p, std::index_sequence<I...>) {
  ((p[I] = ZeroChunk{}), ...);
}

}  // namespace detail

// Zeroes the N bytes at p (N a multiple of 16; p 8-byte aligned).
template <size_t N>
inline void zero_fill(void* p) {
  static_assert(N % 16 == 0 && N <= 256, "whole 16-byte chunks, descriptor-sized");
  detail::zero_chunks(static_cast<detail::ZeroChunk*>(p), std::make_index_sequence<N / 16>{});
}

}  // namespace scstu::ring
