// lun.h - SAM-5 4.7 single level LUN structure: the 8-byte LUN field as it
// travels in iSCSI PDUs and REPORT LUNS data, packed big-endian into a u64
// (byte 0 of the field is bits 63..56).
//
//   LUN 0..255:     peripheral device addressing (00b), bus identifier 0:
//                   byte 1 = LUN                 e.g. LUN 5    -> 0x0005000000000000
//   LUN 256..16383: flat space addressing (01b): bytes 0-1 = 0x4000 | LUN
//                                                e.g. LUN 300  -> 0x412C000000000000
// Bytes 2..7 are zero for a single level LUN.
#pragma once

#include <cstdint>
#include <optional>

namespace scstu::core {

constexpr uint64_t encode_lun(uint64_t lun) {
  if (lun < 256) return lun << 48;
  return (0x4000ull | (lun & 0x3FFF)) << 48;
}

// The LUN number, or nullopt for an encoding this target does not use
// (multi-level, logical unit / extended addressing, well-known LUNs, a
// non-zero bus identifier, non-zero bytes 2..7).
constexpr std::optional<uint64_t> decode_lun(uint64_t wire) {
  if ((wire & 0x0000FFFFFFFFFFFFull) != 0) return std::nullopt;
  const uint64_t first_level = wire >> 48;
  switch (first_level >> 14) {
    case 0:                                              // peripheral device addressing
      if ((first_level >> 8) != 0) return std::nullopt;  // bus identifier
      return first_level & 0xFF;
    case 1:  // flat space addressing
      return first_level & 0x3FFF;
    default:
      return std::nullopt;
  }
}

}  // namespace scstu::core
