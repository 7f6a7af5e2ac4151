// slot_bitmap.h - a lock-free set of N numbered slots: acquire() takes a free
// one, release() gives it back. Bits in 64-bit words, claimed with CAS, so
// there is no ABA problem and no lock on the command path.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

namespace scstu::core {

class SlotBitmap {
 public:
  explicit SlotBitmap(uint32_t slots);

  std::optional<uint32_t> acquire();
  void release(uint32_t slot);
  uint32_t size() const { return slots_; }
  uint32_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  uint32_t slots_;
  uint32_t words_;
  std::unique_ptr<std::atomic<uint64_t>[]> bits_;  // 1 = taken
  std::atomic<uint32_t> hint_{0};                  // word to start from
  std::atomic<uint32_t> in_use_{0};
};

}  // namespace scstu::core
