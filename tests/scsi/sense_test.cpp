#include "scsi/sense.h"

#include <gtest/gtest.h>

#include <vector>

namespace scstu::scsi {
namespace {

std::vector<uint8_t> bytes(const SenseData& s) {
  return {s.bytes.begin(), s.bytes.begin() + s.length};
}

// SPC-4 4.5.3 Table 37 / 4.5.2.4.2.
TEST(Sense, FixedWithFieldPointer) {
  const SenseData s = SenseBuilder(SenseFormat::kFixed, kInvalidFieldInCdb).cdb_field(2, 5).build();
  const std::vector<uint8_t> want = {0x70, 0,   0x05, 0, 0,    0,    0, 10,
                                     0,    0,   0,    0, 0x24, 0x00, 0, 0x80 | 0x40 | 0x08 | 0x05,
                                     0x00, 0x02};
  EXPECT_EQ(bytes(s), want);
}

TEST(Sense, FixedParameterFieldWithoutBit) {
  const SenseData s = SenseBuilder(SenseFormat::kFixed, kInvalidFieldInParameterList)
                          .parameter_field(0x123)
                          .build();
  EXPECT_EQ(s.length, 18);
  EXPECT_EQ(s.bytes[15], 0x80);  // SKSV, C/D = 0, BPV = 0
  EXPECT_EQ(s.bytes[16], 0x01);
  EXPECT_EQ(s.bytes[17], 0x23);
}

TEST(Sense, FixedInformation) {
  const SenseData s =
      SenseBuilder(SenseFormat::kFixed, kMiscompare).information(0x01020304).build();
  EXPECT_EQ(s.bytes[0], 0xF0);  // VALID | 70h
  EXPECT_EQ(s.bytes[2], 0x0E);
  EXPECT_EQ(s.bytes[3], 0x01);
  EXPECT_EQ(s.bytes[6], 0x04);
  EXPECT_EQ(s.bytes[12], 0x1D);
}

TEST(Sense, FixedInformationTooLargeIsLeftOut) {
  const SenseData s =
      SenseBuilder(SenseFormat::kFixed, kUnrecoveredReadError).information(1ull << 40).build();
  EXPECT_EQ(s.bytes[0], 0x70);  // VALID = 0
  EXPECT_EQ(s.bytes[3] | s.bytes[4] | s.bytes[5] | s.bytes[6], 0);
}

// SPC-4 4.5.2: header + information descriptor + sense key specific descriptor.
TEST(Sense, DescriptorWithInformationAndFieldPointer) {
  const SenseData s = SenseBuilder(SenseFormat::kDescriptor, kInvalidFieldInCdb)
                          .information(0x1122334455667788ull)
                          .cdb_field(7)
                          .build();
  const std::vector<uint8_t> want = {0x72, 0x05, 0x24, 0x00, 0,    0,    0,    20,  // header
                                     0x00, 0x0A, 0x80, 0x00, 0x11, 0x22, 0x33, 0x44,
                                     0x55, 0x66, 0x77, 0x88,  // information
                                     0x02, 0x06, 0x00, 0x00, 0xC0, 0x00, 0x07, 0x00};  // SKS
  EXPECT_EQ(bytes(s), want);
}

TEST(Sense, DescriptorPlain) {
  const SenseData s = make_sense(SenseFormat::kDescriptor, kUaPowerOnOccurred);
  const std::vector<uint8_t> want = {0x72, 0x06, 0x29, 0x01, 0, 0, 0, 0};
  EXPECT_EQ(bytes(s), want);
}

TEST(Sense, StreamBitsBothFormats) {
  const SenseData f =
      SenseBuilder(SenseFormat::kFixed, kNoSense).filemark().incorrect_length().build();
  EXPECT_EQ(f.bytes[2], 0x80 | 0x20);
  const SenseData d = SenseBuilder(SenseFormat::kDescriptor, kNoSense).end_of_medium().build();
  const std::vector<uint8_t> want = {0x72, 0, 0, 0, 0, 0, 0, 4, 0x04, 0x02, 0x00, 0x40};
  EXPECT_EQ(bytes(d), want);
}

TEST(Sense, ProgressIndication) {
  const SenseData s =
      SenseBuilder(SenseFormat::kFixed, kNotReadyFormatInProgress).progress(0x8000).build();
  EXPECT_EQ(s.bytes[15], 0x80);
  EXPECT_EQ(s.bytes[16], 0x80);
  EXPECT_EQ(parse_sense(s.span()).progress, 0x8000);
}

TEST(Sense, DeferredResponseCodes) {
  EXPECT_EQ(SenseBuilder(SenseFormat::kFixed, kWriteError).deferred().build().bytes[0], 0x71);
  EXPECT_EQ(SenseBuilder(SenseFormat::kDescriptor, kWriteError).deferred().build().bytes[0], 0x73);
}

TEST(Sense, ParseRoundTrip) {
  for (SenseFormat fmt : {SenseFormat::kFixed, SenseFormat::kDescriptor}) {
    const SenseData s = SenseBuilder(fmt, kInvalidFieldInParameterList)
                            .information(42)
                            .parameter_field(9, 3)
                            .build();
    const ParsedSense p = parse_sense(s.span());
    ASSERT_TRUE(p.valid);
    EXPECT_EQ(p.format, fmt);
    EXPECT_EQ(p.code, kInvalidFieldInParameterList);
    EXPECT_EQ(p.information, 42u);
    ASSERT_TRUE(p.field.has_value());
    EXPECT_FALSE(p.field->in_cdb);
    EXPECT_EQ(p.field->field, 9);
    EXPECT_EQ(p.field->bit, 3);
  }
}

TEST(Sense, ParseRejectsGarbage) {
  EXPECT_FALSE(parse_sense({}).valid);
  const uint8_t junk[] = {0x12, 0x34};
  EXPECT_FALSE(parse_sense(junk).valid);
  const uint8_t short_fixed[] = {0x70, 0, 5};
  EXPECT_FALSE(parse_sense(short_fixed).valid);
  // A descriptor whose length runs past the end is ignored, not read.
  const uint8_t bad_desc[] = {0x72, 5, 0x24, 0, 0, 0, 0, 10, 0x00, 0x40};
  const ParsedSense p = parse_sense(bad_desc);
  EXPECT_TRUE(p.valid);
  EXPECT_FALSE(p.information.has_value());
}

}  // namespace
}  // namespace scstu::scsi
