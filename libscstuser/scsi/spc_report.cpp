// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35), generated from the opcode
// table; REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (6.36); REPORT TARGET
// PORT GROUPS (6.37).
#include <vector>

#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/opcode_table.h"

namespace scstu::scsi {

namespace {

constexpr uint16_t kDefaultNominalTimeout = 0;       // not specified
constexpr uint16_t kDefaultRecommendedTimeout = 30;  // seconds

// Listed where it will be executed: emulated here, or answered by the
// producer side; the copy manager's commands only where one fronts the unit
// (a kernel-shim unit has none: EXTENDED COPY would be refused).
bool reported(const OpcodeInfo& op, const LogicalUnit& lu) {
  if (!(op.device_types & device_type_bit(lu.device_type()))) return false;
  if (op.flags & opflag::kCopyManager) return lu.config().third_party_copy;
  return op.emulate != nullptr || (op.flags & opflag::kAnsweredByCore);
}

// SPC-4 6.35.4 command timeouts descriptor (12 bytes).
void timeouts_descriptor(std::vector<uint8_t>& out, const OpcodeInfo& op) {
  const size_t at = out.size();
  out.resize(at + 12, 0);
  put_be16(&out[at], 0x0A);
  put_be32(&out[at + 4], op.nominal_timeout ? op.nominal_timeout : kDefaultNominalTimeout);
  put_be32(&out[at + 8],
           op.recommended_timeout ? op.recommended_timeout : kDefaultRecommendedTimeout);
}

void usage_data(std::vector<uint8_t>& out, const OpcodeInfo& op) {
  const size_t at = out.size();
  out.resize(at + op.cdb_length, 0xFF);
  if (op.usage != nullptr) {
    for (size_t i = 0; i < op.cdb_length; ++i) out[at + i] = op.usage[i];
    // Rows of one opcode may share a mask: the service action is the row's.
    if (op.sa_at() == ServiceActionAt::kByte1) {
      out[at + 1] = static_cast<uint8_t>((out[at + 1] & 0xE0) | op.service_action);
    } else if (op.sa_at() == ServiceActionAt::kBytes8To9) {
      put_be16(&out[at + 8], op.service_action);
    }
  } else {
    out[at] = op.opcode;
    out[at + op.cdb_length - 1] = 0x00;  // CONTROL: NACA and LINK unsupported
  }
}

}  // namespace

void spc_report_supported_opcodes(CommandContext& ctx) {
  const auto cdb = ctx.cdb();
  const bool rctd = cdb[2] & 0x80;
  const uint8_t options = cdb[2] & 0x07;
  const uint8_t req_op = cdb[3];
  const uint16_t req_sa = get_be16(&cdb[4]);
  const uint8_t type = ctx.unit().device_type();
  std::vector<uint8_t> out;

  if (options == 0) {
    // All commands: 8-byte descriptors (+12 with RCTD).
    out.resize(4, 0);
    for (const OpcodeInfo& op : opcode_table()) {
      if (!reported(op, ctx.unit())) continue;
      const size_t at = out.size();
      out.resize(at + 8, 0);
      out[at] = op.opcode;
      const bool has_sa = op.flags & opflag::kServiceAction;
      if (has_sa) put_be16(&out[at + 2], op.service_action);
      out[at + 5] = static_cast<uint8_t>((rctd ? 0x02 : 0) | (has_sa ? 0x01 : 0));
      put_be16(&out[at + 6], op.cdb_length);
      if (rctd) timeouts_descriptor(out, op);
    }
    put_be32(&out[0], static_cast<uint32_t>(out.size() - 4));
    return ctx.complete_data_in(out);
  }

  const bool op_has_sa = opcode_has_service_actions(req_op, type);
  const OpcodeInfo* op = nullptr;
  switch (options) {
    case 1:  // by opcode; an opcode with service actions is an error
      if (op_has_sa) return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 2});
      op = find_opcode(req_op, 0, type);
      break;
    case 2:  // by opcode and service action; the opcode must have them
      if (!op_has_sa) {
        // An opcode the LU does not know at all is "not supported", not an error.
        if (find_opcode(req_op, 0, type) != nullptr) {
          return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 2});
        }
      } else {
        op = find_opcode(req_op, req_sa, type);
      }
      break;
    case 3:  // either: service action only when the opcode has them
      if (!op_has_sa && req_sa != 0) return ctx.complete_check(kInvalidFieldInCdb, {true, 4, 7});
      op = find_opcode(req_op, op_has_sa ? req_sa : 0, type);
      break;
    default:
      return ctx.complete_check(kInvalidFieldInCdb, {true, 2, 2});
  }
  out.resize(4, 0);
  if (op == nullptr || !reported(*op, ctx.unit())) {
    out[1] = 0x01;  // SUPPORT 001b: not supported
  } else {
    out[1] = static_cast<uint8_t>((rctd ? 0x80 : 0) | 0x03);  // CTDP, SUPPORT 011b
    put_be16(&out[2], op->cdb_length);
    usage_data(out, *op);
    if (rctd) timeouts_descriptor(out, *op);
  }
  ctx.complete_data_in(out);
}

// SPC-4 6.36: what core::apply_task_management implements.
void spc_report_supported_tmfs(CommandContext& ctx) {
  const bool repd = ctx.cdb()[2] & 0x80;
  std::vector<uint8_t> out(repd ? 16 : 4, 0);
  // ATS, ATSS, CTSS, LURS, QTS, TRS (byte 0); QAES, QTSS, ITNRS (byte 1).
  out[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x04 | 0x02;
  out[1] = 0x04 | 0x02 | 0x01;
  if (repd) out[3] = 0x0C;
  ctx.complete_data_in(out);
}

// SPC-4 6.37: one target port group, active/optimized, with the configured
// relative ports; implicit ALUA only (TPGS 01b).
void spc_report_target_port_groups(CommandContext& ctx) {
  const bool extended = ((ctx.cdb()[1] >> 5) & 0x07) == 0x01;
  const LogicalUnitConfig& cfg = ctx.unit().config();
  std::vector<uint8_t> out(extended ? 8 : 4, 0);
  if (extended) out[4] = 0x10;  // FORMAT TYPE 001b
  const size_t at = out.size();
  out.resize(at + 8, 0);
  out[at] = 0x80 | 0x00;  // PREF, ASYMMETRIC ACCESS STATE active/optimized
  out[at + 1] = 0x01;     // AO_SUP
  put_be16(&out[at + 2], cfg.target_port_group);
  out[at + 7] = static_cast<uint8_t>(cfg.relative_ports.size());
  for (uint16_t port : cfg.relative_ports) {
    const size_t p = out.size();
    out.resize(p + 4, 0);
    put_be16(&out[p + 2], port);
  }
  put_be32(&out[0], static_cast<uint32_t>(out.size() - 4));
  ctx.complete_data_in(out);
}

}  // namespace scstu::scsi
