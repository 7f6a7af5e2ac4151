#include "scsi/sbc_advanced_job.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"

namespace scstu::scsi {

void BlockJob::start(std::unique_ptr<BlockJob> job) { job.release()->kick(0); }

void submit_block_io(BlockDevice& device, BlockRequest& req, const BlockIo& io,
                     void (*done)(BlockRequest* req, int error), void* context) {
  req = BlockRequest{};
  req.op = io.op;
  req.flags = io.flags;
  req.lba = io.lba;
  req.blocks = io.blocks;
  req.iov = io.iov;
  req.done = done;
  req.context = context;
  device.submit(req);
}

void BlockJob::submit(BlockDevice* device, BlockOp op, uint64_t lba, uint64_t blocks,
                      std::span<const iovec> iov, uint32_t flags) {
  submit_block_io(*device, request_, BlockIo{op, lba, blocks, iov, flags}, &BlockJob::on_done,
                  this);
}

void BlockJob::on_done(BlockRequest* req, int error) {
  static_cast<BlockJob*>(req->context)->kick(error);
}

// Trampoline: the first entry runs next() in a loop; an entry while it runs
// (an inline completion, or one on another thread) only leaves its result
// and counts, and the running loop picks it up.
void BlockJob::kick(int error) {
  error_ = error;
  if (entries_.fetch_add(1, std::memory_order_acq_rel) != 0) return;
  do {
    if (!next(error_)) {
      delete this;
      return;
    }
  } while (entries_.fetch_sub(1, std::memory_order_acq_rel) != 1);
}

bool LbaRangeLock::conflict(const Holder& a, const Holder& b) {
  if (!a.exclusive && !b.exclusive) return false;
  return a.lba < b.lba + b.blocks && b.lba < a.lba + a.blocks;
}

bool LbaRangeLock::grantable_locked(const Holder& h, size_t waiters_before) const {
  if (h.exclusive && fast_shared_.load(std::memory_order_seq_cst) != 0) return false;
  for (const Holder* x : held_) {
    if (conflict(*x, h)) return false;
  }
  for (size_t i = 0; i < waiters_before; ++i) {
    if (conflict(*waiting_[i], h)) return false;
  }
  return true;
}

bool LbaRangeLock::acquire(Holder& h) {
  h.fast = false;
  if (!h.exclusive) {
    // Fast path. Paired with the exclusive side's increment-then-check:
    // of two racing acquirers at least one sees the other (seq_cst).
    fast_shared_.fetch_add(1, std::memory_order_seq_cst);
    if (exclusive_.load(std::memory_order_seq_cst) == 0) {
      h.fast = true;
      return true;
    }
    if (fast_shared_.fetch_sub(1, std::memory_order_seq_cst) == 1) grant_waiters();
  }
  std::lock_guard lock(mutex_);
  if (h.exclusive) exclusive_.fetch_add(1, std::memory_order_seq_cst);
  if (grantable_locked(h, waiting_.size())) {
    held_.push_back(&h);
    return true;
  }
  waiting_.push_back(&h);
  return false;
}

void LbaRangeLock::release(Holder& h) {
  if (h.fast) {
    h.fast = false;
    if (fast_shared_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        exclusive_.load(std::memory_order_seq_cst) != 0) {
      grant_waiters();
    }
    return;
  }
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < held_.size(); ++i) {
      if (held_[i] == &h) {
        held_[i] = held_.back();
        held_.pop_back();
        break;
      }
    }
    if (h.exclusive) exclusive_.fetch_sub(1, std::memory_order_seq_cst);
  }
  grant_waiters();
}

void LbaRangeLock::grant_waiters() {
  std::vector<Holder*> granted;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < waiting_.size();) {
      Holder* w = waiting_[i];
      if (grantable_locked(*w, i)) {
        held_.push_back(w);
        waiting_.erase(waiting_.begin() + static_cast<ptrdiff_t>(i));
        granted.push_back(w);
      } else {
        ++i;
      }
    }
  }
  for (Holder* w : granted) w->granted(*w);
}

size_t LbaRangeLock::held() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

SbcAdvancedState& sbc_advanced_state(LogicalUnit& lu) {
  // Created once, from the LogicalUnit's constructor (before any command can
  // run), and owned by its runtime: it lives and dies with the unit.
  LuRuntime& rt = lu.runtime();
  if (rt.sbc == nullptr) {
    rt.sbc_storage = std::make_shared<SbcAdvancedState>();
    rt.sbc = rt.sbc_storage.get();
  }
  return *rt.sbc;
}

uint32_t sbc_write_flags(const CommandContext& ctx, bool fua_bit) {
  const LogicalUnit& lu = ctx.unit();
  if (lu.config().write_cache == WriteCacheMode::kNvCache) return 0;
  return (fua_bit || !lu.write_cache_enabled()) ? kBlockFua : 0;
}

}  // namespace scstu::scsi

namespace scstu::scsi {

AlignedBuffer::AlignedBuffer(size_t bytes) : size_(bytes) {
  const size_t rounded = (bytes + 4095) / 4096 * 4096;
  data_ = static_cast<uint8_t*>(std::aligned_alloc(4096, rounded ? rounded : 4096));
  if (data_ == nullptr) throw std::bad_alloc();
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

std::span<const iovec> AlignedBuffer::iov(size_t len) {
  iov_ = iovec{data_, std::min(len, size_)};
  return {&iov_, 1};
}

}  // namespace scstu::scsi

namespace scstu::scsi {

ExtentJob::ExtentJob(CommandContext& ctx, BlockDevice* device, uint32_t block_size,
                     std::vector<Extent> extents, Mode mode,
                     std::vector<std::vector<uint8_t>> patterns, uint32_t write_flags,
                     bool flush_at_end)
    : BlockJob(ctx),
      device_(device),
      block_size_(block_size),
      extents_(std::move(extents)),
      mode_(mode),
      patterns_(std::move(patterns)),
      flags_(write_flags),
      native_write_same_(device->capabilities().write_same),
      flush_at_end_(flush_at_end),
      lock_(&sbc_advanced_state(ctx.unit()).ranges) {
  for (const Extent& e : extents_) largest_extent_ = std::max(largest_extent_, e.blocks);
  hold_.owner = this;
  hold_.granted = [](LbaRangeLock::Holder& h) { static_cast<ExtentJob*>(h.owner)->resume(); };
  if (mode_ != Mode::kUnmap && patterns_.empty()) {
    patterns_.emplace_back(block_size_, 0);
  }
  if (mode_ == Mode::kUnmap) patterns_.resize(1);  // one pass, no data
}

ExtentJob::~ExtentJob() {
  if (holding_) lock_->release(hold_);
}

void ExtentJob::prepare_chunk() {
  if (filled_) return;
  // No bigger than the largest extent: a one-block WRITE SAME needs one block.
  const size_t chunk_blocks =
      native_write_same_
          ? 1
          : std::max<size_t>(1, std::min<uint64_t>(largest_extent_, kChunkBytes / block_size_));
  if (chunk_.size() < chunk_blocks * block_size_)
    chunk_ = AlignedBuffer(chunk_blocks * block_size_);
  const std::vector<uint8_t>& p = patterns_[pass_];
  for (size_t off = 0; off + block_size_ <= chunk_.size(); off += block_size_) {
    std::memcpy(chunk_.data() + off, p.data(), std::min<size_t>(p.size(), block_size_));
  }
  filled_ = true;
}

bool ExtentJob::next(int error) {
  if (error != 0) {
    const bool fallback = mode_ == Mode::kUnmapOrFill && error == -EOPNOTSUPP;
    if (!fallback) {
      const uint64_t lba = extent_ < extents_.size() ? extents_[extent_].lba + done_ : 0;
      ctx().complete_block_error(error, lba);
      return false;
    }
    mode_ = Mode::kFill;  // retry this request as writes
  } else {
    done_ += in_flight_;
  }
  in_flight_ = 0;
  while (extent_ < extents_.size() && done_ >= extents_[extent_].blocks) {
    if (holding_) {
      holding_ = false;
      lock_->release(hold_);
    }
    ++extent_;
    done_ = 0;
    if (extent_ == extents_.size() && pass_ + 1 < patterns_.size()) {
      ++pass_;  // SANITIZE OVERWRITE: the next pass, from the start
      extent_ = 0;
      filled_ = false;
    }
  }
  if (extent_ >= extents_.size()) {
    if (flush_at_end_ && !flushing_ && mode_ == Mode::kFill) {
      flushing_ = true;
      submit(device_, BlockOp::kFlush, 0, 0, {}, 0);
      return true;
    }
    ctx().complete_good(ctx().data_length());
    return false;
  }
  const Extent& e = extents_[extent_];
  if (!holding_) {
    holding_ = true;
    hold_.lba = e.lba;
    hold_.blocks = e.blocks;
    hold_.exclusive = false;
    if (!lock_->acquire(hold_)) return true;  // granted() resumes us here
  }
  const uint64_t lba = e.lba + done_;
  const uint64_t remaining = e.blocks - done_;
  if (mode_ != Mode::kFill) {
    in_flight_ = std::min<uint64_t>(remaining, uint64_t{1} << 30);
    submit(device_, BlockOp::kUnmap, lba, in_flight_, {}, 0);
    return true;
  }
  prepare_chunk();
  if (native_write_same_) {
    in_flight_ = std::min<uint64_t>(remaining, uint64_t{1} << 30);
    submit(device_, BlockOp::kWriteSame, lba, in_flight_, chunk_.iov(block_size_), flags_);
  } else {
    in_flight_ = std::min<uint64_t>(remaining, chunk_.size() / block_size_);
    submit(device_, BlockOp::kWrite, lba, in_flight_, chunk_.iov(in_flight_ * block_size_), flags_);
  }
  return true;
}

}  // namespace scstu::scsi
