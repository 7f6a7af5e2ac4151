// sbc_advanced_job.h - what the advanced SBC commands (sbc_advanced_*.cpp,
// xcopy*.cpp) share: a multi-step block I/O job, the per-LU LBA range lock
// that makes COMPARE AND WRITE atomic, and the per-LU state they keep.
//
// A BlockJob is one command's state machine: next() is called with the
// result of the previous step and either submits one more block request
// (to this unit's BlockDevice or, for EXTENDED COPY, another unit's) or
// completes the command. Completions may arrive on any thread or inline
// inside submit(); a trampoline runs next() in a loop instead of recursing,
// so a synchronous device and a long copy never grow the stack.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "handler/block_device.h"
#include "scsi/command_context.h"

namespace scstu::scsi {

class LbaRangeLock;

// One request of the library's own block I/O (BlockJob's steps, the sanitize
// operation): what to do, before the completion is attached.
struct BlockIo {
  BlockOp op = BlockOp::kRead;
  uint64_t lba = 0;
  uint64_t blocks = 0;
  std::span<const iovec> iov;
  uint32_t flags = 0;
};

// The one path by which the library submits its own block requests: `req` is
// reset to `io` and handed to `device`; done(req, error) runs once, on any
// thread or inline inside this call, with req->context == context.
void submit_block_io(BlockDevice& device, BlockRequest& req, const BlockIo& io,
                     void (*done)(BlockRequest* req, int error), void* context);

class BlockJob {
 public:
  explicit BlockJob(CommandContext& ctx) : ctx_(ctx) {}
  virtual ~BlockJob() = default;
  BlockJob(const BlockJob&) = delete;
  BlockJob& operator=(const BlockJob&) = delete;

  // Run the job: next(0) first. The job deletes itself when next() returns
  // false (the command is then complete).
  static void start(std::unique_ptr<BlockJob> job);

  // Called by LbaRangeLock when a waited-for range is granted.
  void resume() { kick(0); }

 protected:
  // One step. `error`: 0 or the previous request's -errno. Return true after
  // submit() or after a lock wait began; false once ctx() is completed.
  virtual bool next(int error) = 0;

  void submit(BlockDevice* device, BlockOp op, uint64_t lba, uint64_t blocks,
              std::span<const iovec> iov, uint32_t flags);
  CommandContext& ctx() const { return ctx_; }

 private:
  static void on_done(BlockRequest* req, int error);
  void kick(int error);

  CommandContext& ctx_;
  BlockRequest request_{};
  std::atomic<int> entries_{0};
  int error_ = 0;
};

// Ranges of logical blocks held by commands in flight. Exclusive holders
// (COMPARE AND WRITE, ORWRITE, WRITE ATOMIC) exclude every overlapping
// holder; shared holders (writes) exclude only exclusive ones. Waiters are
// granted in arrival order among those that overlap, so an exclusive waiter
// is not starved.
//
// Shared holds are cheap while no exclusive range is held or awaited: one
// atomic increment and one load, no lock, no list (the fast path a plain
// WRITE can afford). An exclusive acquirer then waits until those fast
// shared holds, whatever their range, have drained.
class LbaRangeLock {
 public:
  struct Holder {
    uint64_t lba = 0;
    uint64_t blocks = 0;
    bool exclusive = false;
    // Called (from the releasing thread, no lock held) when a wait ends.
    void (*granted)(Holder& h) = nullptr;
    void* owner = nullptr;
    bool fast = false;  // the lock's: held through the fast path
  };
  // True: held now. False: queued; h.granted(h) runs when it is granted.
  bool acquire(Holder& h);
  void release(Holder& h);
  // Holds in the list (exclusive ones and slow-path shared ones).
  size_t held() const;

 private:
  static bool conflict(const Holder& a, const Holder& b);
  bool grantable_locked(const Holder& h, size_t waiters_before) const;
  void grant_waiters();

  mutable std::mutex mutex_;
  std::vector<Holder*> held_;
  std::deque<Holder*> waiting_;
  std::atomic<uint64_t> exclusive_{0};    // exclusive holders + waiters
  std::atomic<uint64_t> fast_shared_{0};  // shared holds taken on the fast path
};

struct SbcAdvancedState {
  LbaRangeLock ranges;
};

// The per-LU state of these commands, owned by the unit's LuRuntime. The
// first call (the LogicalUnit constructor's) creates it.
SbcAdvancedState& sbc_advanced_state(LogicalUnit& lu);

// Write flags of a writing command: FUA when the CDB asks (bit 3 of byte 1)
// or the write cache is off; none with NV_CACHE (as sbc_rw.cpp does).
uint32_t sbc_write_flags(const CommandContext& ctx, bool fua_bit);

}  // namespace scstu::scsi

namespace scstu::scsi {

// A block-aligned scratch buffer for device I/O (O_DIRECT backends need
// 4096-byte alignment, which std::vector does not give).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  ~AlignedBuffer();
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<uint8_t> span() const { return {data_, size_}; }
  // One iovec over the first `len` bytes; valid while the buffer lives.
  std::span<const iovec> iov(size_t len);

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  iovec iov_{};
};

// Largest single device request these commands issue (bytes).
inline constexpr size_t kChunkBytes = 1u << 20;

}  // namespace scstu::scsi

namespace scstu::scsi {

// Writes a pattern over extents of a device, or deallocates them, then
// completes the command GOOD (or with the sense of the first error). Used by
// WRITE SAME, UNMAP, FORMAT UNIT and SANITIZE.
class ExtentJob : public BlockJob {
 public:
  struct Extent {
    uint64_t lba = 0;
    uint64_t blocks = 0;
  };
  enum class Mode : uint8_t {
    kFill,         // write the pattern (kWriteSame when the device has it)
    kUnmap,        // deallocate; an error fails the command
    kUnmapOrFill,  // deallocate; a device without kUnmap gets the pattern written
  };
  // `patterns`: one block each; every pattern is one pass over all extents
  // (SANITIZE OVERWRITE passes). Fill and fallback need at least one.
  // `flush_at_end`: one kFlush after the last write instead of FUA on each
  // (whole-medium FORMAT UNIT / SANITIZE).
  ExtentJob(CommandContext& ctx, BlockDevice* device, uint32_t block_size,
            std::vector<Extent> extents, Mode mode, std::vector<std::vector<uint8_t>> patterns,
            uint32_t write_flags, bool flush_at_end = false);
  ~ExtentJob() override;

 protected:
  bool next(int error) override;

 private:
  void prepare_chunk();

  BlockDevice* device_;
  uint32_t block_size_;
  std::vector<Extent> extents_;
  Mode mode_;
  std::vector<std::vector<uint8_t>> patterns_;
  uint32_t flags_;
  bool native_write_same_;
  size_t pass_ = 0;
  size_t extent_ = 0;
  uint64_t done_ = 0;       // blocks of the current extent finished
  uint64_t in_flight_ = 0;  // blocks of the request in flight
  bool filled_ = false;     // chunk_ holds patterns_[pass_]
  bool flush_at_end_ = false;
  bool flushing_ = false;
  // The current extent, held shared in the unit's LbaRangeLock so an
  // exclusive writer (COMPARE AND WRITE) never interleaves with it.
  LbaRangeLock* lock_ = nullptr;
  LbaRangeLock::Holder hold_;
  bool holding_ = false;
  uint64_t largest_extent_ = 0;
  AlignedBuffer chunk_;
};

}  // namespace scstu::scsi
