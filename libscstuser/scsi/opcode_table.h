// opcode_table.h - ONE table describing every SCSI opcode once (tgt/mhVTL
// style): CDB length, data direction, how the transfer length is decoded,
// which peripheral device types accept it, its service action, and the
// emulation entry of scsi::LogicalUnit (nullptr: INVALID COMMAND OPERATION
// CODE on the device side, still decodable on the producer side).
//
// Covers SPC-4, SBC-3, SSC-3, SMC-3 and the MMC subset of a read-only CD-ROM.
// An opcode whose meaning depends on the device type (0x08 READ 6 disk/tape,
// 0x1B START STOP UNIT / LOAD UNLOAD / OPEN-CLOSE IMPORT EXPORT ELEMENT, 0x2B
// SEEK / LOCATE / POSITION TO ELEMENT, 0xA3/0xA4 MAINTENANCE vs MMC SEND/REPORT
// KEY, ...) has one row per meaning.
//
// REPORT SUPPORTED OPERATION CODES is generated from this table, and the CDB
// usage data masks in it are also what the decoder checks reserved bits with.
#pragma once

#include <cstdint>
#include <span>

#include "handler/command.h"

namespace scstu::scsi {

class CommandContext;  // scsi/command_context.h

// An emulation entry: see the comment block in scsi/logical_unit.h.
using EmulationFn = void (*)(CommandContext& ctx);

// SPC-4 peripheral device types this library knows.
namespace device_type {
inline constexpr uint8_t kDisk = 0x00;
inline constexpr uint8_t kTape = 0x01;
inline constexpr uint8_t kProcessor = 0x03;
inline constexpr uint8_t kCdrom = 0x05;
inline constexpr uint8_t kChanger = 0x08;
}  // namespace device_type

// Bit masks of device types for OpcodeInfo::device_types.
namespace types {
inline constexpr uint16_t kDisk = 1u << 0;
inline constexpr uint16_t kTape = 1u << 1;
inline constexpr uint16_t kProcessor = 1u << 2;
inline constexpr uint16_t kCdrom = 1u << 3;
inline constexpr uint16_t kChanger = 1u << 4;
inline constexpr uint16_t kAll = kDisk | kTape | kProcessor | kCdrom | kChanger;
}  // namespace types

// The mask bit of a peripheral device type, 0 for one not in the table.
constexpr uint16_t device_type_bit(uint8_t type) {
  switch (type) {
    case device_type::kDisk:
      return types::kDisk;
    case device_type::kTape:
      return types::kTape;
    case device_type::kProcessor:
      return types::kProcessor;
    case device_type::kCdrom:
      return types::kCdrom;
    case device_type::kChanger:
      return types::kChanger;
    default:
      return 0;
  }
}

// How the transfer length is decoded from the CDB.
enum class LengthUnit : uint8_t {
  kNone,             // no data transfer
  kFixed,            // always `fixed_length` bytes
  kBytes,            // the field is a byte count (allocation / parameter list length)
  kBlocks,           // the field counts logical blocks of the device's block size
  kBlocks6,          // SBC READ/WRITE 6: as kBlocks, but 0 means 256 blocks
  kTapeFixed,        // SSC READ/WRITE/VERIFY: FIXED bit (byte 1 bit 0) => blocks, else bytes
  kVerify,           // SBC VERIFY: BYTCHK 00b none, 01b the blocks, 11b one block
  kWriteSame,        // SBC WRITE SAME: one block, none when NDOB (16/32 byte 1 bit 0)
  kCompareWrite,     // SBC COMPARE AND WRITE: 2 * NUMBER OF LOGICAL BLOCKS blocks
  kFormatUnit,       // SBC FORMAT UNIT: FMTDATA => 4-byte (8 with LONGLIST) header
  kTapeVerify,       // SSC VERIFY: BYTCMP (byte 1 bit 1) => data out as kTapeFixed
  kReadBlockLimits,  // SSC READ BLOCK LIMITS: 6 bytes, 20 with MLOC
  kReadPosition,     // SSC READ POSITION: by service action (20 / 32 / allocation length)
  kGetPerformance,   // MMC GET PERFORMANCE: 8 + descriptors * 16
};

// OpcodeInfo::flags
namespace opflag {
// The row is selected by a service action (sa_kind says where it is).
inline constexpr uint32_t kServiceAction = 1u << 0;
// Modifies the medium: DATA PROTECT / WRITE PROTECTED when write-protected
// (software write protect, READ_ONLY LUN mapping, read-only medium).
inline constexpr uint32_t kWritesMedium = 1u << 1;
// SAM-5 5.14 / SPC-4 5.14: neither reports nor clears a pending unit
// attention (INQUIRY, REPORT LUNS, REQUEST SENSE).
inline constexpr uint32_t kNoUnitAttention = 1u << 2;
// Needs the medium: NOT READY while the unit is stopped / no medium.
inline constexpr uint32_t kNeedsMedium = 1u << 3;
// The next three flags are informative (REPORT SUPPORTED OPERATION CODES,
// tools): which commands a reservation blocks is decided in one place,
// core/reservations.h (persistent_access_class, spc2_allowed_to_non_holder).
// SPC-2 5.5.1: allowed from a non-holder nexus while a RESERVE(6/10)
// reservation is held.
inline constexpr uint32_t kAllowedWhenReserved = 1u << 4;
// SPC-4 5.13.1 Table 45: allowed for a non-registrant under any persistent
// reservation type (INQUIRY, REPORT LUNS, PR IN, ...).
inline constexpr uint32_t kPrAllowed = 1u << 5;
// Table 45: allowed for a non-registrant under WRITE EXCLUSIVE types (reads).
inline constexpr uint32_t kPrAllowedWriteExclusive = 1u << 6;
// Accesses logical blocks through the LBA/blocks fields of the row
// (the framework checks LBA + blocks against the capacity).
inline constexpr uint32_t kLbaRange = 1u << 7;
// Allocation length (data-in may be shorter than the length, never an error).
inline constexpr uint32_t kAllocationLength = 1u << 8;
// Parameter list length (data-out).
inline constexpr uint32_t kParameterList = 1u << 9;
// Listed in REPORT SUPPORTED OPERATION CODES even without an emulation
// entry (answered by the producer side, e.g. REPORT LUNS).
inline constexpr uint32_t kAnsweredByCore = 1u << 10;
// Answered by the producer's copy manager (EXTENDED COPY, RECEIVE COPY
// RESULTS): listed only where one fronts the unit
// (LogicalUnitConfig::third_party_copy; not behind the kernel shim).
inline constexpr uint32_t kCopyManager = 1u << 11;
}  // namespace opflag

// Where the service action lives.
enum class ServiceActionAt : uint8_t {
  kNone,
  kByte1,      // byte 1 bits 4..0 (0x9E, 0x9F, 0xA3, 0xA4, 0x5E, 0x5F, 0x83, 0x84, 0x48, 0x34 tape)
  kBytes8To9,  // 0x7F variable length CDB
};

struct OpcodeInfo {
  uint8_t opcode = 0;
  uint16_t service_action = 0;  // when flags & kServiceAction
  uint8_t cdb_length = 0;       // bytes; for 0x7F the full length (8 + additional)
  DataDirection direction = DataDirection::kNone;
  LengthUnit unit = LengthUnit::kNone;
  uint8_t length_offset = 0;  // first byte of the transfer length field (big endian)
  uint8_t length_size = 0;    // 1..4 bytes
  uint32_t fixed_length = 0;  // kFixed
  uint8_t lba_offset = 0;     // kLbaRange: first byte of the LBA field
  uint8_t lba_size = 0;       // 0 (no LBA), 3 (6-byte CDBs: 21 bits), 4 or 8
  uint16_t device_types = 0;  // types::* mask
  uint32_t flags = 0;         // opflag::*
  const char* name = "";
  EmulationFn emulate = nullptr;
  // CDB usage data (SPC-4 6.35.3): for each CDB byte, the bits the device
  // server looks at; the decoder rejects any other bit set (INVALID FIELD IN
  // CDB with the field pointer on it). nullptr: no check, not reported.
  const uint8_t* usage = nullptr;
  // Nominal and recommended command timeouts in seconds (SPC-4 6.35.4).
  uint16_t nominal_timeout = 0;
  uint16_t recommended_timeout = 0;

  ServiceActionAt sa_at() const;
};

// The whole table, sorted by opcode then service action.
std::span<const OpcodeInfo> opcode_table();

// The outcome of a lookup.
enum class LookupResult : uint8_t {
  kFound,
  kUnknownOpcode,         // no row for the opcode and device type
  kUnknownServiceAction,  // the opcode exists for the type, the service action does not
};

struct Lookup {
  LookupResult result = LookupResult::kUnknownOpcode;
  const OpcodeInfo* op = nullptr;
};

// Find the row for a CDB (at least 1 byte; bytes 1 / 8-9 are read for the
// service action when present, missing bytes count as 0).
Lookup lookup_opcode(std::span<const uint8_t> cdb, uint8_t device_type);

// Find a row by opcode / service action (REPORT SUPPORTED OPERATION CODES).
const OpcodeInfo* find_opcode(uint8_t opcode, uint16_t service_action, uint8_t device_type);

// True when any row of `opcode` for this device type has a service action.
bool opcode_has_service_actions(uint8_t opcode, uint8_t device_type);

}  // namespace scstu::scsi
