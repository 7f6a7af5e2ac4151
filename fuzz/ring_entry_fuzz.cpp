// libFuzzer target over the ring entry validators: arbitrary bytes become a
// command descriptor (plus an indirect iov list) as a handler reads it, and a
// completion plus the producer's outstanding table as a producer reads it.
// A handler state block (ABI 1.2) as a producer reads it goes through its
// validator too. Whatever the validators accept must satisfy the invariants
// the users of the entries rely on; the checks below abort otherwise.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ring/entry_validation.h"

namespace {

using scstu::ring::CmdLimits;
using scstu::ring::Outstanding;

bool within(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

void check_cmd(const uint8_t* data, size_t size, const CmdLimits& limits) {
  scstu_cmd cmd{};
  std::memcpy(&cmd, data, std::min(size, sizeof(cmd)));
  if (scstu::ring::validate_cmd(cmd, limits) != nullptr) return;
  if (cmd.kind < SCSTU_KIND_SCSI || cmd.kind > SCSTU_KIND_UNIT_EVENT) std::abort();
  if (cmd.kind == SCSTU_KIND_UNIT_EVENT) {
    // Only where offered; a known event; nothing in the data area.
    if (!(limits.features & SCSTU_F_UNIT_STATE)) std::abort();
    if (cmd.unit.event != SCSTU_EVENT_REPORTED_LUNS_CHANGED &&
        cmd.unit.event != SCSTU_EVENT_REPORTED_LUNS_READ)
      std::abort();
    if (cmd.flags != 0 || cmd.nr_iov != 0 || cmd.data_length != 0) std::abort();
  }
  if (cmd.kind == SCSTU_KIND_SCSI) {
    if (cmd.data_length > limits.max_io_bytes) std::abort();
    if (cmd.flags & SCSTU_CMD_F_CDB_IN_DATA) {
      if (!within(cmd.cdb_offset, cmd.cdb_len, limits.data_size)) std::abort();
    } else if (cmd.cdb_len < 1 || cmd.cdb_len > SCSTU_CDB_MAX) {
      std::abort();
    }
  }
  if (cmd.flags & SCSTU_CMD_F_IOV_INDIRECT) {
    if (cmd.nr_iov < 1 || cmd.nr_iov > SCSTU_MAX_IOV) std::abort();
    if (!within(cmd.iov[0].offset, cmd.iov[0].len, limits.data_size)) std::abort();
    // The list itself comes from the rest of the input.
    std::vector<scstu_iov> list(cmd.nr_iov);
    size_t rest = size > sizeof(cmd) ? size - sizeof(cmd) : 0;
    std::memcpy(list.data(), data + sizeof(cmd), std::min(rest, list.size() * sizeof(scstu_iov)));
    if (scstu::ring::validate_iov_list(list, cmd.data_length, limits) != nullptr) return;
    uint64_t sum = 0;
    for (const scstu_iov& v : list) {
      if (!within(v.offset, v.len, limits.data_size)) std::abort();
      sum += v.len;
    }
    if (sum != cmd.data_length) std::abort();
    return;
  }
  if (cmd.nr_iov > SCSTU_INLINE_IOV) std::abort();
  uint64_t sum = 0;
  for (uint16_t i = 0; i < cmd.nr_iov; ++i) {
    if (!within(cmd.iov[i].offset, cmd.iov[i].len, limits.data_size)) std::abort();
    sum += cmd.iov[i].len;
  }
  if (sum != cmd.data_length) std::abort();
}

void check_cpl(const uint8_t* data, size_t size) {
  // Layout: cpl (128) | ring tag (4) | depth (1) | outstanding entries.
  scstu_cpl cpl{};
  uint32_t tag = 0;
  uint8_t depth = 1;
  size_t at = 0;
  auto take = [&](void* dst, size_t n) {
    size_t k = at < size ? std::min(n, size - at) : 0;
    std::memcpy(dst, data + at, k);
    at += n;
  };
  take(&cpl, sizeof(cpl));
  take(&tag, sizeof(tag));
  take(&depth, 1);
  std::vector<Outstanding> table(depth == 0 ? 1 : depth);
  for (Outstanding& o : table) {
    uint8_t raw[10] = {};
    take(raw, sizeof(raw));
    o.in_flight = raw[0] & 1;
    o.kind = raw[1];
    std::memcpy(&o.seq, raw + 2, 4);
    std::memcpy(&o.data_length, raw + 6, 4);
  }
  if (scstu::ring::validate_cpl(cpl, tag, table) != nullptr) return;
  if (tag >= table.size() || cpl.tag != tag) std::abort();
  const Outstanding& o = table[tag];
  if (!o.in_flight || o.seq != cpl.seq || cpl.sense_len > SCSTU_SENSE_MAX) std::abort();
  if (o.kind != SCSTU_KIND_TMF && cpl.transferred > o.data_length) std::abort();
  if (o.kind == SCSTU_KIND_UNIT_EVENT) {
    if (cpl.tmf_response != SCSTU_TMF_COMPLETE && cpl.tmf_response != SCSTU_TMF_SUCCEEDED &&
        cpl.tmf_response != SCSTU_TMF_NOT_SUPPORTED)
      std::abort();
    if (cpl.status != 0 || cpl.transferred != 0 || cpl.sense_len != 0) std::abort();
  }
}

void check_handler_state(const uint8_t* data, size_t size, uint64_t offered) {
  // The block as it sits in the header page, loaded the way a producer does.
  std::vector<uint8_t> page(SCSTU_HEADER_BYTES, 0);
  std::memcpy(page.data() + SCSTU_HANDLER_STATE_OFFSET, data,
              std::min(size, sizeof(scstu_handler_state)));
  const scstu_handler_state s = scstu::ring::load_handler_state(page.data());
  if (scstu::ring::validate_handler_state(s, offered) != nullptr) return;
  if (s.features & ~offered) std::abort();
  if (s.unit_flags & ~scstu::ring::kKnownUnitFlags) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // First byte picks the limits, so small and odd data areas get explored.
  CmdLimits limits;
  limits.data_size = uint64_t{4096} << (data[0] & 15);
  limits.max_io_bytes = 4096u << ((data[0] >> 4) & 7);
  limits.features = (data[0] & 0x80) ? SCSTU_F_SGL_INDIRECT | SCSTU_F_LONG_CDB : 0;
  // The unit-state feature (ABI 1.2) offered or not, from a bit of the data
  // size choice: small areas come with and without it.
  if (data[0] & 0x08) limits.features |= SCSTU_F_UNIT_STATE;
  check_cmd(data + 1, size - 1, limits);
  check_cpl(data + 1, size - 1);
  check_handler_state(data + 1, size - 1, limits.features);
  return 0;
}
