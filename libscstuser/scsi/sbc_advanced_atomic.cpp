// COMPARE AND WRITE, ORWRITE(16) and WRITE ATOMIC(16): writes that must not
// interleave with other writes to the same blocks (SBC-3 5.2, 5.10; SBC-4
// WRITE ATOMIC). Each holds its LBA range exclusively in the unit's
// LbaRangeLock from the read until the write has completed.
#include <cstring>

#include "scsi/cdb.h"
#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/sbc_advanced_job.h"

namespace scstu::scsi {

namespace {

class RangeWriteJob : public BlockJob {
 public:
  enum class Kind : uint8_t { kCompareAndWrite, kOrWrite, kAtomic };

  RangeWriteJob(CommandContext& ctx, Kind kind)
      : BlockJob(ctx), kind_(kind), lock_(sbc_advanced_state(ctx.unit()).ranges) {
    const CdbDecode& d = ctx.decoded();
    hold_.lba = d.lba;
    hold_.blocks = d.blocks;
    hold_.exclusive = true;
    hold_.owner = this;
    hold_.granted = [](LbaRangeLock::Holder& h) { static_cast<RangeWriteJob*>(h.owner)->resume(); };
  }
  ~RangeWriteJob() override {
    if (locked_) lock_.release(hold_);
  }

 protected:
  bool next(int error) override {
    const CdbDecode& d = ctx().decoded();
    const size_t bytes = size_t{d.blocks} * ctx().block_size();
    if (error != 0) return fail(error);
    switch (step_++) {
      case 0:
        if (!lock_.acquire(hold_)) return true;  // resume() brings us to step 1
        [[fallthrough]];
      case 1:
        locked_ = true;
        if (kind_ == Kind::kAtomic) return write_data(0);
        step_ = 2;
        medium_ = AlignedBuffer(bytes);
        submit(ctx().device(), BlockOp::kRead, d.lba, d.blocks, medium_.iov(bytes), 0);
        return true;
      case 2:
        return kind_ == Kind::kCompareAndWrite ? compare_then_write(bytes) : or_then_write(bytes);
      default:
        // Release before completing: a waiter may start as soon as we reply.
        lock_.release(hold_);
        locked_ = false;
        ctx().complete_good(ctx().data_length());
        return false;
    }
  }

 private:
  bool fail(int error) {
    lock_.release(hold_);
    locked_ = false;
    ctx().complete_block_error(error, ctx().decoded().lba);
    return false;
  }

  uint32_t flags() const { return sbc_write_flags(ctx(), ctx().cdb()[1] & 0x08); }

  // Write `blocks` from the data-out buffer at byte `offset`.
  bool write_data(size_t offset) {
    const CdbDecode& d = ctx().decoded();
    step_ = 3;
    const size_t bytes = size_t{d.blocks} * ctx().block_size();
    submit(ctx().device(), BlockOp::kWrite, d.lba, d.blocks, ctx().data_iov(0, offset, bytes),
           flags());
    return true;
  }

  // SBC-3 5.2: compare the verify instance (first half of the data-out)
  // with the medium; on a difference, MISCOMPARE with the offset of the
  // first differing byte in INFORMATION, and nothing is written.
  bool compare_then_write(size_t bytes) {
    std::vector<uint8_t> expected(bytes);
    ctx().data().copy_to(0, expected);
    if (std::memcmp(expected.data(), medium_.data(), bytes) != 0) {
      size_t i = 0;
      while (expected[i] == medium_.data()[i]) ++i;
      lock_.release(hold_);
      locked_ = false;
      ctx().complete_check(ctx().sense(kMiscompareDuringVerify).information(i));
      return false;
    }
    return write_data(bytes);
  }

  // SBC-3 5.10: the data-out is ORed into the blocks read.
  bool or_then_write(size_t bytes) {
    std::vector<uint8_t> data(bytes);
    ctx().data().copy_to(0, data);
    uint8_t* m = medium_.data();
    for (size_t i = 0; i < bytes; ++i) m[i] |= data[i];
    const CdbDecode& d = ctx().decoded();
    step_ = 3;
    submit(ctx().device(), BlockOp::kWrite, d.lba, d.blocks, medium_.iov(bytes), flags());
    return true;
  }

  Kind kind_;
  LbaRangeLock& lock_;
  LbaRangeLock::Holder hold_;
  bool locked_ = false;
  int step_ = 0;
  AlignedBuffer medium_;
};

bool within_max_transfer(CommandContext& ctx) {
  if (ctx.decoded().transfer_length > ctx.unit().config().max_transfer_bytes) {
    ctx.complete_check(kInvalidFieldInCdb, {true, ctx.op().length_offset, kNoBit});
    return false;
  }
  return true;
}

}  // namespace

// SBC-3 5.2: NUMBER OF LOGICAL BLOCKS (byte 13) blocks are compared, then
// written; the data-out holds both instances (2 x n blocks).
void sbc_compare_and_write(CommandContext& ctx) {
  const CdbDecode& d = ctx.decoded();
  if (d.blocks == 0) {
    // SBC-3 5.2: zero blocks compares and writes nothing, and no Data-Out
    // belongs to the command. An initiator sending Data-Out anyway meant a
    // count the one-byte field cannot hold (256 wraps to 0): completing GOOD
    // would acknowledge a compare and write that never happened, so the
    // field is refused instead (FCP-4 9.4.2 allows ending an overflowing write).
    if (ctx.request().expected_length != 0) {
      return ctx.complete_check(kInvalidFieldInCdb, {true, 13, kNoBit});
    }
    return ctx.complete_good(0);
  }
  // VPD B0h MAXIMUM COMPARE AND WRITE LENGTH.
  if (d.blocks > ctx.unit().config().max_compare_write_blocks) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, 13, kNoBit});
  }
  BlockJob::start(std::make_unique<RangeWriteJob>(ctx, RangeWriteJob::Kind::kCompareAndWrite));
}

// SBC-3 5.10 ORWRITE(16): read, OR with the data-out, write.
void sbc_orwrite(CommandContext& ctx) {
  const CdbDecode& d = ctx.decoded();
  if (d.blocks == 0) return ctx.complete_good(0);
  if (!within_max_transfer(ctx)) return;
  BlockJob::start(std::make_unique<RangeWriteJob>(ctx, RangeWriteJob::Kind::kOrWrite));
}

// SBC-4 WRITE ATOMIC(16): TRANSFER LENGTH (bytes 12-13) within VPD B0h's
// MAXIMUM ATOMIC TRANSFER LENGTH; alignment and granularity are 1. The
// write is one device request, and no other write of this library's
// exclusive or shared range holders sees it half done.
void sbc_write_atomic(CommandContext& ctx) {
  const CdbDecode& d = ctx.decoded();
  if (d.blocks == 0) return ctx.complete_good(0);
  const LogicalUnitConfig& cfg = ctx.unit().config();
  const uint32_t bs = ctx.block_size();
  const uint32_t max_blocks = cfg.max_atomic_transfer_blocks
                                  ? cfg.max_atomic_transfer_blocks
                                  : (bs ? cfg.max_transfer_bytes / bs : 0);
  if (d.blocks > max_blocks) return ctx.complete_check(kInvalidFieldInCdb, {true, 12, kNoBit});
  BlockJob::start(std::make_unique<RangeWriteJob>(ctx, RangeWriteJob::Kind::kAtomic));
}

}  // namespace scstu::scsi
