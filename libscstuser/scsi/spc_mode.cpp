// MODE SENSE(6/10) and MODE SELECT(6/10) (SPC-4 6.9-6.12, 7.5).
#include <cstdio>
#include <string>
#include <vector>

#include "core/unit_attentions.h"
#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"
#include "scsi/mode_file.h"
#include "scsi/mode_pages.h"
#include "scsi/mode_select.h"

namespace scstu::scsi {

void spc_mode_sense(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const bool ten = cdb[0] == 0x5A;
  const bool dbd = cdb[1] & 0x08;
  const bool llbaa = ten && (cdb[1] & 0x10);
  const auto pc = static_cast<PageControl>(cdb[2] >> 6);
  const uint8_t page = cdb[2] & 0x3F;
  const uint8_t subpage = cdb[3];
  LogicalUnit& lu = ctx.unit();

  const size_t header = ten ? 8 : 4;
  std::vector<uint8_t> out(header, 0);
  // SBC-3 6.4.1 device-specific parameter: WP, DPOFUA.
  if (lu.device_type() == device_type::kDisk) {
    uint8_t dsp = 0x10;  // DPOFUA: DPO and FUA are supported
    if (lu.software_write_protect() || ctx.request().read_only || lu.capabilities().read_only) {
      dsp |= 0x80;  // WP
    }
    out[ten ? 3 : 2] = dsp;
  }
  // Block descriptors (SBC-3 6.4.2), disks only.
  if (!dbd && lu.device_type() == device_type::kDisk) {
    const uint64_t blocks = lu.capacity_blocks();
    if (llbaa) {
      out[4] |= 0x01;  // LONGLBA
      std::vector<uint8_t> bd(16, 0);
      put_be64(&bd[0], blocks);
      put_be32(&bd[12], lu.block_size());
      out.insert(out.end(), bd.begin(), bd.end());
    } else {
      std::vector<uint8_t> bd(8, 0);
      put_be32(&bd[0], blocks > 0xFFFFFFFFull ? 0xFFFFFFFFu : static_cast<uint32_t>(blocks));
      put_be24(&bd[5], lu.block_size());
      out.insert(out.end(), bd.begin(), bd.end());
    }
    const size_t bdl = out.size() - header;
    if (ten)
      put_be16(&out[6], static_cast<uint16_t>(bdl));
    else
      out[3] = static_cast<uint8_t>(bdl);
  }
  if (!lu.mode_pages().sense(page, subpage, pc, out)) {
    // An unsupported page, or a subpage of one.
    const bool page_ok = page == 0x3F || lu.mode_pages().sense(page, 0, pc, out);
    return ctx.complete_check(kInvalidFieldInCdb, {true, static_cast<uint16_t>(page_ok ? 3 : 2),
                                                   static_cast<uint8_t>(page_ok ? 7 : 5)});
  }
  // MODE DATA LENGTH excludes itself.
  if (ten) {
    put_be16(&out[0], static_cast<uint16_t>(out.size() - 2));
  } else {
    if (out.size() > 256) out.resize(256);
    out[0] = static_cast<uint8_t>(out.size() - 1);
  }
  ctx.complete_data_in(out);
}

void spc_mode_select(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const bool ten = cdb[0] == 0x55;
  const bool pf = cdb[1] & 0x10;
  const bool sp = cdb[1] & 0x01;
  LogicalUnit& lu = ctx.unit();
  const uint32_t length = ctx.decoded().transfer_length;
  if (length == 0) return ctx.complete_good(0);  // SPC-4 6.9: not an error
  // SPC-4 6.9: PF = 0 selects vendor-specific pages, which there are none of.
  if (!pf) return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 4});
  if (ctx.data_length() < length) return ctx.complete_check(kParameterListLengthError);
  const std::span<uint8_t> params = ctx.bounce(length);
  ctx.read_parameters(params);
  ModeSelectInput in;
  in.ten_byte = ten;
  in.save = sp;
  in.device_type = lu.device_type();
  in.block_size = lu.block_size();
  bool changed = false;
  if (auto err = apply_mode_select(lu.mode_pages(), in, params, &changed)) {
    return ctx.complete_check(ctx.sense(err->code).field_pointer(err->field));
  }
  if (sp && !lu.config().mode_file.empty()) {
    const std::string err = save_mode_file(lu.mode_pages(), lu.config().mode_file);
    if (!err.empty()) {
      std::fprintf(stderr, "scstu: %s\n", err.c_str());
      return ctx.complete_check(kInternalTargetFailure);
    }
  }
  // SPC-4 7.5.2: other I_T nexuses learn of the change by a unit attention.
  if (changed) {
    lu.runtime().unit_attentions.raise_all_except(ctx.task.nexus,
                                                  core::UnitAttention::kModeParametersChanged);
  }
  ctx.complete_good(length);
}

}  // namespace scstu::scsi
