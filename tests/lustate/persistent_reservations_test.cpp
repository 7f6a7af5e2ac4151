#include "core/persistent_reservations.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

namespace scstu::core {
namespace {

using Bytes = std::vector<uint8_t>;

SessionInfo make_session(uint64_t id, const std::string& name, const std::string& isid,
                         uint16_t port = 1) {
  SessionInfo s;
  s.id = id;
  s.relative_port = port;
  s.protocol_id = 5;
  s.initiator_name = name;
  s.transport_id = name + ",i,0x" + isid;
  s.target_name = "iqn.2026-01.test:target";
  return s;
}

void put64(Bytes& v, size_t at, uint64_t x) {
  for (int i = 0; i < 8; ++i) v[at + i] = static_cast<uint8_t>(x >> (56 - 8 * i));
}
uint32_t get32(const Bytes& v, size_t at) {
  return uint32_t{v[at]} << 24 | uint32_t{v[at + 1]} << 16 | uint32_t{v[at + 2]} << 8 | v[at + 3];
}
uint64_t get64(const Bytes& v, size_t at) {
  return uint64_t{get32(v, at)} << 32 | get32(v, at + 4);
}

Bytes out_cdb(PrOutAction sa, uint8_t type, uint32_t length, uint8_t scope = 0) {
  Bytes c(10, 0);
  c[0] = 0x5F;
  c[1] = static_cast<uint8_t>(sa);
  c[2] = static_cast<uint8_t>(scope << 4 | type);
  c[5] = static_cast<uint8_t>(length >> 24);
  c[6] = static_cast<uint8_t>(length >> 16);
  c[7] = static_cast<uint8_t>(length >> 8);
  c[8] = static_cast<uint8_t>(length);
  return c;
}

Bytes params(uint64_t key, uint64_t sa_key, uint8_t flags = 0) {
  Bytes p(24, 0);
  put64(p, 0, key);
  put64(p, 8, sa_key);
  p[20] = flags;
  return p;
}

Bytes iscsi_tid(const std::string& name, const std::string& isid = "") {
  std::string text = isid.empty() ? name : name + ",i,0x" + isid;
  size_t additional = std::max<size_t>((text.size() + 1 + 3) / 4 * 4, 20);
  Bytes t(4 + additional, 0);
  t[0] = static_cast<uint8_t>((isid.empty() ? 0x00 : 0x40) | 0x05);
  t[2] = static_cast<uint8_t>(additional >> 8);
  t[3] = static_cast<uint8_t>(additional);
  std::copy(text.begin(), text.end(), t.begin() + 4);
  return t;
}

const Bytes kRead10 = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};
const Bytes kWrite10 = {0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0};
const Bytes kInquiry = {0x12, 0, 0, 0, 36, 0};
const Bytes kTur = {0x00, 0, 0, 0, 0, 0};
const Bytes kModeSense6 = {0x1A, 0, 0x3F, 0, 0xFF, 0};
const Bytes kModeSelect6 = {0x15, 0x10, 0, 0, 0, 0};

class PrTest : public ::testing::Test {
 protected:
  PrTest()
      : a_(make_session(1, "iqn.2026-01.test:a", "000000000001")),
        b_(make_session(2, "iqn.2026-01.test:b", "000000000002")),
        c_(make_session(3, "iqn.2026-01.test:c", "000000000003")) {
    make();
  }
  void make(const std::string& file = "") {
    pr_ = std::make_unique<PersistentReservations>(ua_, PersistentReservations::Options{file});
    for (auto* s : {&a_, &b_, &c_}) {
      pr_->session_attached(*s);
      ua_.attach(s->id);
      ua_.take(s->id);
    }
  }
  Outcome out(const SessionInfo& s, PrOutAction sa, uint64_t key, uint64_t sa_key, uint8_t type = 0,
              uint8_t flags = 0, std::vector<uint64_t>* preempted = nullptr) {
    return pr_->out(s, out_cdb(sa, type, 24), params(key, sa_key, flags), preempted);
  }
  Bytes in(const SessionInfo& s, uint8_t sa) {
    Bytes cdb = {0x5E, sa, 0, 0, 0, 0, 0, 0x10, 0, 0};
    Bytes data;
    EXPECT_TRUE(pr_->in(s, cdb, data).ok());
    return data;
  }
  void reg(const SessionInfo& s, uint64_t key) {
    ASSERT_EQ(out(s, PrOutAction::kRegister, 0, key), Outcome::good());
  }

  UnitAttentions ua_;
  SessionInfo a_, b_, c_;
  std::unique_ptr<PersistentReservations> pr_;
};

TEST_F(PrTest, RegisterChangesGenerationAndReadKeys) {
  EXPECT_EQ(pr_->generation(), 0u);
  reg(a_, 0xA);
  reg(b_, 0xB);
  EXPECT_EQ(pr_->generation(), 2u);
  Bytes keys = in(a_, 0x00);
  ASSERT_EQ(keys.size(), 24u);
  EXPECT_EQ(get32(keys, 0), 2u);
  EXPECT_EQ(get32(keys, 4), 16u);
  EXPECT_EQ(get64(keys, 8), 0xAu);
  EXPECT_EQ(get64(keys, 16), 0xBu);
  // Change key, unregister.
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 0xA, 0xAA), Outcome::good());
  EXPECT_EQ(out(b_, PrOutAction::kRegister, 0xB, 0), Outcome::good());
  keys = in(a_, 0x00);
  ASSERT_EQ(keys.size(), 16u);
  EXPECT_EQ(get32(keys, 0), 4u);
  EXPECT_EQ(get64(keys, 8), 0xAAu);
}

TEST_F(PrTest, RegisterKeyRules) {
  // Unregistered nexus with a non-zero key: conflict.
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 5, 6), Outcome::reservation_conflict());
  // Unregistered, key 0, service action key 0: GOOD, nothing happens.
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 0, 0), Outcome::good());
  EXPECT_EQ(pr_->generation(), 0u);
  reg(a_, 0xA);
  // Registered with the wrong key: conflict.
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 0xB, 0xC), Outcome::reservation_conflict());
  // REGISTER AND IGNORE EXISTING KEY ignores it.
  EXPECT_EQ(out(a_, PrOutAction::kRegisterAndIgnoreExistingKey, 0x123, 0xC), Outcome::good());
  EXPECT_EQ(get64(in(a_, 0), 8), 0xCu);
  EXPECT_EQ(out(b_, PrOutAction::kRegisterAndIgnoreExistingKey, 0x123, 0xD), Outcome::good());
  EXPECT_EQ(pr_->registrations(), 2u);
}

TEST_F(PrTest, RegistrationIsPerNexusNotPerName) {
  SessionInfo a2 = make_session(4, a_.initiator_name, "000000000099");
  pr_->session_attached(a2);
  reg(a_, 0xA);
  EXPECT_TRUE(pr_->is_registered(a_));
  EXPECT_FALSE(pr_->is_registered(a2));
  SessionInfo a_other_port = make_session(5, a_.initiator_name, "000000000001", 2);
  EXPECT_FALSE(pr_->is_registered(a_other_port));
  // ALL_TG_PT registers the initiator port through every target port.
  EXPECT_EQ(out(b_, PrOutAction::kRegister, 0, 0xB, 0, 0x04), Outcome::good());
  SessionInfo b_other_port = make_session(6, b_.initiator_name, "000000000002", 7);
  EXPECT_TRUE(pr_->is_registered(b_other_port));
}

TEST_F(PrTest, ParameterListValidation) {
  // Length other than 24.
  EXPECT_EQ(pr_->out(a_, out_cdb(PrOutAction::kRegister, 0, 28), Bytes(28, 0)),
            Outcome::check(scsi::kParameterListLengthError));
  EXPECT_EQ(pr_->out(a_, out_cdb(PrOutAction::kRegister, 0, 20), Bytes(20, 0)),
            Outcome::check(scsi::kParameterListLengthError));
  // Less data than the CDB says.
  EXPECT_EQ(pr_->out(a_, out_cdb(PrOutAction::kRegister, 0, 24), Bytes(10, 0)),
            Outcome::check(scsi::kParameterListLengthError));
  // SPEC_I_PT unsupported.
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 0, 1, 0, 0x08),
            Outcome::invalid_parameter_field(20, 3));
  // APTPL without a state file.
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 0, 1, 0, 0x01),
            Outcome::invalid_parameter_field(20, 0));
  // Unknown service action, bad scope, bad type.
  Bytes bad_sa = out_cdb(PrOutAction::kRegister, 0, 24);
  bad_sa[1] = 0x09;
  EXPECT_EQ(pr_->out(a_, bad_sa, params(0, 1)), Outcome::invalid_cdb_field(1, 4));
  reg(a_, 1);
  EXPECT_EQ(pr_->out(a_, out_cdb(PrOutAction::kReserve, 1, 24, 2), params(1, 0)),
            Outcome::invalid_cdb_field(2, 7));
  EXPECT_EQ(out(a_, PrOutAction::kReserve, 1, 0, 0x2), Outcome::invalid_cdb_field(2, 3));
  EXPECT_EQ(out(a_, PrOutAction::kReserve, 1, 0, 0x4), Outcome::invalid_cdb_field(2, 3));
  EXPECT_EQ(out(a_, PrOutAction::kReserve, 1, 0, 0x9), Outcome::invalid_cdb_field(2, 3));
  EXPECT_EQ(pr_->out(a_, Bytes{0x5F, 0}, params(1, 0)), Outcome::invalid_cdb_field(0));
  EXPECT_FALSE(pr_->reservation_type());
}

TEST_F(PrTest, PrInServiceActions) {
  Bytes data;
  Bytes cdb = {0x5E, 0x04, 0, 0, 0, 0, 0, 0x10, 0, 0};
  EXPECT_EQ(pr_->in(a_, cdb, data), Outcome::invalid_cdb_field(1, 4));
  cdb[1] = 0x1F;
  EXPECT_EQ(pr_->in(a_, cdb, data), Outcome::invalid_cdb_field(1, 4));
  EXPECT_EQ(pr_->in(a_, Bytes{0x5E}, data), Outcome::invalid_cdb_field(0));
}

TEST_F(PrTest, ReportCapabilitiesBytes) {
  Bytes caps = in(a_, 0x02);
  EXPECT_EQ(caps, (Bytes{0x00, 0x08, 0x14, 0x90, 0xEA, 0x01, 0x00, 0x00}));
}

TEST_F(PrTest, ReadReservationBytes) {
  Bytes r = in(a_, 0x01);
  EXPECT_EQ(r, (Bytes{0, 0, 0, 0, 0, 0, 0, 0}));
  reg(a_, 0x1122334455667788ull);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0x1122334455667788ull, 0, 0x3), Outcome::good());
  r = in(b_, 0x01);
  Bytes want = {0,    0,    0,    1,    0, 0, 0, 16, 0x11, 0x22, 0x33, 0x44,
                0x55, 0x66, 0x77, 0x88, 0, 0, 0, 0,  0,    0x03, 0,    0};
  EXPECT_EQ(r, want);
  EXPECT_EQ(pr_->generation(), 1u);  // RESERVE does not bump PRgeneration
}

TEST_F(PrTest, ReadReservationAllRegistrantsKeyIsZero) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  ASSERT_EQ(out(b_, PrOutAction::kReserve, 0xB, 0, 0x8), Outcome::good());
  Bytes r = in(a_, 0x01);
  ASSERT_EQ(r.size(), 24u);
  EXPECT_EQ(get64(r, 8), 0u);
  EXPECT_EQ(r[21], 0x08);
  EXPECT_TRUE(pr_->is_holder(a_));
  EXPECT_TRUE(pr_->is_holder(b_));
  EXPECT_FALSE(pr_->is_holder(c_));
}

TEST_F(PrTest, ReadFullStatusBytes) {
  reg(a_, 0xA);
  EXPECT_EQ(out(b_, PrOutAction::kRegister, 0, 0xB, 0, 0x04), Outcome::good());
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x1), Outcome::good());
  Bytes fs = in(c_, 0x03);
  // "iqn.2026-01.test:a" is 18 chars + NUL -> padded to 20; TransportID 24 bytes.
  ASSERT_EQ(fs.size(), 8u + 2 * (24 + 24));
  EXPECT_EQ(get32(fs, 0), 2u);
  EXPECT_EQ(get32(fs, 4), 96u);
  EXPECT_EQ(get64(fs, 8), 0xAu);
  EXPECT_EQ(fs[8 + 12], 0x01);  // R_HOLDER
  EXPECT_EQ(fs[8 + 13], 0x01);  // scope 0, type WE
  EXPECT_EQ(fs[8 + 18], 0x00);
  EXPECT_EQ(fs[8 + 19], 0x01);  // relative target port 1
  EXPECT_EQ(get32(fs, 8 + 20), 24u);
  Bytes tid_a(fs.begin() + 32, fs.begin() + 56);
  EXPECT_EQ(tid_a, iscsi_tid("iqn.2026-01.test:a"));
  size_t b = 8 + 48;
  EXPECT_EQ(get64(fs, b), 0xBu);
  EXPECT_EQ(fs[b + 12], 0x02);  // ALL_TG_PT, not holder
  EXPECT_EQ(fs[b + 13], 0x00);
  EXPECT_EQ(fs[b + 19], 0x00);  // relative port ignored with ALL_TG_PT
}

// SPC-4 table 65 / SBC-3 table 13: for every type, who may read and write.
TEST_F(PrTest, ConflictMatrixAllTypes) {
  enum Who { kHolder, kRegistered, kUnregistered };
  struct Expect {
    uint8_t type;
    // [who][read, write]: true = conflict
    bool conflict[3][2];
  };
  const Expect table[] = {
      {0x1, {{false, false}, {false, true}, {false, true}}},   // WE
      {0x3, {{false, false}, {true, true}, {true, true}}},     // EA
      {0x5, {{false, false}, {false, false}, {false, true}}},  // WERO
      {0x6, {{false, false}, {false, false}, {true, true}}},   // EARO
      {0x7, {{false, false}, {false, false}, {false, true}}},  // WEAR
      {0x8, {{false, false}, {false, false}, {true, true}}},   // EAAR
  };
  for (const Expect& e : table) {
    make();
    reg(a_, 0xA);
    reg(b_, 0xB);
    ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, e.type), Outcome::good());
    const SessionInfo* who[3] = {&a_, &b_, &c_};
    for (int w = 0; w < 3; ++w) {
      SCOPED_TRACE("type " + std::to_string(e.type) + " who " + std::to_string(w));
      EXPECT_EQ(pr_->conflicts(*who[w], kRead10), e.conflict[w][0]);
      EXPECT_EQ(pr_->conflicts(*who[w], kModeSense6), e.conflict[w][0]);
      EXPECT_EQ(pr_->conflicts(*who[w], kWrite10), e.conflict[w][1]);
      EXPECT_EQ(pr_->conflicts(*who[w], kModeSelect6), e.conflict[w][1]);
      EXPECT_FALSE(pr_->conflicts(*who[w], kInquiry));
      EXPECT_FALSE(pr_->conflicts(*who[w], kTur));
    }
    // Holder of all-registrants: every registrant; others the same as above.
    if (e.type >= 0x7) {
      EXPECT_TRUE(pr_->is_holder(b_));
    }
  }
}

TEST_F(PrTest, NoReservationNoConflict) {
  reg(a_, 0xA);
  EXPECT_FALSE(pr_->conflicts(c_, kWrite10));
}

TEST_F(PrTest, ReserveRules) {
  // Unregistered: conflict. Wrong key: conflict.
  EXPECT_EQ(out(a_, PrOutAction::kReserve, 0, 0, 0x1), Outcome::reservation_conflict());
  reg(a_, 0xA);
  reg(b_, 0xB);
  EXPECT_EQ(out(a_, PrOutAction::kReserve, 0xB, 0, 0x1), Outcome::reservation_conflict());
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x1), Outcome::good());
  // The holder repeats it: GOOD; another type: conflict; another nexus: conflict.
  EXPECT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x1), Outcome::good());
  EXPECT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x3), Outcome::reservation_conflict());
  EXPECT_EQ(out(b_, PrOutAction::kReserve, 0xB, 0, 0x1), Outcome::reservation_conflict());
  EXPECT_EQ(pr_->reservation_type(), PrType::kWriteExclusive);
}

TEST_F(PrTest, ReleaseRules) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x5), Outcome::good());
  // Not the holder: GOOD, nothing released. Unregistered: conflict.
  EXPECT_EQ(out(b_, PrOutAction::kRelease, 0xB, 0, 0x5), Outcome::good());
  EXPECT_TRUE(pr_->reservation_type());
  EXPECT_EQ(out(c_, PrOutAction::kRelease, 0, 0, 0x5), Outcome::reservation_conflict());
  // Wrong type.
  EXPECT_EQ(out(a_, PrOutAction::kRelease, 0xA, 0, 0x1),
            Outcome::check(scsi::kInvalidReleaseOfPersistentReservation));
  EXPECT_EQ(out(a_, PrOutAction::kRelease, 0xA, 0, 0x5), Outcome::good());
  EXPECT_FALSE(pr_->reservation_type());
  // Registrants-only release: other registrants learn RESERVATIONS RELEASED.
  EXPECT_EQ(ua_.take(b_.id), UnitAttention::kReservationsReleased);
  EXPECT_EQ(ua_.take(a_.id), std::nullopt);
  EXPECT_EQ(ua_.take(c_.id), std::nullopt);
  // Write Exclusive release: no unit attention.
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x1), Outcome::good());
  EXPECT_EQ(out(a_, PrOutAction::kRelease, 0xA, 0, 0x1), Outcome::good());
  EXPECT_FALSE(ua_.pending(b_.id));
  // No reservation: GOOD.
  EXPECT_EQ(out(a_, PrOutAction::kRelease, 0xA, 0, 0x1), Outcome::good());
}

TEST_F(PrTest, HolderUnregisteringReleases) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x6), Outcome::good());
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 0xA, 0), Outcome::good());
  EXPECT_FALSE(pr_->reservation_type());
  EXPECT_EQ(ua_.take(b_.id), UnitAttention::kReservationsReleased);
}

TEST_F(PrTest, AllRegistrantsReservationLastsUntilLastRegistrantLeaves) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x7), Outcome::good());
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 0xA, 0), Outcome::good());
  EXPECT_EQ(pr_->reservation_type(), PrType::kWriteExclusiveAllRegistrants);
  EXPECT_TRUE(pr_->is_holder(b_));
  EXPECT_EQ(out(b_, PrOutAction::kRegister, 0xB, 0), Outcome::good());
  EXPECT_FALSE(pr_->reservation_type());
}

TEST_F(PrTest, ClearRemovesEverythingAndTellsOthers) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x3), Outcome::good());
  EXPECT_EQ(out(c_, PrOutAction::kClear, 0, 0), Outcome::reservation_conflict());
  EXPECT_EQ(out(b_, PrOutAction::kClear, 0xA, 0), Outcome::reservation_conflict());
  EXPECT_EQ(out(b_, PrOutAction::kClear, 0xB, 0), Outcome::good());
  EXPECT_EQ(pr_->registrations(), 0u);
  EXPECT_FALSE(pr_->reservation_type());
  EXPECT_EQ(pr_->generation(), 3u);
  EXPECT_EQ(ua_.take(a_.id), UnitAttention::kReservationsPreempted);
  EXPECT_FALSE(ua_.pending(b_.id));
  EXPECT_FALSE(ua_.pending(c_.id));
}

TEST_F(PrTest, PreemptHolder) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  reg(c_, 0xC);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x1), Outcome::good());
  std::vector<uint64_t> preempted;
  EXPECT_EQ(out(b_, PrOutAction::kPreempt, 0xB, 0xA, 0x3, 0, &preempted), Outcome::good());
  EXPECT_TRUE(preempted.empty());  // PREEMPT does not abort
  EXPECT_TRUE(pr_->is_holder(b_));
  EXPECT_FALSE(pr_->is_registered(a_));
  EXPECT_EQ(pr_->reservation_type(), PrType::kExclusiveAccess);
  EXPECT_EQ(ua_.take(a_.id), UnitAttention::kRegistrationsPreempted);
  // Type changed: the remaining other registrant learns RESERVATIONS RELEASED.
  EXPECT_EQ(ua_.take(c_.id), UnitAttention::kReservationsReleased);
  EXPECT_FALSE(ua_.pending(b_.id));
  EXPECT_EQ(pr_->generation(), 4u);
}

TEST_F(PrTest, PreemptErrors) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  EXPECT_EQ(out(c_, PrOutAction::kPreempt, 0, 0xA, 0x1), Outcome::reservation_conflict());
  EXPECT_EQ(out(b_, PrOutAction::kPreempt, 0xA, 0xA, 0x1), Outcome::reservation_conflict());
  // No reservation: key 0 is invalid; a key nobody holds conflicts.
  EXPECT_EQ(out(b_, PrOutAction::kPreempt, 0xB, 0, 0x1), Outcome::invalid_parameter_field(8));
  EXPECT_EQ(out(b_, PrOutAction::kPreempt, 0xB, 0x77, 0x1), Outcome::reservation_conflict());
  EXPECT_EQ(pr_->registrations(), 2u);
  // Registrations only (no reservation): removes them.
  EXPECT_EQ(out(b_, PrOutAction::kPreempt, 0xB, 0xA, 0x1), Outcome::good());
  EXPECT_FALSE(pr_->is_registered(a_));
  EXPECT_FALSE(pr_->reservation_type());
  EXPECT_EQ(ua_.take(a_.id), UnitAttention::kRegistrationsPreempted);
}

TEST_F(PrTest, PreemptNonHolderKeyLeavesReservation) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  reg(c_, 0xC);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x1), Outcome::good());
  EXPECT_EQ(out(b_, PrOutAction::kPreempt, 0xB, 0xC, 0x1), Outcome::good());
  EXPECT_TRUE(pr_->is_holder(a_));
  EXPECT_FALSE(pr_->is_registered(c_));
  Bytes keys = in(a_, 0);
  EXPECT_EQ(get32(keys, 4), 16u);
}

TEST_F(PrTest, PreemptAllRegistrantsWithZeroKey) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  reg(c_, 0xC);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x8), Outcome::good());
  std::vector<uint64_t> preempted;
  EXPECT_EQ(out(b_, PrOutAction::kPreemptAndAbort, 0xB, 0, 0x1, 0, &preempted), Outcome::good());
  EXPECT_EQ(pr_->registrations(), 1u);
  EXPECT_TRUE(pr_->is_holder(b_));
  EXPECT_EQ(pr_->reservation_type(), PrType::kWriteExclusive);
  std::sort(preempted.begin(), preempted.end());
  EXPECT_EQ(preempted, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(ua_.take(a_.id), UnitAttention::kRegistrationsPreempted);
  EXPECT_EQ(ua_.take(c_.id), UnitAttention::kRegistrationsPreempted);
}

TEST_F(PrTest, PreemptOwnReservationChangesType) {
  reg(a_, 0xA);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x1), Outcome::good());
  EXPECT_EQ(out(a_, PrOutAction::kPreempt, 0xA, 0xA, 0x3), Outcome::good());
  EXPECT_TRUE(pr_->is_holder(a_));
  EXPECT_EQ(pr_->reservation_type(), PrType::kExclusiveAccess);
}

TEST_F(PrTest, RegisterAndMove) {
  reg(a_, 0xA);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x3), Outcome::good());
  auto move = [&](const SessionInfo& from, uint64_t key, uint64_t sa_key, const Bytes& tid,
                  uint16_t rel_port, uint8_t flags) {
    Bytes p(24, 0);
    put64(p, 0, key);
    put64(p, 8, sa_key);
    p[17] = flags;
    p[18] = static_cast<uint8_t>(rel_port >> 8);
    p[19] = static_cast<uint8_t>(rel_port);
    p[20] = static_cast<uint8_t>(tid.size() >> 24);
    p[21] = static_cast<uint8_t>(tid.size() >> 16);
    p[22] = static_cast<uint8_t>(tid.size() >> 8);
    p[23] = static_cast<uint8_t>(tid.size());
    p.insert(p.end(), tid.begin(), tid.end());
    return pr_->out(from,
                    out_cdb(PrOutAction::kRegisterAndMove, 0, static_cast<uint32_t>(p.size())), p);
  };
  Bytes tid_b = iscsi_tid(b_.initiator_name, "000000000002");
  // Not the holder / unregistered / wrong key: conflict.
  EXPECT_EQ(move(b_, 0, 0xB, tid_b, 1, 0), Outcome::reservation_conflict());
  EXPECT_EQ(move(a_, 0x1, 0xB, tid_b, 1, 0), Outcome::reservation_conflict());
  // Service action key 0, moving to itself, malformed TransportID, length.
  EXPECT_EQ(move(a_, 0xA, 0, tid_b, 1, 0), Outcome::invalid_parameter_field(8));
  EXPECT_EQ(move(a_, 0xA, 0xB, iscsi_tid(a_.initiator_name, "000000000001"), 1, 0),
            Outcome::invalid_parameter_field(24));
  Bytes fc_tid(24, 0);  // Fibre Channel: not an initiator port we can name
  EXPECT_EQ(move(a_, 0xA, 0xB, fc_tid, 1, 0), Outcome::invalid_parameter_field(24));
  Bytes p(24, 0);
  p[23] = 100;  // TransportID longer than the list
  EXPECT_EQ(pr_->out(a_, out_cdb(PrOutAction::kRegisterAndMove, 0, 24), p),
            Outcome::check(scsi::kParameterListLengthError));
  EXPECT_EQ(pr_->out(a_, out_cdb(PrOutAction::kRegisterAndMove, 0, 16), Bytes(16, 0)),
            Outcome::check(scsi::kParameterListLengthError));
  EXPECT_EQ(move(a_, 0xA, 0xB, tid_b, 1, 0x01), Outcome::invalid_parameter_field(17, 0));
  // Move with UNREG: b holds, a is gone.
  uint32_t gen = pr_->generation();
  EXPECT_EQ(move(a_, 0xA, 0xB, tid_b, 1, 0x02), Outcome::good());
  EXPECT_TRUE(pr_->is_holder(b_));
  EXPECT_FALSE(pr_->is_registered(a_));
  EXPECT_EQ(pr_->reservation_type(), PrType::kExclusiveAccess);
  EXPECT_EQ(pr_->generation(), gen + 1);
  EXPECT_TRUE(pr_->conflicts(a_, kRead10));
  EXPECT_FALSE(pr_->conflicts(b_, kWrite10));
  // Move back without UNREG (format 00b TransportID: the name): both stay registered.
  reg(a_, 0xA);
  EXPECT_EQ(move(b_, 0xB, 0xAA, iscsi_tid(a_.initiator_name), 1, 0), Outcome::good());
  EXPECT_TRUE(pr_->is_holder(a_));
  EXPECT_TRUE(pr_->is_registered(b_));
  EXPECT_EQ(get64(in(a_, 1), 8), 0xAu);  // an existing registration keeps its key
  // All-registrants reservations cannot be moved.
  EXPECT_EQ(out(a_, PrOutAction::kRelease, 0xA, 0, 0x3), Outcome::good());
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x7), Outcome::good());
  EXPECT_EQ(move(a_, 0xA, 0xC, iscsi_tid(c_.initiator_name, "000000000003"), 1, 0),
            Outcome::reservation_conflict());
}

TEST_F(PrTest, Spc2Exceptions) {
  EXPECT_EQ(pr_->spc2_exception(a_), std::nullopt);
  reg(a_, 0xA);
  // Registrations exist: RESERVE/RELEASE conflict (SPC-2 5.5.1)...
  EXPECT_EQ(pr_->spc2_exception(b_), Outcome::reservation_conflict());
  EXPECT_EQ(pr_->spc2_exception(a_), Outcome::reservation_conflict());
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x1), Outcome::good());
  // ...except from the holder, GOOD with no effect (SPC-4 5.13.3).
  EXPECT_EQ(pr_->spc2_exception(a_), Outcome::good());
  reg(b_, 0xB);
  EXPECT_EQ(pr_->spc2_exception(b_), Outcome::reservation_conflict());
  EXPECT_EQ(out(a_, PrOutAction::kRelease, 0xA, 0, 0x1), Outcome::good());
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x5), Outcome::good());
  EXPECT_EQ(pr_->spc2_exception(b_), Outcome::good());  // registrant under RO
  EXPECT_EQ(pr_->spc2_exception(c_), Outcome::reservation_conflict());
}

TEST(InitiatorPortTest, TransportIdRoundTrip) {
  size_t used = 0;
  Bytes t = iscsi_tid("iqn.x:y", "00023d000001");
  auto p = InitiatorPort::parse_transport_id(t, &used);
  ASSERT_TRUE(p);
  EXPECT_EQ(used, t.size());
  EXPECT_EQ(p->name, "iqn.x:y");
  EXPECT_EQ(p->isid, "00023d000001");
  auto q = InitiatorPort::parse_transport_id(iscsi_tid("IQN.X:Y"), &used);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->name, "iqn.x:y");  // iSCSI names compare case-insensitively
  EXPECT_TRUE(q->isid.empty());
  EXPECT_TRUE(q->matches(*p));
  EXPECT_FALSE(p->matches(*q));
  // Malformed: short, no NUL, length not a multiple of 4, wrong protocol, format 2.
  EXPECT_FALSE(InitiatorPort::parse_transport_id(Bytes{0x05, 0, 0}, &used));
  Bytes no_nul(24, 'a');
  no_nul[0] = 0x05;
  no_nul[1] = 0;
  no_nul[2] = 0;
  no_nul[3] = 20;
  EXPECT_FALSE(InitiatorPort::parse_transport_id(no_nul, &used));
  Bytes odd = iscsi_tid("iqn.x:y");
  odd[3] = 21;
  EXPECT_FALSE(InitiatorPort::parse_transport_id(odd, &used));
  Bytes fmt2 = iscsi_tid("iqn.x:y");
  fmt2[0] = 0x85;
  EXPECT_FALSE(InitiatorPort::parse_transport_id(fmt2, &used));
  Bytes fmt1_no_isid = iscsi_tid("iqn.x:y");
  fmt1_no_isid[0] = 0x45;
  EXPECT_FALSE(InitiatorPort::parse_transport_id(fmt1_no_isid, &used));
  Bytes empty_name(24, 0);
  empty_name[0] = 0x05;
  empty_name[3] = 20;
  EXPECT_FALSE(InitiatorPort::parse_transport_id(empty_name, &used));
}

class AptplTest : public PrTest {
 protected:
  AptplTest() {
    char tmpl[] = "/tmp/scstu-pr-XXXXXX";
    dir_ = mkdtemp(tmpl);
    file_ = dir_ + "/lun0.pr";
    make(file_);
  }
  ~AptplTest() override { std::filesystem::remove_all(dir_); }
  std::string dir_, file_;
};

TEST_F(AptplTest, StateSurvivesReload) {
  ASSERT_EQ(out(a_, PrOutAction::kRegister, 0, 0xA, 0, 0x01), Outcome::good());
  ASSERT_EQ(out(b_, PrOutAction::kRegister, 0, 0xB, 0, 0x05), Outcome::good());
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x6), Outcome::good());
  ASSERT_TRUE(std::filesystem::exists(file_));
  EXPECT_FALSE(std::filesystem::exists(file_ + ".tmp"));
  Bytes keys = in(a_, 0), resv = in(a_, 1), full = in(a_, 3), caps = in(a_, 2);
  EXPECT_EQ(caps[2] & 0x01, 0x01);  // PTPL_C
  EXPECT_EQ(caps[3] & 0x01, 0x01);  // PTPL_A

  // "Restart": new object, new session ids for the same initiator ports.
  pr_ = std::make_unique<PersistentReservations>(ua_, PersistentReservations::Options{file_});
  ASSERT_EQ(pr_->load(), "");
  a_.id = 11;
  b_.id = 12;
  c_.id = 13;
  for (auto* s : {&a_, &b_, &c_}) pr_->session_attached(*s);
  EXPECT_EQ(in(a_, 0), keys);
  EXPECT_EQ(in(a_, 1), resv);
  EXPECT_EQ(in(a_, 3), full);
  EXPECT_TRUE(pr_->is_holder(a_));
  EXPECT_TRUE(pr_->conflicts(c_, kRead10));
  EXPECT_FALSE(pr_->conflicts(b_, kWrite10));

  // APTPL = 0 in a REGISTER: the state is no longer persistent.
  ASSERT_EQ(out(b_, PrOutAction::kRegister, 0xB, 0xBB, 0, 0x00), Outcome::good());
  EXPECT_FALSE(std::filesystem::exists(file_));
  pr_ = std::make_unique<PersistentReservations>(ua_, PersistentReservations::Options{file_});
  ASSERT_EQ(pr_->load(), "");
  EXPECT_EQ(pr_->registrations(), 0u);
}

TEST_F(AptplTest, CorruptFileIsReportedAndIgnored) {
  for (const char* text :
       {"garbage\n", "scstu-pr-state 1\nreg zz 1 0 5 6161 -\n",
        "scstu-pr-state 1\nreservation 1 4\n", "scstu-pr-state 1\nreservation 2 0\n", "",
        "scstu-pr-state 1\nbogus\n"}) {
    std::ofstream(file_) << text;
    pr_ = std::make_unique<PersistentReservations>(ua_, PersistentReservations::Options{file_});
    std::string err = pr_->load();
    EXPECT_NE(err.find(file_), std::string::npos) << text;
    EXPECT_EQ(pr_->registrations(), 0u);
    EXPECT_FALSE(pr_->reservation_type());
  }
}

TEST_F(AptplTest, UnwritableFileFailsTheCommandAndKeepsTheOldState) {
  pr_ = std::make_unique<PersistentReservations>(
      ua_, PersistentReservations::Options{dir_ + "/missing-dir/lun0.pr"});
  pr_->session_attached(a_);
  EXPECT_EQ(out(a_, PrOutAction::kRegister, 0, 0xA, 0, 0x01),
            Outcome::check(scsi::kInsufficientRegistrationResources));
  EXPECT_EQ(pr_->registrations(), 0u);
  EXPECT_EQ(pr_->generation(), 0u);
}

}  // namespace
}  // namespace scstu::core

namespace scstu::core {
namespace {

// A nexus the unit was not told about is judged by its SessionInfo alone.
TEST_F(PrTest, ConflictForAnUnattachedNexus) {
  reg(a_, 0xA);
  reg(b_, 0xB);
  ASSERT_EQ(out(a_, PrOutAction::kReserve, 0xA, 0, 0x6), Outcome::good());
  SessionInfo b_again = b_;
  b_again.id = 99;
  SessionInfo stranger = make_session(98, "iqn.2026-01.test:zz", "000000000009");
  EXPECT_FALSE(pr_->conflicts(b_again, kWrite10));
  EXPECT_TRUE(pr_->conflicts(stranger, kRead10));
  pr_->session_detached(b_.id);
  EXPECT_FALSE(pr_->conflicts(b_, kWrite10));
}

}  // namespace
}  // namespace scstu::core
