// READ CAPACITY(10/16), SYNCHRONIZE CACHE(10/16), START STOP UNIT (SBC-3).
#include <array>
#include <cerrno>

#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"

namespace scstu::scsi {

namespace {

uint64_t last_lba(const CommandContext& ctx) {
  const uint64_t blocks = ctx.capacity();
  return blocks ? blocks - 1 : 0;
}

// SYNCHRONIZE CACHE with IMMED = 1: the flush outlives the command.
struct BackgroundFlush {
  BlockRequest request;
  LogicalUnit* lu;
  uint64_t nexus;

  static void done(BlockRequest* req, int error) {
    auto* self = static_cast<BackgroundFlush*>(req->context);
    LuRuntime& rt = self->lu->runtime();
    if (error != 0) {
      rt.deferred.add(self->nexus, error == -EIO ? kWriteError : kInternalTargetFailure);
    }
    delete self;
    rt.background.end();  // last: the unit may go away after this
  }
};

void flush_done(CommandContext& ctx, unsigned, int error) {
  if (error != 0) return ctx.complete_block_error(error, ctx.decoded().lba);
  ctx.complete_good(0);
}

}  // namespace

// SBC-3 5.15.
void sbc_read_capacity10(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  // PMI = 0 requires LOGICAL BLOCK ADDRESS = 0.
  if (!(cdb[8] & 0x01) && get_be32(&cdb[2]) != 0) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 7});
  }
  std::array<uint8_t, 8> b{};
  const uint64_t lba = last_lba(ctx);
  put_be32(&b[0], lba > 0xFFFFFFFEull ? 0xFFFFFFFFu : static_cast<uint32_t>(lba));
  put_be32(&b[4], ctx.block_size());
  ctx.complete_data_in(b);
}

// SBC-3 5.16.
void sbc_read_capacity16(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  if (!(cdb[14] & 0x01) && get_be64(&cdb[2]) != 0) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 7});
  }
  const LogicalUnit& lu = ctx.unit();
  std::array<uint8_t, 32> b{};
  put_be64(&b[0], last_lba(ctx));
  put_be32(&b[8], ctx.block_size());
  b[13] = lu.config().physical_block_exponent & 0x0F;
  const bool thin = lu.config().thin && lu.capabilities().unmap;
  if (thin) b[14] |= 0x80;                                    // LBPME
  if (thin && lu.capabilities().unmap_zeroes) b[14] |= 0x40;  // LBPRZ
  ctx.complete_data_in(b);
}

// SBC-3 5.22/5.23. The CDB was checked (LBA range, usage bits); the whole
// cache is flushed whatever range is named. IMMED = 0: GOOD once the data is
// durable. IMMED = 1: GOOD now, the flush goes on in the background; its
// failure becomes a deferred error for the nexus's next command (SPC-4 4.5.1).
void sbc_synchronize_cache(CommandContext& ctx) {
  LogicalUnit& lu = ctx.unit();
  // NV_CACHE (seed): synchronisation with the medium is ignored; no volatile
  // cache: nothing to flush.
  if (lu.config().write_cache == WriteCacheMode::kNvCache || !lu.capabilities().volatile_cache) {
    return ctx.complete_good(0);
  }
  if (!(ctx.cdb()[1] & 0x02)) return ctx.submit_block(0, BlockOp::kFlush, 0, 0, {}, 0, &flush_done);
  auto* flush = new BackgroundFlush{BlockRequest{}, &lu, ctx.task.nexus};
  flush->request.op = BlockOp::kFlush;
  flush->request.context = flush;
  flush->request.done = &BackgroundFlush::done;
  lu.runtime().background.begin();  // the unit now outlives the flush
  ctx.complete_good(0);
  lu.block_device()->submit(flush->request);
}

// SBC-3 5.25. A virtual medium has no spindle: the stopped and the other
// power conditions are not emulated, so START and POWER CONDITION complete
// GOOD and medium access keeps working (as SCST vdisk and LIO do; libiscsi's
// StartStopUnit.NoLoej/PwrCnd check exactly that). LOEJ ejects and loads a
// removable medium, unless a PREVENT is held (SBC-3 5.12).
void sbc_start_stop_unit(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  LogicalUnit& lu = ctx.unit();
  const uint8_t power_condition = cdb[4] >> 4;
  const bool loej = cdb[4] & 0x02;
  const bool start = cdb[4] & 0x01;
  if (power_condition != 0 || !loej) return ctx.complete_good(0);
  const bool removable = lu.config().removable || lu.capabilities().removable;
  if (!removable) return ctx.complete_check(kInvalidFieldInCdb, {true, 4, 1});
  if (lu.nexuses().removal_prevented()) return ctx.complete_check(kMediumRemovalPrevented);
  lu.set_medium_loaded(start);
  ctx.complete_good(0);
}

}  // namespace scstu::scsi
