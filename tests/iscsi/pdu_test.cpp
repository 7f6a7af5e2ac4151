#include "iscsi/pdu.h"

#include <gtest/gtest.h>

#include <random>

namespace scstu::iscsi {
namespace {

TEST(Pdu, ScsiCommandRoundTrip) {
  ScsiCommandPdu c;
  c.immediate = true;
  c.final = true;
  c.read = true;
  c.attr = 1;
  c.lun = 0x0001000000000000ull;
  c.itt = 0x12345678;
  c.expected_length = 4096;
  c.cmdsn = 0xFFFFFFFE;
  c.expstatsn = 9;
  c.cdb[0] = 0x28;
  c.cdb[15] = 0xAA;
  Bhs h;
  c.encode(h);
  EXPECT_EQ(h.opcode(), Opcode::kScsiCommand);
  EXPECT_TRUE(h.immediate());
  EXPECT_EQ(h.b[1], 0x80 | 0x40 | 1);
  EXPECT_EQ(h.itt(), 0x12345678u);
  ScsiCommandPdu d = ScsiCommandPdu::decode(h);
  EXPECT_EQ(d.lun, c.lun);
  EXPECT_EQ(d.expected_length, 4096u);
  EXPECT_EQ(d.cmdsn, 0xFFFFFFFEu);
  EXPECT_EQ(d.cdb, c.cdb);
  EXPECT_TRUE(d.read);
  EXPECT_FALSE(d.write);
}

TEST(Pdu, DataInStatusCollapseFields) {
  DataInPdu p;
  p.final = true;
  p.has_status = true;
  p.underflow = true;
  p.status = 0;
  p.itt = 5;
  p.statsn = 77;
  p.datasn = 3;
  p.buffer_offset = 8192;
  p.residual = 512;
  Bhs h;
  p.encode(h, 1024);
  EXPECT_EQ(h.b[1], 0x80 | 0x02 | 0x01);
  EXPECT_EQ(h.data_length(), 1024u);
  DataInPdu d = DataInPdu::decode(h);
  EXPECT_EQ(d.statsn, 77u);
  EXPECT_EQ(d.residual, 512u);
  EXPECT_EQ(d.buffer_offset, 8192u);
  // Without S, StatSN and residual are reserved (11.7.4): encoded as zero.
  p.has_status = false;
  p.encode(h, 1024);
  EXPECT_EQ(get32(&h.b[24]), 0u);
  EXPECT_EQ(get32(&h.b[44]), 0u);
}

TEST(Pdu, ResponseLoginLogoutRejectNopR2TRoundTrip) {
  Bhs h;
  ScsiResponsePdu r;
  r.overflow = true;
  r.status = 2;
  r.residual = 100;
  r.expdatasn = 4;
  r.encode(h, 20);
  auto r2 = ScsiResponsePdu::decode(h);
  EXPECT_TRUE(r2.overflow);
  EXPECT_FALSE(r2.underflow);
  EXPECT_EQ(r2.residual, 100u);
  EXPECT_EQ(h.opcode(), Opcode::kScsiResponse);

  LoginPdu l;
  l.transit = true;
  l.csg = 1;
  l.nsg = 3;
  l.isid = {0x80, 1, 2, 3, 4, 5};
  l.tsih = 0x1234;
  l.cid = 7;
  l.sn = 1;
  l.encode(h, Opcode::kLoginRequest, 0);
  EXPECT_EQ(h.b[0], 0x43);  // I bit always set
  EXPECT_EQ(h.b[1], 0x87);
  auto l2 = LoginPdu::decode(h);
  EXPECT_EQ(l2.isid, l.isid);
  EXPECT_EQ(l2.tsih, 0x1234);
  EXPECT_EQ(l2.cid, 7);

  LogoutResponsePdu lo;
  lo.time2wait = 2;
  lo.time2retain = 20;
  lo.encode(h);
  auto lo2 = LogoutResponsePdu::decode(h);
  EXPECT_EQ(lo2.time2retain, 20);

  RejectPdu rj;
  rj.reason = static_cast<uint8_t>(RejectReason::kProtocolError);
  rj.encode(h);
  EXPECT_EQ(h.data_length(), 48u);
  EXPECT_EQ(h.itt(), kReservedTag);

  NopPdu n;
  n.itt = kReservedTag;
  n.ttt = 0x42;
  n.sn = 3;
  n.maxcmdsn = 9;
  n.encode(h, Opcode::kNopIn, 0);
  auto n2 = NopPdu::decode(h);
  EXPECT_EQ(n2.ttt, 0x42u);
  EXPECT_EQ(n2.maxcmdsn, 9u);

  R2TPdu t;
  t.ttt = 1;
  t.r2tsn = 2;
  t.buffer_offset = 3;
  t.desired_length = 4;
  t.encode(h);
  auto t2 = R2TPdu::decode(h);
  EXPECT_EQ(t2.desired_length, 4u);
  EXPECT_EQ(t2.r2tsn, 2u);

  TmfRequestPdu m;
  m.function = 1;
  m.referenced_itt = 99;
  m.refcmdsn = 5;
  m.encode(h);
  EXPECT_EQ(TmfRequestPdu::decode(h).referenced_itt, 99u);

  AsyncMessagePdu a;
  a.event = 1;
  a.parameter3 = 2;
  a.encode(h, 0);
  EXPECT_EQ(AsyncMessagePdu::decode(h).parameter3, 2);
}

TEST(Pdu, LengthBounds) {
  Bhs h;
  DataOutPdu d;
  d.encode(h, 8192);
  EXPECT_EQ(check_lengths(h, 8192), nullptr);
  EXPECT_NE(check_lengths(h, 8191), nullptr);
  h.b[4] = 1;  // AHS on a Data-Out
  EXPECT_NE(check_lengths(h, 8192), nullptr);
  h.set_data_length(kMaxDataSegment);
  EXPECT_NE(check_lengths(h, 1u << 20), nullptr);
}

TEST(Pdu, AhsExtendedCdbAndBidi) {
  std::array<uint8_t, 64> buf{};
  std::array<uint8_t, 16> tail{};
  for (size_t i = 0; i < tail.size(); ++i) tail[i] = static_cast<uint8_t>(16 + i);
  size_t n = build_extended_cdb_ahs(tail, buf);
  ASSERT_EQ(n, 20u);  // 3 + 17 = 20, already aligned
  size_t m = build_bidi_read_length_ahs(4096, std::span<uint8_t>(buf).subspan(n));
  ASSERT_EQ(m, 8u);
  AhsInfo info;
  ASSERT_EQ(parse_ahs(std::span<const uint8_t>(buf.data(), n + m), info), nullptr);
  ASSERT_EQ(info.extended_cdb.size(), 16u);
  EXPECT_EQ(info.extended_cdb[0], 16);
  EXPECT_TRUE(info.has_bidi_read_length);
  EXPECT_EQ(info.bidi_read_length, 4096u);
}

TEST(Pdu, AhsHostile) {
  AhsInfo info;
  std::array<uint8_t, 8> a{0xFF, 0xFF, 1, 0, 0, 0, 0, 0};  // length beyond the area
  EXPECT_NE(parse_ahs(a, info), nullptr);
  std::array<uint8_t, 8> b{0, 0, 1, 0, 0, 0, 0, 0};  // zero length
  EXPECT_NE(parse_ahs(b, info), nullptr);
  std::array<uint8_t, 8> c{0, 5, 9, 0, 0, 0, 0, 0};  // unknown type
  EXPECT_NE(parse_ahs(c, info), nullptr);
  std::array<uint8_t, 3> d{0, 1, 1};  // truncated
  EXPECT_NE(parse_ahs(d, info), nullptr);
  std::array<uint8_t, 8> e{0, 4, 2, 0, 0, 0, 0, 0};  // bidi AHS of wrong length
  EXPECT_NE(parse_ahs(e, info), nullptr);
  // Random bytes never read outside the span (ASan checks) and never crash.
  std::mt19937 rng(1);
  std::vector<uint8_t> v;
  for (int i = 0; i < 20000; ++i) {
    v.resize(rng() % 64);
    for (auto& x : v) x = static_cast<uint8_t>(rng() % 8 == 0 ? rng() : rng() % 4);
    parse_ahs(v, info);
    for (uint8_t x : info.extended_cdb) (void)x;
  }
}

TEST(Pdu, SerialNumberArithmetic) {
  EXPECT_TRUE(sn_lt(0xFFFFFFFF, 0));
  EXPECT_TRUE(sn_lt(1, 2));
  EXPECT_FALSE(sn_lt(2, 2));
  EXPECT_TRUE(sn_le(2, 2));
  EXPECT_FALSE(sn_lt(0, 0xFFFFFFFF));
}

}  // namespace
}  // namespace scstu::iscsi
