// identity.h - the identifiers a logical unit reports (INQUIRY, VPD 0x80,
// 0x83): padded ASCII fields, the unit serial number and the NAA designator.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "scsi/logical_unit.h"

namespace scstu::scsi {

// Copy `s` into `n` bytes, printable ASCII only, space padded (SPC-4 4.4.1).
void pad_ascii(uint8_t* dst, size_t n, std::string_view s);

struct LuIdentity {
  std::string serial;             // config.serial, or derived from the NAA value
  std::array<uint8_t, 16> naa{};  // NAA 6 IEEE registered extended
};
LuIdentity make_identity(const LogicalUnitConfig& cfg);

}  // namespace scstu::scsi
