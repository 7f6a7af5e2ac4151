// cdb.h - decoding a CDB: the authoritative data direction and transfer
// length, and the generic checks every command gets (opcode and service
// action known for the device type, CDB length, reserved bits per the
// table's CDB usage data, CONTROL byte NACA/LINK).
//
// Called twice on purpose: by the producer (target core) to size buffers,
// and by scsi::LogicalUnit on the device side, which trusts nothing.
#pragma once

#include <cstdint>
#include <span>

#include "handler/command.h"
#include "scsi/opcode_table.h"
#include "scsi/sense.h"

namespace scstu::scsi {

struct CdbDecode {
  bool ok = false;
  DataDirection direction = DataDirection::kNone;
  uint32_t transfer_length = 0;    // bytes (BIDI: the write part)
  uint32_t bidi_read_length = 0;   // BIDI: bytes of the read part
  const OpcodeInfo* op = nullptr;  // the table row (set whenever the opcode is known)
  SenseCode error{};               // when !ok
  uint16_t error_field = 0;        // byte offset of the bad field in the CDB
  uint8_t error_bit = kNoBit;      // its bit (kNoBit: no bit pointer)
  // Extras for the device side.
  uint8_t cdb_length = 0;  // the CDB's real length
  uint64_t lba = 0;        // when op has an LBA field
  uint32_t blocks = 0;     // the transfer length field in blocks (kBlocks...)
  bool has_field_pointer() const { return error.asc == 0x24 || error.asc == 0x26; }
};

// `block_size`: the device's logical block size in bytes (tape: its fixed
// block length; 0 when unknown, which makes block-counted lengths an error).
CdbDecode decode_cdb(std::span<const uint8_t> cdb, uint8_t device_type, uint32_t block_size);

// The sense data for a failed decode, in the given format.
SenseData decode_error_sense(const CdbDecode& decode, SenseFormat format);

// Big-endian field readers (CDBs and parameter lists are big endian).
inline uint64_t get_be(std::span<const uint8_t> p, size_t offset, size_t size) {
  uint64_t v = 0;
  for (size_t i = 0; i < size; ++i) v = (v << 8) | (offset + i < p.size() ? p[offset + i] : 0);
  return v;
}
inline uint16_t get_be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t get_be24(const uint8_t* p) {
  return (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
}
inline uint32_t get_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint64_t get_be64(const uint8_t* p) {
  return (uint64_t{get_be32(p)} << 32) | get_be32(p + 4);
}
inline void put_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put_be24(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 16);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v);
}
inline void put_be32(uint8_t* p, uint32_t v) {
  put_be16(p, static_cast<uint16_t>(v >> 16));
  put_be16(p + 2, static_cast<uint16_t>(v));
}
inline void put_be64(uint8_t* p, uint64_t v) {
  put_be32(p, static_cast<uint32_t>(v >> 32));
  put_be32(p + 4, static_cast<uint32_t>(v));
}

}  // namespace scstu::scsi
