#include "iscsi/crc32c.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

namespace scstu::iscsi {
namespace {

uint32_t both_paths(const std::vector<uint8_t>& v) {
  uint32_t hw = crc32c(v.data(), v.size());
  uint32_t sw = crc32c_final(crc32c_update_portable(kCrc32cInit, v.data(), v.size()));
  EXPECT_EQ(hw, sw);
  return hw;
}

// RFC 3720 B.4 test vectors; the CRC is sent least significant byte first.
TEST(Crc32c, Rfc3720Vectors) {
  std::vector<uint8_t> v(32, 0);
  EXPECT_EQ(both_paths(v), 0x8A9136AAu);
  std::fill(v.begin(), v.end(), 0xFF);
  EXPECT_EQ(both_paths(v), 0x62A8AB43u);
  std::iota(v.begin(), v.end(), 0);
  EXPECT_EQ(both_paths(v), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(both_paths(v), 0x113FDB5Cu);
}

TEST(Crc32c, CheckValue) {
  std::vector<uint8_t> v{'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  EXPECT_EQ(both_paths(v), 0xE3069283u);
}

TEST(Crc32c, IncrementalAndScatterMatchOneShot) {
  std::mt19937 rng(7);
  std::vector<uint8_t> v(10007);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  uint32_t whole = both_paths(v);
  for (size_t split : {0, 1, 7, 8, 9, 4096, 10006}) {
    uint32_t c = crc32c_update(kCrc32cInit, v.data(), split);
    c = crc32c_update(c, v.data() + split, v.size() - split);
    EXPECT_EQ(crc32c_final(c), whole) << split;
  }
  std::array<iovec, 3> iov{iovec{v.data(), 100}, iovec{v.data() + 100, 5000},
                           iovec{v.data() + 5100, v.size() - 5100}};
  EXPECT_EQ(crc32c_final(crc32c_update_iov(kCrc32cInit, iov, 0, v.size())), whole);
  EXPECT_EQ(crc32c_final(crc32c_update_iov(kCrc32cInit, iov, 50, 6000)),
            crc32c(v.data() + 50, 6000));
}

}  // namespace
}  // namespace scstu::iscsi
