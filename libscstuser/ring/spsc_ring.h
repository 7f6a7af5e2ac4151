// spsc_ring.h - one side of a single-producer single-consumer tag ring in the
// shared region (protocol in ring_abi.h). Each side keeps its own index in
// private memory and only ever *stores* it to the shared control block, so a
// peer scribbling on our index cannot confuse us; the peer's index is loaded,
// and checked, on every use.
#pragma once

#include <atomic>
#include <cstdint>

#include "ring/ring_abi.h"

namespace scstu::ring {

// Writer side: push tags, publish them with one tail store.
class RingWriter {
 public:
  RingWriter() = default;
  RingWriter(scstu_ring_idx* idx, uint32_t* slots, uint32_t depth)
      : idx_(idx), slots_(slots), mask_(depth - 1), tail_(load_own_tail(idx)), published_(tail_) {}

  // Entries the reader has not consumed yet, or UINT32_MAX when its head is
  // impossible (more than depth behind our tail, or ahead of it).
  uint32_t in_flight() const {
    uint32_t head = std::atomic_ref<uint32_t>(idx_->head).load(std::memory_order_acquire);
    uint32_t used = tail_ - head;
    return used > mask_ + 1 ? UINT32_MAX : used;
  }
  // Writes `tag` into the next slot; not visible to the reader before publish().
  void push(uint32_t tag) {
    std::atomic_ref<uint32_t>(slots_[tail_ & mask_]).store(tag, std::memory_order_relaxed);
    ++tail_;
  }
  uint32_t unpublished() const { return tail_ - published_; }
  // The reader announced it is going to sleep (NEED_WAKEUP): publishing now
  // costs it a wake-up. A hint only (the flag may change right after).
  bool reader_sleeping() const {
    return (std::atomic_ref<uint32_t>(idx_->reader_flags).load(std::memory_order_relaxed) &
            SCSTU_RING_NEED_WAKEUP) != 0;
  }
  // Makes every pushed entry visible with one release store; returns true
  // when the reader asked to be woken (ring its doorbell then). The full
  // fence pairs with the reader's in prepare_sleep(): either it sees our new
  // tail, or we see its NEED_WAKEUP.
  bool publish() {
    published_ = tail_;
    std::atomic_ref<uint32_t>(idx_->tail).store(tail_, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return (std::atomic_ref<uint32_t>(idx_->reader_flags).load(std::memory_order_relaxed) &
            SCSTU_RING_NEED_WAKEUP) != 0;
  }

 private:
  static uint32_t load_own_tail(scstu_ring_idx* idx) {
    return idx ? std::atomic_ref<uint32_t>(idx->tail).load(std::memory_order_relaxed) : 0;
  }
  scstu_ring_idx* idx_ = nullptr;
  uint32_t* slots_ = nullptr;
  uint32_t mask_ = 0;
  uint32_t tail_ = 0;
  uint32_t published_ = 0;
};

// Reader side: see how many tags are ready, read them, consume them.
class RingReader {
 public:
  static constexpr uint32_t kCorrupt = UINT32_MAX;

  RingReader() = default;
  RingReader(scstu_ring_idx* idx, const uint32_t* slots, uint32_t depth)
      : idx_(idx), slots_(slots), depth_(depth), head_(load_own_head(idx)) {}

  // Tags ready to read, or kCorrupt when the writer's tail is more than
  // depth ahead of our head (a protocol violation: drop the peer).
  uint32_t available() const {
    uint32_t tail = std::atomic_ref<uint32_t>(idx_->tail).load(std::memory_order_acquire);
    uint32_t n = tail - head_;
    return n > depth_ ? kCorrupt : n;
  }
  // The i-th ready tag. The value is the peer's: check it before use.
  uint32_t peek(uint32_t i) const {
    return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(slots_[(head_ + i) & (depth_ - 1)]))
        .load(std::memory_order_relaxed);
  }
  // Releases n slots to the writer with one store.
  void consume(uint32_t n) {
    head_ += n;
    std::atomic_ref<uint32_t>(idx_->head).store(head_, std::memory_order_release);
  }
  // Doorbell suppression: announce we are about to sleep, then re-check.
  // Returns true when the ring is still empty and the caller may sleep on its
  // doorbell; false when entries arrived (or the ring is corrupt) and the
  // caller must look again. Call end_sleep() after waking either way.
  bool prepare_sleep() {
    std::atomic_ref<uint32_t>(idx_->reader_flags)
        .store(SCSTU_RING_NEED_WAKEUP, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (available() != 0) {
      end_sleep();
      return false;
    }
    return true;
  }
  void end_sleep() {
    std::atomic_ref<uint32_t>(idx_->reader_flags).store(0, std::memory_order_relaxed);
  }

 private:
  static uint32_t load_own_head(scstu_ring_idx* idx) {
    return idx ? std::atomic_ref<uint32_t>(idx->head).load(std::memory_order_relaxed) : 0;
  }
  scstu_ring_idx* idx_ = nullptr;
  const uint32_t* slots_ = nullptr;
  uint32_t depth_ = 1;
  uint32_t head_ = 0;
};

}  // namespace scstu::ring
