#include "core/slot_bitmap.h"

#include <algorithm>
#include <bit>

namespace scstu::core {

SlotBitmap::SlotBitmap(uint32_t slots)
    : slots_(slots), words_((slots + 63) / 64), bits_(new std::atomic<uint64_t>[words_]) {
  for (uint32_t w = 0; w < words_; ++w) {
    // Bits past the last slot are permanently taken.
    const uint32_t valid = std::min<uint32_t>(64, slots - w * 64);
    bits_[w].store(valid == 64 ? 0 : ~0ull << valid, std::memory_order_relaxed);
  }
}

std::optional<uint32_t> SlotBitmap::acquire() {
  const uint32_t start = words_ ? hint_.load(std::memory_order_relaxed) % words_ : 0;
  for (uint32_t i = 0; i < words_; ++i) {
    const uint32_t w = (start + i) % words_;
    uint64_t cur = bits_[w].load(std::memory_order_relaxed);
    while (cur != ~0ull) {
      const int bit = std::countr_one(cur);
      if (bits_[w].compare_exchange_weak(cur, cur | (1ull << bit), std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        hint_.store(w, std::memory_order_relaxed);
        in_use_.fetch_add(1, std::memory_order_relaxed);
        return w * 64 + static_cast<uint32_t>(bit);
      }
    }
  }
  return std::nullopt;
}

void SlotBitmap::release(uint32_t slot) {
  if (slot >= slots_) return;
  in_use_.fetch_sub(1, std::memory_order_relaxed);
  bits_[slot / 64].fetch_and(~(1ull << (slot % 64)), std::memory_order_release);
}

}  // namespace scstu::core
