// mode_select.h - parsing a MODE SELECT(6/10) parameter list (SPC-4 7.5.4):
// the mode parameter header, the block descriptors, then the pages, which
// ModePages validates and applies. Separate so the fuzz target can reach it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "scsi/mode_pages.h"

namespace scstu::scsi {

struct ModeSelectInput {
  bool ten_byte = false;
  bool save = false;  // SP
  uint8_t device_type = 0;
  uint32_t block_size = 512;
};

std::optional<ModeSelectError> apply_mode_select(ModePages& pages, const ModeSelectInput& in,
                                                 std::span<const uint8_t> params, bool* changed);

}  // namespace scstu::scsi
