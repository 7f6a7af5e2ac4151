#include "iscsi/text_keys.h"

#include <gtest/gtest.h>

namespace scstu::iscsi {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(TextKeys, ParseAndBuild) {
  std::string t;
  append_pair(t, "InitiatorName", "iqn.2026-11.test:ini");
  append_pair(t, "HeaderDigest", "CRC32C,None");
  append_pair(t, "Empty", "");
  std::vector<TextPair> kv;
  ASSERT_EQ(parse_text(bytes(t), kv), nullptr);
  ASSERT_EQ(kv.size(), 3u);
  EXPECT_EQ(kv[0].value, "iqn.2026-11.test:ini");
  EXPECT_EQ(kv[2].value, "");
  // Padding NULs and a last pair without NUL are tolerated.
  std::string padded = t + std::string(3, '\0') + "A=b";
  ASSERT_EQ(parse_text(bytes(padded), kv), nullptr);
  EXPECT_EQ(kv.back().key, "A");
}

TEST(TextKeys, Bounds) {
  std::vector<TextPair> kv;
  std::string t;
  append_pair(t, std::string(63, 'k'), "v");
  EXPECT_EQ(parse_text(bytes(t), kv), nullptr);
  t.clear();
  append_pair(t, std::string(64, 'k'), "v");
  EXPECT_NE(parse_text(bytes(t), kv), nullptr);
  t.clear();
  append_pair(t, "K", std::string(255, 'v'));
  EXPECT_EQ(parse_text(bytes(t), kv), nullptr);
  t.clear();
  append_pair(t, "K", std::string(256, 'v'));
  EXPECT_NE(parse_text(bytes(t), kv), nullptr);
  t.clear();
  append_pair(t, "CHAP_C", "0x" + std::string(8190, 'a'));
  EXPECT_EQ(parse_text(bytes(t), kv), nullptr);
  t.clear();
  append_pair(t, "CHAP_C", "0x" + std::string(8191, 'a'));
  EXPECT_NE(parse_text(bytes(t), kv), nullptr);
  EXPECT_NE(parse_text(bytes(std::string("novalue\0", 8)), kv), nullptr);
  EXPECT_NE(parse_text(bytes(std::string("=v\0", 3)), kv), nullptr);
  EXPECT_NE(parse_text(bytes(std::string("a b=v\0", 6)), kv), nullptr);
  t.clear();
  for (size_t i = 0; i <= kMaxTextPairs; ++i) append_pair(t, "K" + std::to_string(i), "v");
  EXPECT_NE(parse_text(bytes(t), kv), nullptr);
}

TEST(TextKeys, Numbers) {
  EXPECT_EQ(parse_number("262144", 1u << 24), 262144u);
  EXPECT_EQ(parse_number("0x40000", 1u << 24), 0x40000u);
  EXPECT_FALSE(parse_number("16777216", (1u << 24) - 1));
  EXPECT_FALSE(parse_number("", 10));
  EXPECT_FALSE(parse_number("-1", 10));
  EXPECT_FALSE(parse_number("12a", 100));
  EXPECT_FALSE(parse_number("99999999999999999999", UINT64_MAX));
  EXPECT_FALSE(parse_number("0x", 10));
}

TEST(TextKeys, BinaryEncodings) {
  std::vector<uint8_t> v{0x00, 0x01, 0xFE, 0xFF, 0x10};
  EXPECT_EQ(encode_hex(v), "0x0001feff10");
  EXPECT_EQ(decode_binary(encode_hex(v), 64), v);
  EXPECT_EQ(decode_binary(encode_base64(v), 64), v);
  for (size_t n = 1; n < 8; ++n) {
    std::vector<uint8_t> w(n, 0xA5);
    EXPECT_EQ(decode_binary(encode_base64(w), 64), w) << n;
  }
  EXPECT_EQ(encode_base64(std::vector<uint8_t>{'M', 'a'}), "0bTWE=");
  EXPECT_EQ(decode_binary("0xabc", 8), (std::vector<uint8_t>{0x0a, 0xbc}));
  EXPECT_FALSE(decode_binary("0xzz", 8));
  EXPECT_FALSE(decode_binary("0bTW=E", 8));
  EXPECT_FALSE(decode_binary("abcd", 8));
  EXPECT_FALSE(decode_binary("0x" + std::string(40, 'a'), 16));
}

TEST(TextKeys, SplitList) {
  auto l = split_list("CRC32C,None");
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[1], "None");
}

}  // namespace
}  // namespace scstu::iscsi
