#include "scsi/context_pool.h"

namespace scstu::scsi {

ContextPool::ContextPool(LogicalUnit* unit) : unit_(unit) { grow(); }

ContextPool::~ContextPool() {
  for (auto& c : chunks_) delete c.load(std::memory_order_relaxed);
}

CommandContext* ContextPool::at(uint32_t index) const {
  return chunks_[index / kChunk].load(std::memory_order_acquire)->contexts[index % kChunk].get();
}

bool ContextPool::grow() {
  std::lock_guard lock(grow_mutex_);
  if ((head_.load(std::memory_order_acquire) & 0xFFFFFFFFu) != 0)
    return true;  // refilled meanwhile
  if (nchunks_ == kMaxChunks) return false;
  auto chunk = std::make_unique<Chunk>();
  chunk->contexts.reserve(kChunk);
  const uint32_t first = nchunks_ * kChunk;
  for (uint32_t i = 0; i < kChunk; ++i) {
    auto ctx = std::make_unique<CommandContext>(unit_);
    ctx->pool_index = first + i;
    chunk->contexts.push_back(std::move(ctx));
  }
  chunks_[nchunks_].store(chunk.release(), std::memory_order_release);
  ++nchunks_;
  for (uint32_t i = 0; i < kChunk; ++i) release(at(first + i));
  return true;
}

CommandContext* ContextPool::acquire() {
  for (;;) {
    uint64_t head = head_.load(std::memory_order_acquire);
    const uint32_t top = static_cast<uint32_t>(head);
    if (top == 0) {
      if (!grow()) return nullptr;
      continue;
    }
    CommandContext* ctx = at(top - 1);
    const uint32_t next = ctx->pool_next.load(std::memory_order_relaxed);
    const uint64_t desired = ((head >> 32) + 1) << 32 | next;
    if (head_.compare_exchange_weak(head, desired, std::memory_order_acq_rel)) return ctx;
  }
}

void ContextPool::release(CommandContext* ctx) {
  uint64_t head = head_.load(std::memory_order_relaxed);
  for (;;) {
    ctx->pool_next.store(static_cast<uint32_t>(head), std::memory_order_relaxed);
    const uint64_t desired = ((head >> 32) + 1) << 32 | (ctx->pool_index + 1);
    if (head_.compare_exchange_weak(head, desired, std::memory_order_release,
                                    std::memory_order_relaxed)) {
      return;
    }
  }
}

}  // namespace scstu::scsi
