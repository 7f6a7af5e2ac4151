#include "scsi/cdb.h"

#include <limits>

namespace scstu::scsi {

namespace {

constexpr uint8_t kVariableLength = 0x7F;

CdbDecode fail(CdbDecode d, SenseCode code, uint16_t field, uint8_t bit = kNoBit) {
  d.ok = false;
  d.error = code;
  d.error_field = field;
  d.error_bit = bit;
  return d;
}

uint8_t highest_bit(uint8_t v) {
  uint8_t b = 7;
  while (!(v & (1u << b))) --b;
  return b;
}

// SPC-4 6.35.3: bits the device server does not use must be zero; the
// service action field and the variable-length header are checked elsewhere.
bool check_usage(const OpcodeInfo& op, std::span<const uint8_t> cdb, uint16_t* field,
                 uint8_t* bit) {
  if (op.usage == nullptr) return true;
  const size_t control = op.opcode == kVariableLength ? 1 : op.cdb_length - 1u;
  for (size_t i = 1; i < op.cdb_length; ++i) {
    if (i == control) continue;
    uint8_t allowed = op.usage[i];
    if (op.opcode == kVariableLength && (i == 7 || i == 8 || i == 9)) continue;
    if (i == 1 && op.sa_at() == ServiceActionAt::kByte1) allowed |= 0x1F;
    const uint8_t bad = static_cast<uint8_t>(cdb[i] & ~allowed);
    if (bad) {
      *field = static_cast<uint16_t>(i);
      *bit = highest_bit(bad);
      return false;
    }
  }
  return true;
}

// Transfer length in bytes from `count` logical blocks, or an error.
bool blocks_to_bytes(uint64_t count, uint32_t block_size, uint32_t* bytes) {
  if (count == 0) {
    *bytes = 0;
    return true;
  }
  if (block_size == 0) return false;
  const uint64_t n = count * block_size;
  if (count > std::numeric_limits<uint32_t>::max() || n > std::numeric_limits<uint32_t>::max()) {
    return false;
  }
  *bytes = static_cast<uint32_t>(n);
  return true;
}

}  // namespace

CdbDecode decode_cdb(std::span<const uint8_t> cdb, uint8_t device_type, uint32_t block_size) {
  CdbDecode d;
  if (cdb.empty()) return fail(d, kInvalidCommandOperationCode, 0);

  const Lookup lk = lookup_opcode(cdb, device_type);
  if (lk.result == LookupResult::kUnknownOpcode) return fail(d, kInvalidCommandOperationCode, 0);
  if (lk.result == LookupResult::kUnknownServiceAction) {
    // SPC-4: an unsupported service action of a supported opcode is an
    // invalid field (libiscsi PrinServiceactionRange expects 24h).
    if (cdb[0] == kVariableLength) return fail(d, kInvalidFieldInCdb, 8, 7);
    return fail(d, kInvalidFieldInCdb, 1, 4);
  }
  const OpcodeInfo& op = *lk.op;
  d.op = &op;

  // CDB length (SPC-4 4.2.3: variable length CDBs carry their own).
  if (cdb.size() < op.cdb_length) return fail(d, kInvalidCommandOperationCode, 0);
  if (op.opcode == kVariableLength && size_t{cdb[7]} + 8 != op.cdb_length) {
    return fail(d, kInvalidFieldInCdb, 7, 7);
  }
  d.cdb_length = op.cdb_length;

  // SAM-5 5.2 CONTROL byte: NACA (bit 2) and LINK (bit 0) are not supported.
  const uint16_t control = op.opcode == kVariableLength ? 1 : op.cdb_length - 1u;
  if (cdb[control] & 0x04) return fail(d, kInvalidFieldInCdb, control, 2);
  if (cdb[control] & 0x01) return fail(d, kInvalidFieldInCdb, control, 0);

  uint16_t field = 0;
  uint8_t bit = kNoBit;
  if (!check_usage(op, cdb, &field, &bit)) return fail(d, kInvalidFieldInCdb, field, bit);

  // LBA and the raw transfer length field.
  if (op.lba_size == 3) {
    d.lba = (uint64_t{cdb[1] & 0x1Fu} << 16) | (uint64_t{cdb[2]} << 8) | cdb[3];
  } else if (op.lba_size) {
    d.lba = get_be(cdb, op.lba_offset, op.lba_size);
  }
  const uint64_t field_value = op.length_size ? get_be(cdb, op.length_offset, op.length_size) : 0;

  DataDirection dir = op.direction;
  uint32_t bytes = 0;
  const uint16_t len_field = op.length_offset;
  switch (op.unit) {
    case LengthUnit::kNone:
      dir = DataDirection::kNone;
      if (op.lba_size && op.length_size) d.blocks = static_cast<uint32_t>(field_value);
      break;
    case LengthUnit::kFixed:
      bytes = op.fixed_length;
      break;
    case LengthUnit::kBytes:
      if (field_value > std::numeric_limits<uint32_t>::max()) {
        return fail(d, kInvalidFieldInCdb, len_field, 7);
      }
      bytes = static_cast<uint32_t>(field_value);
      break;
    case LengthUnit::kBlocks:
      d.blocks = static_cast<uint32_t>(field_value);
      if (!blocks_to_bytes(field_value, block_size, &bytes)) {
        return fail(d, kInvalidFieldInCdb, len_field, 7);
      }
      break;
    case LengthUnit::kBlocks6:
      // SBC-3 5.16: a TRANSFER LENGTH of 0 means 256 blocks.
      d.blocks = cdb[4] ? cdb[4] : 256;
      if (!blocks_to_bytes(d.blocks, block_size, &bytes)) return fail(d, kInvalidFieldInCdb, 4, 7);
      break;
    case LengthUnit::kTapeVerify:
      // SSC-3 7.11: BYTCMP = 0 verifies without data.
      if (!(cdb[1] & 0x02)) {
        dir = DataDirection::kNone;
        break;
      }
      [[fallthrough]];
    case LengthUnit::kTapeFixed:
      // SSC-3 6.x: FIXED = 1 counts blocks of the current block length.
      if (cdb[1] & 0x01) {
        if (!blocks_to_bytes(field_value, block_size, &bytes)) {
          return fail(d, kInvalidFieldInCdb, 1, 0);
        }
      } else {
        bytes = static_cast<uint32_t>(field_value);
      }
      break;
    case LengthUnit::kVerify: {
      // SBC-3 5.27: BYTCHK 00b no data, 01b the blocks, 11b one block
      // compared with each; 10b reserved.
      d.blocks = static_cast<uint32_t>(field_value);
      const uint8_t byte1 = op.opcode == kVariableLength ? cdb[10] : cdb[1];
      const uint8_t bytchk = (byte1 >> 1) & 0x03;
      if (bytchk == 0) {
        dir = DataDirection::kNone;
      } else if (bytchk == 2) {
        return fail(d, kInvalidFieldInCdb, op.opcode == kVariableLength ? 10 : 1, 2);
      } else if (!blocks_to_bytes(bytchk == 1 ? field_value : (field_value ? 1 : 0), block_size,
                                  &bytes)) {
        return fail(d, kInvalidFieldInCdb, len_field, 7);
      }
      break;
    }
    case LengthUnit::kWriteSame: {
      // SBC-3 5.44/5.45: one block of data unless NDOB (16 and 32 only).
      d.blocks = static_cast<uint32_t>(field_value);
      bool ndob = false;
      if (op.opcode == 0x93) ndob = cdb[1] & 0x01;
      if (op.opcode == kVariableLength) ndob = cdb[10] & 0x01;
      if (ndob) {
        dir = DataDirection::kNone;
      } else if (!blocks_to_bytes(1, block_size, &bytes)) {
        return fail(d, kInvalidFieldInCdb, len_field, 7);
      }
      break;
    }
    case LengthUnit::kCompareWrite:
      // SBC-3 5.2: the verify instance and the write instance, each n blocks.
      d.blocks = cdb[13];
      if (!blocks_to_bytes(2ull * cdb[13], block_size, &bytes)) {
        return fail(d, kInvalidFieldInCdb, 13, 7);
      }
      break;
    case LengthUnit::kFormatUnit:
      // SBC-3 5.3: FMTDATA sends a parameter list header (LONGLIST: 8 bytes).
      if (cdb[1] & 0x10) {
        bytes = (cdb[1] & 0x20) ? 8 : 4;
      } else {
        dir = DataDirection::kNone;
      }
      break;
    case LengthUnit::kReadBlockLimits:
      bytes = (cdb[1] & 0x01) ? 20 : 6;  // SSC-4 MLOC
      break;
    case LengthUnit::kReadPosition:
      switch (cdb[1] & 0x1F) {
        case 0x00:
        case 0x01:
          bytes = 20;
          break;
        case 0x06:
          bytes = 32;
          break;
        default:
          bytes = get_be16(&cdb[7]);
          break;
      }
      break;
    case LengthUnit::kGetPerformance:
      bytes = 8 + 16u * get_be16(&cdb[8]);  // MMC-6 6.8: header + descriptors
      break;
  }
  if (bytes == 0) dir = DataDirection::kNone;
  d.direction = dir;
  d.transfer_length = bytes;
  d.ok = true;
  return d;
}

SenseData decode_error_sense(const CdbDecode& decode, SenseFormat format) {
  SenseBuilder b(format, decode.error);
  if (decode.has_field_pointer()) b.cdb_field(decode.error_field, decode.error_bit);
  return b.build();
}

}  // namespace scstu::scsi
