// mode_pages_snapshot.h - every mode page of a ModePages (MODE SENSE, page
// 3Fh) as one byte string, so the mode_file and mode_select fuzz targets can
// compare the pages before and after a change.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "scsi/mode_pages.h"

namespace scstu::fuzz {

inline std::vector<uint8_t> snapshot(const scsi::ModePages& pages, scsi::PageControl pc) {
  std::vector<uint8_t> out;
  if (!pages.sense(0x3F, 0, pc, out)) std::abort();
  return out;
}

}  // namespace scstu::fuzz
