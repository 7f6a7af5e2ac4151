// context_pool.h - per-LU pool of CommandContexts: a lock-free stack of
// indices with a generation tag (no ABA), grown in chunks under a mutex only
// when empty, so steady-state commands never allocate.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "scsi/command_context.h"

namespace scstu::scsi {

class ContextPool {
 public:
  static constexpr uint32_t kChunk = 128;
  static constexpr uint32_t kMaxChunks = 512;  // 65536 commands in flight per LU

  explicit ContextPool(LogicalUnit* unit);
  ~ContextPool();

  // nullptr when kMaxChunks * kChunk contexts are all in use.
  CommandContext* acquire();
  void release(CommandContext* ctx);

 private:
  struct Chunk {
    std::vector<std::unique_ptr<CommandContext>> contexts;
  };
  CommandContext* at(uint32_t index) const;
  bool grow();

  LogicalUnit* unit_;
  std::atomic<uint64_t> head_{0};  // generation << 32 | (index + 1), 0 = empty
  std::array<std::atomic<Chunk*>, kMaxChunks> chunks_{};
  std::mutex grow_mutex_;
  uint32_t nchunks_ = 0;  // under grow_mutex_
};

}  // namespace scstu::scsi
