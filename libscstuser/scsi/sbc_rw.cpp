// READ, WRITE, VERIFY, WRITE AND VERIFY (6/10/12/16/32) over the BlockDevice
// (SBC-3 5.7-5.11, 5.27-5.30, 5.31-5.36). The framework has checked the CDB,
// write protection and the LBA range before these run.
#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"
#include "scsi/sbc_advanced_job.h"

namespace scstu::scsi {

namespace {

constexpr uint8_t kVariableLength = 0x7F;

// FUA (SBC-3: byte 1 bit 3; byte 10 in the 32-byte CDBs; none in READ/WRITE 6).
bool fua_bit(const CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  if (ctx.op().cdb_length == 6) return false;
  return (ctx.op().opcode == kVariableLength ? cdb[10] : cdb[1]) & 0x08;
}

// The BlockRequest flags of a write: durable before status when FUA asks for
// it or the write cache is disabled (WCE = 0); NV_CACHE makes the cache
// non-volatile, so neither applies (the seed's vdisk NV_CACHE).
uint32_t write_flags(const CommandContext& ctx, bool force_fua) {
  const LogicalUnit& lu = ctx.unit();
  if (lu.config().write_cache == WriteCacheMode::kNvCache) return 0;
  return (force_fua || fua_bit(ctx) || !lu.write_cache_enabled()) ? kBlockFua : 0;
}

bool within_max_transfer(CommandContext& ctx) {
  if (ctx.decoded().transfer_length > ctx.unit().config().max_transfer_bytes) {
    ctx.complete_check(kInvalidFieldInCdb, {true, ctx.op().length_offset, kNoBit});
    return false;
  }
  return true;
}

void data_done(CommandContext& ctx, unsigned, int error) {
  if (error != 0) return ctx.complete_block_error(error, ctx.decoded().lba);
  ctx.complete_good(ctx.decoded().transfer_length);
}

void transfer(CommandContext& ctx, BlockOp op, uint32_t flags) {
  const CdbDecode& d = ctx.decoded();
  if (d.blocks == 0) return ctx.complete_good(0);  // SBC-3: not an error
  if (!within_max_transfer(ctx)) return;
  ctx.submit_block(0, op, d.lba, d.blocks, ctx.data_iov(0, 0, d.transfer_length), flags,
                   &data_done);
}

// Writes hold their LBA range shared in the unit's LbaRangeLock, so COMPARE
// AND WRITE (which holds it exclusive) is atomic against them (SBC-3 5.2).
// The shared hold is lock-free while no exclusive range is held.
using Holder = LbaRangeLock::Holder;
static_assert(sizeof(Holder) <= CommandContext::kObjectBytes);

Holder& holder(CommandContext& ctx) { return *static_cast<Holder*>(ctx.object_storage()); }

void write_done(CommandContext& ctx, unsigned, int error) {
  ctx.unit().runtime().sbc->ranges.release(holder(ctx));
  holder(ctx).~Holder();
  data_done(ctx, 0, error);
}

void write_submit(CommandContext& ctx) {
  const CdbDecode& d = ctx.decoded();
  ctx.submit_block(0, BlockOp::kWrite, d.lba, d.blocks, ctx.data_iov(0, 0, d.transfer_length),
                   static_cast<uint32_t>(ctx.state[0]), &write_done);
}

void write_transfer(CommandContext& ctx, uint32_t flags) {
  const CdbDecode& d = ctx.decoded();
  if (d.blocks == 0) return ctx.complete_good(0);
  if (!within_max_transfer(ctx)) return;
  ctx.state[0] = flags;
  Holder* h = new (ctx.object_storage()) Holder{};
  h->lba = d.lba;
  h->blocks = d.blocks;
  h->owner = &ctx;
  h->granted = [](Holder& held) { write_submit(*static_cast<CommandContext*>(held.owner)); };
  if (ctx.unit().runtime().sbc->ranges.acquire(*h)) write_submit(ctx);
}

// VERIFY with BYTCHK 01b / 11b: the blocks were read into the bounce buffer's
// first half; compare with the data-out (copied to the second half).
void verify_compare(CommandContext& ctx, unsigned, int error) {
  const CdbDecode& d = ctx.decoded();
  if (error != 0) return ctx.complete_block_error(error, d.lba);
  const size_t bs = ctx.block_size();
  const size_t medium_bytes = size_t{d.blocks} * bs;
  const std::span<uint8_t> buf = ctx.bounce(medium_bytes + d.transfer_length);
  const std::span<uint8_t> medium = buf.first(medium_bytes);
  const std::span<uint8_t> expected = buf.subspan(medium_bytes, d.transfer_length);
  ctx.data().copy_to(0, expected);
  const bool one_block = d.transfer_length == bs && d.blocks > 1;
  for (size_t off = 0; off < medium_bytes; off += bs) {
    const uint8_t* want = one_block ? expected.data() : expected.data() + off;
    if (std::memcmp(medium.data() + off, want, bs) == 0) continue;
    size_t i = 0;
    while (medium[off + i] == want[i]) ++i;
    // SBC-3 5.27: INFORMATION = offset of the first miscompared byte.
    return ctx.complete_check(ctx.sense(kMiscompare).information(off + i));
  }
  ctx.complete_good(d.transfer_length);
}

// VERIFY with BYTCHK 00b (SBC-3 5.27): the blocks are read from the medium in
// chunks and thrown away; a read error is the verification error (MEDIUM
// ERROR with the failing chunk's first LBA).
class MediumVerifyJob : public BlockJob {
 public:
  explicit MediumVerifyJob(CommandContext& ctx)
      : BlockJob(ctx),
        lba_(ctx.decoded().lba),
        left_(ctx.decoded().blocks),
        step_(std::max<uint64_t>(1, kChunkBytes / ctx.block_size())),
        buffer_(std::min(left_, step_) * ctx.block_size()) {}

 protected:
  bool next(int error) override {
    if (error != 0) {
      ctx().complete_block_error(error, lba_);
      return false;
    }
    lba_ += in_flight_;
    left_ -= in_flight_;
    in_flight_ = std::min(left_, step_);
    if (in_flight_ == 0) {
      ctx().complete_good(0);
      return false;
    }
    submit(ctx().device(), BlockOp::kRead, lba_, in_flight_,
           buffer_.iov(in_flight_ * ctx().block_size()), 0);
    return true;
  }

 private:
  uint64_t lba_;
  uint64_t left_;
  uint64_t step_;
  uint64_t in_flight_ = 0;
  AlignedBuffer buffer_;
};

}  // namespace

void sbc_read(CommandContext& ctx) { transfer(ctx, BlockOp::kRead, 0); }

void sbc_write(CommandContext& ctx) { write_transfer(ctx, write_flags(ctx, false)); }

// SBC-3 5.31: the data is written, then verified on the medium; a durable
// write (FUA) is the verification the BlockDevice API offers.
void sbc_write_and_verify(CommandContext& ctx) { write_transfer(ctx, write_flags(ctx, true)); }

// SBC-3 5.27. BYTCHK 00b: medium verification, by reading the blocks (the
// BlockDevice API has no verify operation). BYTCHK 01b/11b compare.
void sbc_verify(CommandContext& ctx) {
  const CdbDecode& d = ctx.decoded();
  if (d.blocks == 0) return ctx.complete_good(0);
  if (d.direction == DataDirection::kNone) {
    return BlockJob::start(std::make_unique<MediumVerifyJob>(ctx));
  }
  const uint64_t medium_bytes = uint64_t{d.blocks} * ctx.block_size();
  if (medium_bytes > ctx.unit().config().max_transfer_bytes) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, ctx.op().length_offset, kNoBit});
  }
  ctx.bounce(medium_bytes + d.transfer_length);
  ctx.submit_block(0, BlockOp::kRead, d.lba, d.blocks, ctx.bounce_iov(0, medium_bytes), 0,
                   &verify_compare);
}

}  // namespace scstu::scsi
