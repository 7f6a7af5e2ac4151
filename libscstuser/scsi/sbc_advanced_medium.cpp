// Whole-medium and medium-information commands: FORMAT UNIT, SANITIZE,
// PRE-FETCH (10/16) and READ DEFECT DATA (10/12) (SBC-3 5.3, 5.9-5.10,
// 5.12-5.13, 5.30 / SBC-4 SANITIZE; its operation: scsi/sanitize.h).
#include <algorithm>

#include "scsi/cdb.h"
#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"
#include "scsi/sanitize.h"
#include "scsi/sbc_advanced_job.h"

namespace scstu::scsi {

namespace {

bool thin_with_zeroes(const CommandContext& ctx) {
  const LogicalUnit& lu = ctx.unit();
  return lu.config().thin && lu.capabilities().unmap && lu.capabilities().unmap_zeroes;
}

// Every block of the unit becomes zeroes: deallocated where the device can
// (and reads them back as zeroes), written otherwise.
void erase_all(CommandContext& ctx) {
  const uint64_t capacity = ctx.capacity();
  if (capacity == 0) return ctx.complete_good(ctx.data_length());
  const auto mode = thin_with_zeroes(ctx) ? ExtentJob::Mode::kUnmapOrFill : ExtentJob::Mode::kFill;
  BlockJob::start(std::make_unique<ExtentJob>(
      ctx, ctx.device(), ctx.block_size(), std::vector<ExtentJob::Extent>{{0, capacity}}, mode,
      std::vector<std::vector<uint8_t>>{}, 0, /*flush_at_end=*/true));
}

}  // namespace

// SBC-3 5.3. CDB byte 1: FMTPINFO (7:6), LONGLIST (5), FMTDATA (4), CMPLST
// (3), DEFECT LIST FORMAT (2:0). With FMTDATA the parameter list header
// (4 bytes, 8 with LONGLIST) follows; no defect list and no initialization
// pattern are accepted. The medium is left all zeroes.
void sbc_format_unit(CommandContext& ctx) {
  const uint8_t b1 = ctx.cdb()[1];
  if (b1 & 0xC0) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 7});  // no protection
  const bool fmtdata = b1 & 0x10;
  if (!fmtdata) {
    // SBC-3 table 35: without a parameter list only DEFECT LIST FORMAT 000b
    // is defined (LONGLIST and CMPLST are then ignored).
    if (b1 & 0x07) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 2});
    return erase_all(ctx);
  }
  const bool longlist = b1 & 0x20;
  const size_t header = longlist ? 8 : 4;
  std::array<uint8_t, 8> h{};
  if (ctx.read_parameters(std::span<uint8_t>(h.data(), header)) < header) {
    return ctx.complete_check(kParameterListLengthError);
  }
  // Byte 0 bits 2:0 PROTECTION FIELD USAGE; byte 1: FOV (7), DPRY (6),
  // DCRT (5), STPF (4), IP (3), IMMED (1).
  if (h[0] & 0x07) return ctx.complete_check(kInvalidFieldInParameterList, {false, 0, 2});
  const bool fov = h[1] & 0x80;
  if (!fov && (h[1] & 0x7C)) return ctx.complete_check(kInvalidFieldInParameterList, {false, 1, 6});
  if (h[1] & 0x08) return ctx.complete_check(kInvalidFieldInParameterList, {false, 1, 3});  // IP
  if (longlist && h[3] != 0) return ctx.complete_check(kInvalidFieldInParameterList, {false, 3, 7});
  const uint32_t defects = longlist ? get_be32(&h[4]) : get_be16(&h[2]);
  if (defects != 0) {
    return ctx.complete_check(kInvalidFieldInParameterList,
                              {false, static_cast<uint16_t>(longlist ? 4 : 2), kNoBit});
  }
  // A defect list format without a list is fine; one we were asked to
  // merge with (CMPLST = 0) is empty anyway.
  erase_all(ctx);
}

// SBC-4 5.30 SANITIZE: byte 1 IMMED (7), AUSE (5), SERVICE ACTION (4:0)
// (bit 6, ZNR, is for zoned devices: refused by the CDB usage data);
// PARAMETER LIST LENGTH bytes 7-8. OVERWRITE takes a parameter list: byte 0
// INVERT (7), TEST (6:5), OVERWRITE COUNT (4:0); bytes 2-3 INITIALIZATION
// PATTERN LENGTH; the pattern. BLOCK ERASE deallocates or zeroes every block;
// CRYPTOGRAPHIC ERASE has no keys to change here and erases the same way, so
// the data is as unrecoverable as the service action promises. The operation
// itself runs in the background (scsi/sanitize.h): IMMED = 1 completes once
// the CDB and parameter list are validated, IMMED = 0 when it ends.
void sbc_sanitize(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const uint8_t sa = cdb[1] & 0x1F;
  const bool immed = cdb[1] & 0x80;
  const uint32_t length = get_be16(&cdb[7]);
  SanitizeOperation& op = *ctx.unit().runtime().sanitize;
  SanitizeOperation::Plan plan;
  plan.ause = cdb[1] & 0x20;
  switch (sa) {
    case 0x01: {  // OVERWRITE
      const uint32_t bs = ctx.block_size();
      // SBC-4 5.30.2.2: the list holds a 4-byte header and 1 to block
      // length bytes of pattern; any other PARAMETER LIST LENGTH is a CDB error.
      if (length < 5 || length > bs + 4u) {
        return ctx.complete_check(kInvalidFieldInCdb, {true, 7, kNoBit});
      }
      if (ctx.data_length() < length) return ctx.complete_check(kParameterListLengthError);
      std::vector<uint8_t> p(length);
      ctx.read_parameters(p);
      const uint32_t pattern_length = get_be16(&p[2]);
      if (p[0] & 0x60) return ctx.complete_check(kInvalidFieldInParameterList, {false, 0, 6});
      const uint8_t count = p[0] & 0x1F;
      if (count == 0) return ctx.complete_check(kInvalidFieldInParameterList, {false, 0, 4});
      if (pattern_length == 0 || pattern_length > bs) {
        return ctx.complete_check(kInvalidFieldInParameterList, {false, 2, kNoBit});
      }
      if (length != pattern_length + 4u) {
        return ctx.complete_check(kInvalidFieldInParameterList, {false, 2, kNoBit});
      }
      // The pattern fills each block from its start, repeated; INVERT
      // complements it after each pass.
      std::vector<uint8_t> block(bs);
      for (size_t i = 0; i < bs; ++i) block[i] = p[4 + i % pattern_length];
      const bool invert = p[0] & 0x80;
      for (uint8_t i = 0; i < count; ++i) {
        plan.passes.push_back(block);
        if (invert) {
          for (uint8_t& b : block) b = static_cast<uint8_t>(~b);
        }
      }
      break;
    }
    case 0x02:  // BLOCK ERASE
    case 0x03:  // CRYPTOGRAPHIC ERASE
      if (length != 0) return ctx.complete_check(kInvalidFieldInCdb, {true, 7, kNoBit});
      plan.deallocate = thin_with_zeroes(ctx);
      break;
    case 0x1F:  // EXIT FAILURE MODE
      if (length != 0) return ctx.complete_check(kInvalidFieldInCdb, {true, 7, kNoBit});
      // SBC-4 5.30 (AUSE): refused when the failed sanitize had AUSE = 0.
      if (!op.exit_failure_mode()) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 4});
      return ctx.complete_good(0);
    default:
      return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 4});
  }
  // SBC-4 5.30 (AUSE): after a failed sanitize with AUSE = 0, one with AUSE = 1
  // is refused (only a restricted one may clear the failure).
  switch (op.start(std::move(plan), immed ? nullptr : &ctx)) {
    case SanitizeOperation::StartResult::kStarted:
      break;
    case SanitizeOperation::StartResult::kAuseRefused:
      return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 5});
    case SanitizeOperation::StartResult::kNotRecorded:
      // It could not be made to survive a restart (SBC-4 4.11.2): not started.
      return ctx.complete_check(kInternalTargetFailure);
  }
  if (immed) ctx.complete_good(ctx.data_length());
}

// SBC-3 5.9/5.10 PRE-FETCH: the blocks are read ahead into the page cache
// by the backing store's own readahead; the range was checked, and there is
// always room, so CONDITION MET (IMMED or not).
void sbc_pre_fetch(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const bool is16 = ctx.op().opcode == 0x90;
  const uint64_t lba = is16 ? get_be64(&cdb[2]) : get_be32(&cdb[2]);
  const uint64_t blocks = is16 ? get_be32(&cdb[10]) : get_be16(&cdb[7]);
  if (!ctx.check_lba_range(lba, blocks)) return;
  ctx.complete_status(status::kConditionMet);
}

// SBC-3 5.12/5.13 READ DEFECT DATA: a virtual medium has no defects. The
// header echoes the requested lists as valid (PLISTV/GLISTV) and the format,
// with a DEFECT LIST LENGTH of zero.
void sbc_read_defect_data(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const bool is12 = ctx.op().opcode == 0xB7;
  const uint8_t flags_byte = is12 ? 1 : 2;
  const uint8_t req = cdb[flags_byte];
  const uint8_t format = req & 0x07;
  // SBC-3 table: 000b short, 011b long, 100b bytes from index, 101b
  // physical sector, 110b vendor specific; the others are reserved.
  if (format == 0x1 || format == 0x2 || format == 0x7) {
    return ctx.complete_check(kInvalidFieldInCdb, {true, flags_byte, 2});
  }
  std::vector<uint8_t> out(is12 ? 8 : 4, 0);
  out[1] = static_cast<uint8_t>(req & 0x1F);  // PLISTV (4), GLISTV (3), format
  ctx.complete_data_in(out);
}

}  // namespace scstu::scsi
