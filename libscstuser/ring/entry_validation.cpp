#include "ring/entry_validation.h"

namespace scstu::ring {
namespace {

bool in_data_area(uint64_t offset, uint64_t len, const CmdLimits& limits) {
  uint64_t end;
  return !__builtin_add_overflow(offset, len, &end) && end <= limits.data_size;
}

constexpr uint16_t kKnownCmdFlags =
    SCSTU_CMD_F_IOV_INDIRECT | SCSTU_CMD_F_CDB_IN_DATA | SCSTU_CMD_F_READ_ONLY;

const char* validate_scsi(const scstu_cmd& cmd, const CmdLimits& limits) {
  if (cmd.data_dir > SCSTU_DIR_BIDI) return "data_dir out of range";
  if (cmd.task_attr > SCSTU_TASK_ACA) return "task_attr out of range";
  if (cmd.flags & SCSTU_CMD_F_CDB_IN_DATA) {
    if (!(limits.features & SCSTU_F_LONG_CDB)) return "long CDB without SCSTU_F_LONG_CDB";
    if (cmd.cdb_len <= SCSTU_CDB_MAX) return "CDB_IN_DATA with a short cdb_len";
    if (!in_data_area(cmd.cdb_offset, cmd.cdb_len, limits)) return "CDB outside the data area";
  } else if (cmd.cdb_len < 1 || cmd.cdb_len > SCSTU_CDB_MAX) {
    return "cdb_len out of range";
  }
  if (cmd.data_length > limits.max_io_bytes) return "data_length exceeds max_io_bytes";
  if (cmd.data_dir == SCSTU_DIR_NONE) {
    if (cmd.data_length != 0 || cmd.nr_iov != 0) return "data without a data direction";
    return nullptr;
  }
  if (cmd.data_dir == SCSTU_DIR_BIDI && cmd.out_length > cmd.data_length)
    return "BIDI out_length exceeds data_length";
  return nullptr;
}

}  // namespace

const char* validate_cmd(const scstu_cmd& cmd, const CmdLimits& limits) {
  if (cmd.flags & ~kKnownCmdFlags) return "unknown flags";
  // The data-area flags mean something only for kinds that carry data; the
  // handler acts on the flag, so it must never come with nothing behind it.
  if ((cmd.flags & SCSTU_CMD_F_IOV_INDIRECT) && cmd.nr_iov == 0)
    return "indirect iov flag without iovs";
  if ((cmd.flags & (SCSTU_CMD_F_IOV_INDIRECT | SCSTU_CMD_F_CDB_IN_DATA)) &&
      cmd.kind != SCSTU_KIND_SCSI)
    return "data-area flags on a non-SCSI entry";
  switch (cmd.kind) {
    case SCSTU_KIND_SCSI:
      if (const char* err = validate_scsi(cmd, limits)) return err;
      break;
    case SCSTU_KIND_TMF:
      if (cmd.tmf.function < SCSTU_TMF_ABORT_TASK || cmd.tmf.function > SCSTU_TMF_QUERY_ASYNC_EVENT)
        return "unknown task management function";
      if (cmd.nr_iov != 0 || cmd.data_length != 0) return "TMF with data";
      return nullptr;
    case SCSTU_KIND_SESS_ATTACH:
      if (cmd.flags != 0 || cmd.nr_iov != 1 || cmd.iov[0].len < sizeof(scstu_session_info) ||
          cmd.data_length != cmd.iov[0].len)
        return "session attach without a session_info buffer";
      break;
    case SCSTU_KIND_SESS_DETACH:
      if (cmd.nr_iov != 0 || cmd.data_length != 0) return "session detach with data";
      return nullptr;
    case SCSTU_KIND_UNIT_EVENT:
      if (!(limits.features & SCSTU_F_UNIT_STATE)) return "unit event without SCSTU_F_UNIT_STATE";
      if (cmd.unit.event < SCSTU_EVENT_REPORTED_LUNS_CHANGED ||
          cmd.unit.event > SCSTU_EVENT_REPORTED_LUNS_READ)
        return "unknown unit event";
      if (cmd.flags != 0 || cmd.nr_iov != 0 || cmd.data_length != 0)
        return "unit event with flags or data";
      return nullptr;
    default:
      return "unknown kind";
  }
  if (cmd.flags & SCSTU_CMD_F_IOV_INDIRECT) {
    if (!(limits.features & SCSTU_F_SGL_INDIRECT)) return "indirect iov without SGL_INDIRECT";
    if (cmd.nr_iov < 1 || cmd.nr_iov > SCSTU_MAX_IOV) return "nr_iov out of range";
    if (cmd.iov[0].len != cmd.nr_iov * sizeof(scstu_iov) || cmd.iov[0].offset % 8 != 0 ||
        !in_data_area(cmd.iov[0].offset, cmd.iov[0].len, limits))
      return "indirect iov list outside the data area";
    return nullptr;
  }
  if (cmd.nr_iov > SCSTU_INLINE_IOV) return "nr_iov exceeds the inline iov count";
  return validate_iov_list({cmd.iov, cmd.nr_iov}, cmd.data_length, limits);
}

const char* validate_iov_list(std::span<const scstu_iov> iov, uint32_t data_length,
                              const CmdLimits& limits) {
  uint64_t total = 0;
  for (const scstu_iov& v : iov) {
    if (!in_data_area(v.offset, v.len, limits)) return "iov outside the data area";
    total += v.len;  // <= 256 * 2^32: no overflow
  }
  if (total != data_length) return "iov lengths do not add up to data_length";
  return nullptr;
}

const char* validate_cpl(const scstu_cpl& cpl, uint32_t ring_tag,
                         std::span<const Outstanding> outstanding) {
  if (ring_tag >= outstanding.size()) return "tag out of range";
  if (cpl.tag != ring_tag) return "completion tag differs from its ring entry";
  const Outstanding& o = outstanding[ring_tag];
  if (!o.in_flight) return "completion for a tag that is not outstanding";
  if (cpl.seq != o.seq) return "stale completion (seq mismatch)";
  if (cpl.sense_len > SCSTU_SENSE_MAX) return "sense_len exceeds 96";
  if (cpl.flags & ~(SCSTU_CPL_F_RESID_UNDER | SCSTU_CPL_F_RESID_OVER))
    return "unknown completion flags";
  if (o.kind == SCSTU_KIND_TMF) {
    if (cpl.tmf_response > SCSTU_TMF_FAILED) return "TMF response out of range";
    return nullptr;
  }
  if (o.kind == SCSTU_KIND_UNIT_EVENT) {
    // ring_abi.h: taken, declined, or (REPORTED_LUNS_READ) done.
    if (cpl.tmf_response != SCSTU_TMF_COMPLETE && cpl.tmf_response != SCSTU_TMF_SUCCEEDED &&
        cpl.tmf_response != SCSTU_TMF_NOT_SUPPORTED)
      return "unit event response out of range";
    if (cpl.status != 0 || cpl.sense_len != 0 || cpl.transferred != 0)
      return "unit event completion with status, sense or data";
    return nullptr;
  }
  if (cpl.transferred > o.data_length) return "transferred exceeds data_length";
  switch (cpl.status) {  // SAM-5 5.3.1: the status codes a device server may return
    case 0x00:
    case 0x02:
    case 0x04:
    case 0x08:
    case 0x18:
    case 0x28:
    case 0x30:
    case 0x40:
      return nullptr;
    default:
      return "invalid SCSI status";
  }
}

const char* validate_handler_state(const scstu_handler_state& state, uint64_t offered) {
  if (state.features & ~offered) return "handler accepted features the producer did not offer";
  if (state.unit_flags & ~kKnownUnitFlags) return "unknown unit flags";
  return nullptr;
}

}  // namespace scstu::ring
