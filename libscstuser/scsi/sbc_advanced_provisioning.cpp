// WRITE SAME (10/16/32), UNMAP and GET LBA STATUS: writing one block over a
// range and logical block provisioning (SBC-3 4.7, 5.7, 5.28, 5.43-5.45).
#include <algorithm>
#include <cstring>

#include "scsi/cdb.h"
#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/sbc_advanced_job.h"

namespace scstu::scsi {

namespace {

constexpr uint8_t kVariableLength = 0x7F;

// Thin provisioning as VPD B2h reports it (LBPU / LBPWS): configured thin
// and a device that can deallocate.
bool thin(const CommandContext& ctx) {
  return ctx.unit().config().thin && ctx.unit().capabilities().unmap;
}

}  // namespace

// SBC-3 5.43-5.45. Byte 1 (byte 10 in the 32-byte CDB): ANCHOR bit 4,
// UNMAP bit 3, NDOB bit 0 (16/32 only). The framework checked the LBA range
// with NUMBER OF LOGICAL BLOCKS, write protection and the one-block data-out.
void sbc_write_same(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const bool is32 = ctx.op().opcode == kVariableLength;
  const uint8_t flags_byte = is32 ? 10 : 1;
  const uint8_t flags = cdb[flags_byte];
  const bool unmap = flags & 0x08;
  const bool ndob = ctx.op().opcode != 0x41 && (flags & 0x01);
  const CdbDecode& d = ctx.decoded();
  // VPD B2h: ANC_SUP = 0.
  if (flags & 0x10) return ctx.complete_check(kInvalidFieldInCdb, {true, flags_byte, 4});
  // VPD B2h advertises LBPWS/LBPWS10 only on a thin unit.
  if (unmap && !thin(ctx)) return ctx.complete_check(kInvalidFieldInCdb, {true, flags_byte, 3});
  uint64_t blocks = d.blocks;
  if (blocks == 0) {
    // VPD B0h WSNZ = 0: zero blocks means up to the last LBA.
    blocks = ctx.capacity() - d.lba;
    if (blocks == 0) return ctx.complete_good(ctx.data_length());
  }
  // VPD B0h MAXIMUM WRITE SAME LENGTH bounds the blocks written, also those a
  // NUMBER OF LOGICAL BLOCKS of zero implies (SBC-4 5.50: "the number of
  // logical blocks specified to be written" exceeding it is INVALID FIELD IN CDB).
  if (blocks > ctx.unit().config().max_write_same_blocks) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, ctx.op().length_offset, kNoBit});
  }
  const uint32_t bs = ctx.block_size();
  std::vector<uint8_t> block(bs, 0);
  if (!ndob) ctx.data().copy_to(0, block);
  const bool zeroes = std::all_of(block.begin(), block.end(), [](uint8_t b) { return b == 0; });
  // SBC-3 4.7.3.4: deallocating is allowed where a read afterwards returns
  // the data-out block; with LBPRZ that is a block of zeroes.
  ExtentJob::Mode mode = ExtentJob::Mode::kFill;
  if (unmap && zeroes && ctx.unit().capabilities().unmap_zeroes) {
    mode = ExtentJob::Mode::kUnmapOrFill;
  }
  std::vector<std::vector<uint8_t>> patterns;
  patterns.push_back(std::move(block));
  BlockJob::start(std::make_unique<ExtentJob>(ctx, ctx.device(), bs,
                                              std::vector<ExtentJob::Extent>{{d.lba, blocks}}, mode,
                                              std::move(patterns), sbc_write_flags(ctx, false)));
}

// SBC-3 5.28. Parameter list: UNMAP DATA LENGTH (2), UNMAP BLOCK DESCRIPTOR
// DATA LENGTH (2), reserved (4), then 16-byte descriptors: LBA (8), NUMBER
// OF LOGICAL BLOCKS (4), reserved (4).
void sbc_unmap(CommandContext& ctx) {
  if (!thin(ctx)) return ctx.complete_check(kInvalidCommandOperationCode);
  const auto cdb = ctx.cdb();
  if (cdb[1] & 0x01) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 0});  // ANCHOR
  const uint32_t length = get_be16(&cdb[7]);
  if (length == 0) return ctx.complete_good(0);  // nothing to do (5.28.1)
  if (length < 8 || ctx.data_length() < length) {
    return ctx.complete_check(kParameterListLengthError);
  }
  std::vector<uint8_t> p(length);
  ctx.read_parameters(p);
  const uint32_t data_length = get_be16(&p[0]);
  const uint32_t bd_length = get_be16(&p[2]);
  // 5.28.2: the lengths must fit the list; a partial trailing descriptor is ignored.
  if (data_length + 2u > length)
    return ctx.complete_check(kInvalidFieldInParameterList, {false, 0, kNoBit});
  if (bd_length + 8u > length)
    return ctx.complete_check(kInvalidFieldInParameterList, {false, 2, kNoBit});
  const size_t count = bd_length / 16;
  const LogicalUnitConfig& cfg = ctx.unit().config();
  if (count > cfg.max_unmap_descriptors) {
    return ctx.complete_check(kInvalidFieldInParameterList, {false, 2, kNoBit});
  }
  std::vector<ExtentJob::Extent> extents;
  const uint64_t capacity = ctx.capacity();
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* desc = &p[8 + 16 * i];
    const uint64_t lba = get_be64(desc);
    const uint32_t blocks = get_be32(desc + 8);
    if (lba > capacity || blocks > capacity - lba) {
      return ctx.complete_check(ctx.sense(kLbaOutOfRange).information(lba));
    }
    // VPD B0h MAXIMUM UNMAP LBA COUNT.
    if (blocks > cfg.max_unmap_lba_count) {
      return ctx.complete_check(kInvalidFieldInParameterList,
                                {false, static_cast<uint16_t>(8 + 16 * i + 8), kNoBit});
    }
    if (blocks != 0) extents.push_back({lba, blocks});
  }
  if (extents.empty()) return ctx.complete_good(ctx.data_length());
  BlockJob::start(std::make_unique<ExtentJob>(ctx, ctx.device(), ctx.block_size(),
                                              std::move(extents), ExtentJob::Mode::kUnmap,
                                              std::vector<std::vector<uint8_t>>{}, 0));
}

namespace {

// GET LBA STATUS parameter data: 8-byte header, 16-byte descriptors
// (SBC-3 5.7.2): LBA (8), NUMBER OF LOGICAL BLOCKS (4), PROVISIONING STATUS
// (byte 12: 0 mapped or unknown, 1 deallocated, 2 anchored).
void add_descriptor(std::vector<uint8_t>& out, uint64_t lba, uint32_t blocks, uint8_t status) {
  const size_t at = out.size();
  out.resize(at + 16, 0);
  put_be64(&out[at], lba);
  put_be32(&out[at + 8], blocks);
  out[at + 12] = status;
}

void finish_lba_status(CommandContext& ctx, std::vector<uint8_t>& out) {
  put_be32(&out[0], static_cast<uint32_t>(out.size() - 4));
  ctx.complete_data_in(out);
}

// From the device's own allocation map (BlockDevice::allocation, e.g. a
// file's holes): descriptors of the mapped and deallocated runs from `lba`,
// merging neighbours in the same state. False when the device cannot tell
// about `lba` (the caller falls back to LbaStatusJob). A run the device
// cannot tell about later ends the answer there (5.7.2 allows a partial one).
bool lba_status_from_allocation(CommandContext& ctx, uint64_t lba, uint64_t end,
                                size_t max_descriptors) {
  const BlockDevice& device = *ctx.device();
  std::vector<uint8_t> out(8, 0);
  uint64_t run_start = lba;
  uint64_t run_blocks = 0;
  BlockAllocation run_state = BlockAllocation::kUnknown;
  size_t descriptors = 0;
  auto close_run = [&] {
    add_descriptor(out, run_start, static_cast<uint32_t>(run_blocks),
                   run_state == BlockAllocation::kDeallocated ? 1 : 0);
    ++descriptors;
  };
  // NUMBER OF LOGICAL BLOCKS is 32 bits: a run never grows past it.
  constexpr uint64_t kMaxRun = 0xFFFFFFFFu;
  while (lba < end) {
    const AllocationExtent e = device.allocation(lba, std::min(end - lba, kMaxRun));
    if (e.state == BlockAllocation::kUnknown || e.blocks == 0) {
      if (run_state == BlockAllocation::kUnknown) return false;
      break;
    }
    const uint64_t blocks = std::min({e.blocks, end - lba, kMaxRun});
    if (run_state != BlockAllocation::kUnknown &&
        (e.state != run_state || run_blocks + blocks > kMaxRun)) {
      close_run();
      if (descriptors == max_descriptors) {
        finish_lba_status(ctx, out);
        return true;
      }
      run_start = lba;
      run_blocks = 0;
    }
    run_state = e.state;
    run_blocks += blocks;
    lba += blocks;
  }
  close_run();
  finish_lba_status(ctx, out);
  return true;
}

// The device does not say which blocks are allocated. With LBPRZ a
// deallocated block reads as zeroes, so a block of zeroes is reported
// deallocated: an initiator that trusts the report reads the same data
// either way. The medium is read a chunk at a time from the starting LBA
// until the descriptors the allocation length holds are complete, the end of
// the unit, or kScanBytes; the last descriptor ends where the scan ended
// (5.7.2 allows a partial answer).
class LbaStatusJob : public BlockJob {
 public:
  // Read at most this much per command: a 1 GiB unit is answered whole.
  static constexpr uint64_t kScanBytes = uint64_t{1} << 30;

  LbaStatusJob(CommandContext& ctx, uint64_t lba, uint64_t end, size_t max_descriptors)
      : BlockJob(ctx),
        next_lba_(lba),
        run_start_(lba),
        end_(end),
        max_descriptors_(max_descriptors),
        chunk_blocks_(std::max<uint64_t>(1, kChunkBytes / ctx.block_size())),
        budget_blocks_(std::max<uint64_t>(chunk_blocks_, kScanBytes / ctx.block_size())),
        buffer_(chunk_blocks_ * ctx.block_size()),
        out_(8, 0) {}

 protected:
  bool next(int error) override {
    if (error != 0) {
      ctx().complete_block_error(error, next_lba_);
      return false;
    }
    if (in_flight_ != 0 && !scan_chunk()) return finish();
    if (next_lba_ == end_ || budget_blocks_ == 0) {
      add_descriptor(out_, run_start_, static_cast<uint32_t>(next_lba_ - run_start_),
                     static_cast<uint8_t>(run_status_));
      return finish();
    }
    in_flight_ = std::min(chunk_blocks_, std::min(end_ - next_lba_, budget_blocks_));
    budget_blocks_ -= in_flight_;
    submit(ctx().device(), BlockOp::kRead, next_lba_, in_flight_,
           buffer_.iov(in_flight_ * ctx().block_size()), 0);
    return true;
  }

 private:
  // Extends the current run over the chunk just read, closing it where the
  // status changes. False once the descriptors that fit are complete.
  bool scan_chunk() {
    const uint32_t bs = ctx().block_size();
    for (uint64_t i = 0; i < in_flight_; ++i) {
      const uint8_t* b = buffer_.data() + i * bs;
      const int status = (b[0] == 0 && std::memcmp(b, b + 1, bs - 1) == 0) ? 1 : 0;
      const uint64_t lba = next_lba_ + i;
      if (run_status_ >= 0 && status != run_status_) {
        add_descriptor(out_, run_start_, static_cast<uint32_t>(lba - run_start_),
                       static_cast<uint8_t>(run_status_));
        if (++descriptors_ == max_descriptors_) return false;
        run_start_ = lba;
      }
      run_status_ = status;
    }
    next_lba_ += in_flight_;
    return true;
  }

  bool finish() {
    finish_lba_status(ctx(), out_);
    return false;
  }

  uint64_t next_lba_;
  uint64_t run_start_;
  int run_status_ = -1;
  uint64_t end_;
  size_t max_descriptors_;
  size_t descriptors_ = 0;
  uint64_t chunk_blocks_;
  uint64_t budget_blocks_;
  uint64_t in_flight_ = 0;
  AlignedBuffer buffer_;
  std::vector<uint8_t> out_;
};

}  // namespace

// SBC-3 5.7: STARTING LOGICAL BLOCK ADDRESS (bytes 2-9), ALLOCATION LENGTH
// (bytes 10-13).
void sbc_get_lba_status(CommandContext& ctx) {
  const uint64_t lba = ctx.decoded().lba;
  const uint64_t capacity = ctx.capacity();
  if (lba >= capacity) return ctx.complete_check(ctx.sense(kLbaOutOfRange).information(lba));
  const uint64_t to_end = capacity - lba;
  if (thin(ctx) && ctx.unit().capabilities().unmap_zeroes) {
    // ALLOCATION LENGTH (bytes 10-13): the 8-byte header, then descriptors.
    const uint32_t alloc = get_be32(&ctx.cdb()[10]);
    const size_t fit = alloc > 8 ? (alloc - 8) / 16 : 0;
    // Each descriptor costs the device a lookup or two on this thread: answer
    // at most kMaxAllocationDescriptors, the initiator asks again from where
    // the answer ends (5.7.2 lets the device server return fewer).
    constexpr size_t kMaxAllocationDescriptors = 1024;
    const size_t wanted = std::clamp<size_t>(fit, 1, kMaxAllocationDescriptors);
    if (lba_status_from_allocation(ctx, lba, capacity, wanted)) return;
    return BlockJob::start(
        std::make_unique<LbaStatusJob>(ctx, lba, capacity, std::max<size_t>(1, fit)));
  }
  // A fully provisioned unit: every block is mapped.
  std::vector<uint8_t> out(8, 0);
  add_descriptor(out, lba, static_cast<uint32_t>(std::min<uint64_t>(to_end, 0xFFFFFFFFu)), 0);
  finish_lba_status(ctx, out);
}

}  // namespace scstu::scsi
