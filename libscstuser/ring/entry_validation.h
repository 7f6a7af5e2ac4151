// entry_validation.h - the checks each side runs on a descriptor the other
// side wrote, before any field is used. Callers copy the descriptor out of
// shared memory first, validate the copy, and use only the copy (the peer can
// rewrite shared memory at any time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ring/ring_abi.h"

namespace scstu::ring {

// What the handler knows about the region (from the validated header).
struct CmdLimits {
  uint64_t data_size = 0;     // bytes in the data area
  uint32_t max_io_bytes = 0;  // largest data_length
  uint64_t features = 0;      // hdr.features
};

// Checks a command descriptor's own fields: kind, direction, task attribute,
// flags, cdb_len, nr_iov, data_length, and inline iovs (or, for an indirect
// list, where the list lives). Returns nullptr when valid, else the reason.
const char* validate_cmd(const scstu_cmd& cmd, const CmdLimits& limits);

// For SCSTU_CMD_F_IOV_INDIRECT: the list (copied out of the data area from
// cmd.iov[0].offset, cmd.nr_iov entries) after validate_cmd() accepted the
// descriptor. Checks each entry's bounds and that lengths sum to data_length.
const char* validate_iov_list(std::span<const scstu_iov> iov, uint32_t data_length,
                              const CmdLimits& limits);

// The producer's record of one outstanding tag.
struct Outstanding {
  bool in_flight = false;
  uint8_t kind = 0;
  uint32_t seq = 0;
  uint32_t data_length = 0;
};

// A completion's fixed fields; only sense_len bytes of sense follow. Writers
// write, and readers copy, just that much: without sense, one cache line.
inline constexpr size_t kCplHeaderBytes = offsetof(scstu_cpl, sense);
static_assert(kCplHeaderBytes == 32);

// Copies the completion at `src` (shared memory) into `dst`: the fixed
// fields, then min(sense_len, SCSTU_SENSE_MAX) bytes of sense as the copy says.
inline void copy_cpl(scstu_cpl* dst, const scstu_cpl* src) {
  __builtin_memcpy(dst, src, kCplHeaderBytes);
  const size_t n = dst->sense_len < SCSTU_SENSE_MAX ? dst->sense_len : SCSTU_SENSE_MAX;
  if (n) __builtin_memcpy(dst->sense, src->sense, n);
}

// Checks a completion published under `ring_tag` against what the producer
// sent. `outstanding` is the producer's private per-tag table (queue_depth
// entries). Returns nullptr when valid.
const char* validate_cpl(const scstu_cpl& cpl, uint32_t ring_tag,
                         std::span<const Outstanding> outstanding);

// ABI 1.2: the handler's state block (ring_abi.h, SCSTU_HANDLER_STATE_OFFSET
// of a region at `region`), loaded field by field as the handler publishes it:
// features with acquire, then unit_flags. A private copy for the checks below.
inline scstu_handler_state load_handler_state(const uint8_t* region) {
  const auto* shared =
      reinterpret_cast<const scstu_handler_state*>(region + SCSTU_HANDLER_STATE_OFFSET);
  scstu_handler_state s{};
  s.features = __atomic_load_n(&shared->features, __ATOMIC_ACQUIRE);
  s.unit_flags = __atomic_load_n(&shared->unit_flags, __ATOMIC_ACQUIRE);
  return s;
}

inline constexpr uint32_t kKnownUnitFlags = SCSTU_UNIT_F_D_SENSE;

// Checks a handler state block (a private copy) against the features the
// producer offered in its header: any bit not offered, or unit flag not
// known, voids the whole block (the producer then behaves as for a handler
// that accepted nothing). Returns nullptr when valid.
const char* validate_handler_state(const scstu_handler_state& state, uint64_t offered);

}  // namespace scstu::ring
