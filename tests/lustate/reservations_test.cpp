#include "core/reservations.h"

#include <gtest/gtest.h>

#include <vector>

namespace scstu::core {
namespace {

const std::vector<uint8_t> kReserve6 = {0x16, 0, 0, 0, 0, 0};
const std::vector<uint8_t> kRelease6 = {0x17, 0, 0, 0, 0, 0};
const std::vector<uint8_t> kReserve10 = {0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0};
const std::vector<uint8_t> kRelease10 = {0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0};

std::vector<uint8_t> cdb(std::initializer_list<uint8_t> b, size_t len) {
  std::vector<uint8_t> v(b);
  v.resize(len, 0);
  return v;
}

TEST(Reservations, HolderReservesAgainOthersConflict) {
  Reservations r;
  EXPECT_TRUE(r.reserve(1, kReserve6).ok());
  EXPECT_TRUE(r.reserve(1, kReserve10).ok());
  EXPECT_EQ(r.reserve(2, kReserve6), Outcome::reservation_conflict());
  EXPECT_EQ(r.holder(), 1u);
  // RELEASE by another nexus: GOOD, nothing released (SPC-2 7.17).
  EXPECT_TRUE(r.release(2, kRelease6).ok());
  EXPECT_EQ(r.holder(), 1u);
  EXPECT_TRUE(r.release(1, kRelease10).ok());
  EXPECT_FALSE(r.reserved());
  EXPECT_TRUE(r.reserve(2, kReserve10).ok());
  EXPECT_EQ(r.holder(), 2u);
}

TEST(Reservations, ThirdPartyAndExtentsRejected) {
  Reservations r;
  auto third6 = cdb({0x16, 0x10}, 6);
  auto extent6 = cdb({0x16, 0x01}, 6);
  auto third10 = cdb({0x56, 0x10}, 10);
  auto longid10 = cdb({0x56, 0x02}, 10);
  EXPECT_EQ(r.reserve(1, third6), Outcome::invalid_cdb_field(1, 4));
  EXPECT_EQ(r.reserve(1, extent6), Outcome::invalid_cdb_field(1, 0));
  EXPECT_EQ(r.reserve(1, third10), Outcome::invalid_cdb_field(1, 4));
  EXPECT_EQ(r.reserve(1, longid10), Outcome::invalid_cdb_field(1, 1));
  EXPECT_EQ(r.release(1, cdb({0x57, 0x10}, 10)), Outcome::invalid_cdb_field(1, 4));
  EXPECT_EQ(r.release(1, cdb({0x17, 0x01}, 6)), Outcome::invalid_cdb_field(1, 0));
  EXPECT_EQ(r.reserve(1, cdb({0x16}, 3)), Outcome::invalid_cdb_field(0));
  EXPECT_FALSE(r.reserved());
}

TEST(Reservations, ConflictMatrixForNonHolder) {
  Reservations r;
  ASSERT_TRUE(r.reserve(1, kReserve6).ok());
  struct Case {
    std::vector<uint8_t> cdb;
    bool conflict;
  };
  const std::vector<Case> cases = {
      {cdb({0x12}, 6), false},   // INQUIRY
      {cdb({0x03}, 6), false},   // REQUEST SENSE
      {cdb({0xA0}, 12), false},  // REPORT LUNS
      {kRelease6, false},        // RELEASE: GOOD no-op
      {kRelease10, false},
      {cdb({0x4D}, 10), false},                // LOG SENSE
      {cdb({0x25}, 10), false},                // READ CAPACITY(10)
      {cdb({0x9E, 0x10}, 16), false},          // READ CAPACITY(16)
      {cdb({0xA3, 0x0A}, 12), false},          // REPORT TARGET PORT GROUPS
      {cdb({0x1E, 0, 0, 0, 0x00}, 6), false},  // ALLOW MEDIUM REMOVAL
      {cdb({0x1E, 0, 0, 0, 0x01}, 6), true},   // PREVENT MEDIUM REMOVAL
      {cdb({0x1B, 0, 0, 0, 0x01}, 6), false},  // START UNIT
      {cdb({0x1B, 0, 0, 0, 0x00}, 6), true},   // STOP UNIT
      {cdb({0x00}, 6), true},                  // TEST UNIT READY
      {cdb({0x1A}, 6), true},                  // MODE SENSE(6)
      {cdb({0x28}, 10), true},                 // READ(10)
      {cdb({0x2A}, 10), true},                 // WRITE(10)
      {kReserve6, true},
      {cdb({0x5E}, 10), true},  // PERSISTENT RESERVE IN
      {cdb({0x5F}, 10), true},  // PERSISTENT RESERVE OUT
      {{}, true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(r.conflicts(2, c.cdb), c.conflict) << "opcode " << (c.cdb.empty() ? -1 : c.cdb[0]);
    EXPECT_FALSE(r.conflicts(1, c.cdb));
  }
}

TEST(Reservations, ClearedByResetAndByHolderNexusLoss) {
  Reservations r;
  ASSERT_TRUE(r.reserve(1, kReserve6).ok());
  r.nexus_lost(2);
  EXPECT_TRUE(r.reserved());
  r.nexus_lost(1);
  EXPECT_FALSE(r.reserved());
  ASSERT_TRUE(r.reserve(3, kReserve6).ok());
  r.clear();
  EXPECT_FALSE(r.reserved());
  EXPECT_FALSE(r.conflicts(2, cdb({0x2A}, 10)));
}

TEST(PersistentAccessClass, Table65AndSbcTable) {
  struct Case {
    std::vector<uint8_t> cdb;
    AccessClass cls;
  };
  const std::vector<Case> cases = {
      {cdb({0x12}, 6), AccessClass::kAllowed},
      {cdb({0x00}, 6), AccessClass::kAllowed},
      {cdb({0x03}, 6), AccessClass::kAllowed},
      {cdb({0xA0}, 12), AccessClass::kAllowed},
      {cdb({0x25}, 10), AccessClass::kAllowed},
      {cdb({0x9E, 0x10}, 16), AccessClass::kAllowed},
      {cdb({0x9E, 0x12}, 16), AccessClass::kRead},  // GET LBA STATUS
      {cdb({0x5E}, 10), AccessClass::kAllowed},
      {cdb({0x84}, 16), AccessClass::kAllowed},
      {cdb({0xA3, 0x0A}, 12), AccessClass::kAllowed},
      {cdb({0xA3, 0x0C}, 12), AccessClass::kRead},
      {cdb({0x08}, 6), AccessClass::kRead},
      {cdb({0x28}, 10), AccessClass::kRead},
      {cdb({0xA8}, 12), AccessClass::kRead},
      {cdb({0x88}, 16), AccessClass::kRead},
      {cdb({0x2F}, 10), AccessClass::kRead},
      {cdb({0x34}, 10), AccessClass::kRead},
      {cdb({0x1A}, 6), AccessClass::kRead},
      {cdb({0x5A}, 10), AccessClass::kRead},
      {cdb({0x0A}, 6), AccessClass::kWrite},
      {cdb({0x2A}, 10), AccessClass::kWrite},
      {cdb({0x8A}, 16), AccessClass::kWrite},
      {cdb({0x35}, 10), AccessClass::kWrite},
      {cdb({0x42}, 10), AccessClass::kWrite},
      {cdb({0x89}, 16), AccessClass::kWrite},
      {cdb({0x15}, 6), AccessClass::kWrite},
      {cdb({0x83}, 16), AccessClass::kWrite},
      {cdb({0x04}, 6), AccessClass::kWrite},
      {cdb({0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x09}, 32), AccessClass::kRead},
      {cdb({0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x0B}, 32), AccessClass::kWrite},
      {cdb({0x16}, 6), AccessClass::kReservation},
      {cdb({0x57}, 10), AccessClass::kReservation},
      {cdb({0x5F}, 10), AccessClass::kReservation},
      {cdb({0xC0}, 6), AccessClass::kWrite},  // unknown: the safe side
  };
  for (const Case& c : cases) {
    EXPECT_EQ(persistent_access_class(c.cdb), c.cls) << "opcode " << int(c.cdb[0]);
  }
}

}  // namespace
}  // namespace scstu::core
