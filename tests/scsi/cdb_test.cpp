#include "scsi/cdb.h"

#include <gtest/gtest.h>

#include <vector>

#include "scsi/opcode_table.h"

namespace scstu::scsi {
namespace {

constexpr uint8_t kDisk = device_type::kDisk;

uint8_t first_type(uint16_t mask) {
  for (uint8_t t : {device_type::kDisk, device_type::kTape, device_type::kProcessor,
                    device_type::kCdrom, device_type::kChanger}) {
    if (mask & device_type_bit(t)) return t;
  }
  return 0x1F;
}

// A valid CDB for a row: opcode, service action, the length field = 3.
std::vector<uint8_t> cdb_for(const OpcodeInfo& op, uint64_t length_value = 3) {
  std::vector<uint8_t> c(op.cdb_length, 0);
  c[0] = op.opcode;
  if (op.opcode == 0x7F) {
    c[7] = static_cast<uint8_t>(op.cdb_length - 8);
    put_be16(&c[8], op.service_action);
  } else if (op.flags & opflag::kServiceAction) {
    c[1] = static_cast<uint8_t>(op.service_action);
  }
  for (int i = op.length_size - 1; i >= 0 && op.length_size; --i) {
    c[op.length_offset + i] = static_cast<uint8_t>(length_value);
    length_value >>= 8;
  }
  return c;
}

uint32_t expected_length(const OpcodeInfo& op, const std::vector<uint8_t>& c, uint32_t bs) {
  const uint64_t field = get_be(c, op.length_offset, op.length_size);
  switch (op.unit) {
    case LengthUnit::kNone:
      return 0;
    case LengthUnit::kFixed:
      return op.fixed_length;
    case LengthUnit::kBytes:
      return static_cast<uint32_t>(field);
    case LengthUnit::kBlocks:
      return static_cast<uint32_t>(field * bs);
    case LengthUnit::kBlocks6:
      return (c[4] ? c[4] : 256) * bs;
    case LengthUnit::kTapeFixed:
      return static_cast<uint32_t>(field);  // FIXED = 0: bytes
    case LengthUnit::kVerify:
      return 0;  // BYTCHK = 0
    case LengthUnit::kWriteSame:
      return bs;
    case LengthUnit::kCompareWrite:
      return static_cast<uint32_t>(2 * c[13] * bs);
    case LengthUnit::kFormatUnit:
      return 0;
    case LengthUnit::kTapeVerify:
      return 0;
    case LengthUnit::kReadBlockLimits:
      return 6;
    case LengthUnit::kReadPosition:
      return (c[1] & 0x1F) == 6 ? 32 : (c[1] & 0x1F) == 8 ? 3 : 20;
    case LengthUnit::kGetPerformance:
      return static_cast<uint32_t>(8 + 16 * field);
  }
  return 0;
}

// Every row of the table decodes to itself with the length its unit says.
TEST(Cdb, EveryOpcodeDecodes) {
  size_t rows = 0;
  for (const OpcodeInfo& op : opcode_table()) {
    const uint8_t type = first_type(op.device_types);
    const std::vector<uint8_t> c = cdb_for(op);
    const CdbDecode d = decode_cdb(c, type, 512);
    SCOPED_TRACE(op.name);
    ASSERT_TRUE(d.ok) << std::hex << int(d.error.asc) << " field " << d.error_field;
    EXPECT_EQ(d.op, &op);
    EXPECT_EQ(d.cdb_length, op.cdb_length);
    const uint32_t want = expected_length(op, c, 512);
    EXPECT_EQ(d.transfer_length, want);
    EXPECT_EQ(d.direction, want ? op.direction : DataDirection::kNone);
    ++rows;
  }
  EXPECT_GT(rows, 150u);
}

// The usage masks (REPORT SUPPORTED OPERATION CODES) name the opcode and SA.
TEST(Cdb, UsageMasksMatchTheirRows) {
  for (const OpcodeInfo& op : opcode_table()) {
    if (op.usage == nullptr) continue;
    SCOPED_TRACE(op.name);
    EXPECT_EQ(op.usage[0], op.opcode);
    // A mask shared by the rows of one opcode may leave the service action 0
    // (REPORT SUPPORTED OPERATION CODES fills it in).
    if (op.opcode == 0x7F) {
      EXPECT_EQ(op.usage[7], op.cdb_length - 8);
    }
    EXPECT_EQ(op.usage[op.opcode == 0x7F ? 1 : op.cdb_length - 1], 0) << "CONTROL";
  }
}

TEST(Cdb, Read10Write16Lengths) {
  auto c = std::vector<uint8_t>{0x28, 0, 0, 0, 0x10, 0, 0, 0, 8, 0};
  CdbDecode d = decode_cdb(c, kDisk, 4096);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.direction, DataDirection::kRead);
  EXPECT_EQ(d.transfer_length, 8u * 4096);
  EXPECT_EQ(d.lba, 0x1000u);
  EXPECT_EQ(d.blocks, 8u);
  std::vector<uint8_t> w(16, 0);
  w[0] = 0x8A;
  put_be64(&w[2], 0x123456789ull);
  put_be32(&w[10], 2);
  d = decode_cdb(w, kDisk, 512);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.direction, DataDirection::kWrite);
  EXPECT_EQ(d.transfer_length, 1024u);
  EXPECT_EQ(d.lba, 0x123456789ull);
}

TEST(Cdb, Read6ZeroMeans256AndLba21Bits) {
  const std::vector<uint8_t> c = {0x08, 0x1F, 0xFF, 0xFF, 0x00, 0x00};
  const CdbDecode d = decode_cdb(c, kDisk, 512);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.blocks, 256u);
  EXPECT_EQ(d.transfer_length, 256u * 512);
  EXPECT_EQ(d.lba, 0x1FFFFFu);
}

TEST(Cdb, VerifyBytchk) {
  auto c = std::vector<uint8_t>{0x2F, 0, 0, 0, 0, 0, 0, 0, 4, 0};
  EXPECT_EQ(decode_cdb(c, kDisk, 512).direction, DataDirection::kNone);
  c[1] = 0x02;  // BYTCHK 01b
  EXPECT_EQ(decode_cdb(c, kDisk, 512).transfer_length, 2048u);
  c[1] = 0x06;  // BYTCHK 11b: one block
  EXPECT_EQ(decode_cdb(c, kDisk, 512).transfer_length, 512u);
  c[1] = 0x04;  // BYTCHK 10b: reserved
  const CdbDecode d = decode_cdb(c, kDisk, 512);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error, kInvalidFieldInCdb);
  EXPECT_EQ(d.error_field, 1);
}

TEST(Cdb, WriteSameNdobAndCompareAndWrite) {
  auto ws = cdb_for(*find_opcode(0x93, 0, kDisk), 100);
  EXPECT_EQ(decode_cdb(ws, kDisk, 512).transfer_length, 512u);
  ws[1] = 0x01;  // NDOB
  EXPECT_EQ(decode_cdb(ws, kDisk, 512).direction, DataDirection::kNone);
  std::vector<uint8_t> caw(16, 0);
  caw[0] = 0x89;
  caw[13] = 3;
  const CdbDecode d = decode_cdb(caw, kDisk, 512);
  EXPECT_EQ(d.transfer_length, 3072u);
  EXPECT_EQ(d.blocks, 3u);
}

TEST(Cdb, TapeFixedBit) {
  std::vector<uint8_t> c = {0x08, 0x00, 0x00, 0x01, 0x00, 0x00};
  EXPECT_EQ(decode_cdb(c, device_type::kTape, 1024).transfer_length, 256u);  // bytes
  c[1] = 0x01;
  EXPECT_EQ(decode_cdb(c, device_type::kTape, 1024).transfer_length, 256u * 1024);
  const CdbDecode d = decode_cdb(c, device_type::kTape, 0);  // variable mode: no block size
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error_field, 1);
  EXPECT_EQ(d.error_bit, 0);
}

TEST(Cdb, UnknownOpcode) {
  const std::vector<uint8_t> c = {0xFF, 0, 0, 0, 0, 0};
  const CdbDecode d = decode_cdb(c, kDisk, 512);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error, kInvalidCommandOperationCode);
  EXPECT_FALSE(decode_cdb({}, kDisk, 512).ok);
}

TEST(Cdb, OpcodeOfAnotherDeviceType) {
  const std::vector<uint8_t> c = {0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0};  // WRITE(10) on a CD-ROM
  EXPECT_EQ(decode_cdb(c, device_type::kCdrom, 2048).error, kInvalidCommandOperationCode);
  const std::vector<uint8_t> rewind = {0x01, 0, 0, 0, 0, 0};
  EXPECT_TRUE(decode_cdb(rewind, device_type::kTape, 512).ok);
  EXPECT_FALSE(decode_cdb(rewind, kDisk, 512).ok);
}

TEST(Cdb, PerTypeMeanings) {
  // 0xA3: MAINTENANCE IN on a disk, SEND KEY on a CD-ROM.
  std::vector<uint8_t> c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0C;
  put_be32(&c[6], 100);
  CdbDecode d = decode_cdb(c, kDisk, 512);
  ASSERT_TRUE(d.ok);
  EXPECT_STREQ(d.op->name, "REPORT SUPPORTED OPERATION CODES");
  c[1] = 0;
  put_be16(&c[8], 20);
  d = decode_cdb(c, device_type::kCdrom, 2048);
  ASSERT_TRUE(d.ok);
  EXPECT_STREQ(d.op->name, "SEND KEY");
  EXPECT_EQ(d.direction, DataDirection::kWrite);
}

TEST(Cdb, UnknownServiceActionPointsAtIt) {
  std::vector<uint8_t> c(10, 0);
  c[0] = 0x5E;
  c[1] = 0x05;  // PR IN service action 05h does not exist
  CdbDecode d = decode_cdb(c, kDisk, 512);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error, kInvalidFieldInCdb);
  EXPECT_EQ(d.error_field, 1);
  EXPECT_EQ(d.error_bit, 4);
  std::vector<uint8_t> v(32, 0);
  v[0] = 0x7F;
  v[7] = 0x18;
  v[9] = 0x77;
  d = decode_cdb(v, kDisk, 512);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error_field, 8);
}

TEST(Cdb, VariableLengthAdditionalLength) {
  std::vector<uint8_t> v(32, 0);
  v[0] = 0x7F;
  v[7] = 0x10;  // wrong: READ(32) needs 18h
  v[9] = 0x09;
  const CdbDecode d = decode_cdb(v, kDisk, 512);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error_field, 7);
  v[7] = 0x18;
  put_be32(&v[28], 2);
  EXPECT_EQ(decode_cdb(v, kDisk, 512).transfer_length, 1024u);
}

TEST(Cdb, ControlByteNacaAndLink) {
  std::vector<uint8_t> c = {0x00, 0, 0, 0, 0, 0x04};
  CdbDecode d = decode_cdb(c, kDisk, 512);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error, kInvalidFieldInCdb);
  EXPECT_EQ(d.error_field, 5);
  EXPECT_EQ(d.error_bit, 2);
  c[5] = 0x01;
  d = decode_cdb(c, kDisk, 512);
  EXPECT_EQ(d.error_bit, 0);
}

TEST(Cdb, ReservedBitsRejectedWithPointer) {
  // READ(10) RDPROTECT = 001b: no protection information.
  std::vector<uint8_t> c = {0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0};
  CdbDecode d = decode_cdb(c, kDisk, 512);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error_field, 1);
  EXPECT_EQ(d.error_bit, 5);
  // INQUIRY CMDDT (obsolete).
  c = {0x12, 0x02, 0, 0, 36, 0};
  d = decode_cdb(c, kDisk, 512);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error_field, 1);
  EXPECT_EQ(d.error_bit, 1);
  // FUA and DPO are fine.
  c = {0x28, 0x18, 0, 0, 0, 0, 0, 0, 1, 0};
  EXPECT_TRUE(decode_cdb(c, kDisk, 512).ok);
}

TEST(Cdb, ShortCdbAndOverflow) {
  const std::vector<uint8_t> c = {0x28, 0, 0, 0};
  EXPECT_FALSE(decode_cdb(c, kDisk, 512).ok);
  // WRITE(16) of 2^32-1 blocks of 4096 bytes does not fit 32 bits of bytes.
  std::vector<uint8_t> w(16, 0);
  w[0] = 0x8A;
  put_be32(&w[10], 0xFFFFFFFFu);
  const CdbDecode d = decode_cdb(w, kDisk, 4096);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.error_field, 10);
}

TEST(Cdb, ErrorSenseCarriesFieldPointer) {
  const std::vector<uint8_t> c = {0x00, 0, 0, 0, 0, 0x04};
  const CdbDecode d = decode_cdb(c, kDisk, 512);
  for (SenseFormat f : {SenseFormat::kFixed, SenseFormat::kDescriptor}) {
    const ParsedSense p = parse_sense(decode_error_sense(d, f).span());
    ASSERT_TRUE(p.field.has_value());
    EXPECT_TRUE(p.field->in_cdb);
    EXPECT_EQ(p.field->field, 5);
    EXPECT_EQ(p.field->bit, 2);
    EXPECT_EQ(p.format, f);
  }
}

TEST(Cdb, LookupAndFind) {
  EXPECT_TRUE(opcode_has_service_actions(0x9E, kDisk));
  EXPECT_FALSE(opcode_has_service_actions(0x28, kDisk));
  EXPECT_NE(find_opcode(0x9E, 0x10, kDisk), nullptr);
  EXPECT_EQ(find_opcode(0x9E, 0x1F, kDisk), nullptr);
  EXPECT_EQ(find_opcode(0x28, 0, device_type::kTape), nullptr);
}

}  // namespace
}  // namespace scstu::scsi
