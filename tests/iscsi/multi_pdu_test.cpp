// Text exchanges spanning several PDUs (RFC 7143 11.10/11.11) over a raw
// socket: a SendTargets request split by the C bit, and an answer longer than
// the initiator's MaxRecvDataSegmentLength fetched part by part with the
// Target Transfer Tag; a new request (TTT 0xffffffff) resets the exchange.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "iscsi/pdu.h"
#include "iscsi/text_keys.h"
#include "raw_initiator.h"
#include "test_server.h"

namespace scstu::iscsi {
namespace {

constexpr uint32_t kSmallMrdsl = 512;

Bhs text_request(uint32_t itt, uint32_t ttt, uint32_t cmdsn, bool cont, uint32_t len) {
  TextPdu t;
  t.final = !cont;
  t.continue_ = cont;
  t.itt = itt;
  t.ttt = ttt;
  t.sn = cmdsn;
  Bhs h;
  t.encode(h, Opcode::kTextRequest, len);
  return h;
}

TEST(IscsiText, SendTargetsRequestAndAnswerSpanPdus) {
  constexpr int kExtra = 200;
  TestServer server({"--size-mb", "4", "--extra-targets", std::to_string(kExtra)});
  RawInitiator ini(server.port());
  ASSERT_TRUE(ini.connected());
  auto login = ini.login({{"InitiatorName", "iqn.2026-11.test:text"},
                          {"SessionType", "Discovery"},
                          {"MaxRecvDataSegmentLength", std::to_string(kSmallMrdsl)}},
                         {0x80, 0, 0, 0, 0, 1}, 0, 1, 1);
  ASSERT_TRUE(login.ok);
  uint32_t cmdsn = 1;
  Bhs h;
  std::string data;

  // The request in two parts, split inside the key: C=1, then the rest.
  const std::string part1 = "SendTar", part2 = std::string("gets=All") + '\0';
  ASSERT_TRUE(ini.send_pdu(text_request(0x10, kReservedTag, cmdsn++, true, 7), part1.data(), 7));
  ASSERT_TRUE(ini.recv_pdu(h, data));
  ASSERT_EQ(h.opcode(), Opcode::kTextResponse);
  TextPdu ack = TextPdu::decode(h);
  EXPECT_FALSE(ack.final);
  EXPECT_EQ(h.data_length(), 0u);
  ASSERT_NE(ack.ttt, kReservedTag) << "an empty response with F=0 carries a TTT (11.11)";
  ASSERT_TRUE(
      ini.send_pdu(text_request(0x10, ack.ttt, cmdsn++, false, static_cast<uint32_t>(part2.size())),
                   part2.data(), part2.size()));

  // The answer, part by part.
  std::string all;
  int parts = 0;
  for (;;) {
    ASSERT_TRUE(ini.recv_pdu(h, data)) << "after " << parts << " parts";
    ASSERT_EQ(h.opcode(), Opcode::kTextResponse);
    ASSERT_LE(h.data_length(), kSmallMrdsl);
    TextPdu r = TextPdu::decode(h);
    ++parts;
    all += data;
    if (r.final) {
      EXPECT_EQ(r.ttt, kReservedTag);
      break;
    }
    ASSERT_TRUE(r.continue_);
    ASSERT_NE(r.ttt, kReservedTag);
    ASSERT_LT(parts, 10000);
    ASSERT_TRUE(ini.send_pdu(text_request(0x10, r.ttt, cmdsn++, false, 0)));
  }
  EXPECT_GT(parts, 20);
  // More pairs than parse_text() takes from a peer: split by hand.
  std::set<std::string> names;
  for (size_t pos = 0; pos < all.size();) {
    size_t end = all.find('\0', pos);
    ASSERT_NE(end, std::string::npos) << "the answer ends inside a pair";
    std::string pair = all.substr(pos, end - pos);
    if (pair.rfind("TargetName=", 0) == 0) names.insert(pair.substr(11));
    pos = end + 1;
  }
  EXPECT_EQ(names.size(), size_t{kExtra} + 1);
  EXPECT_EQ(names.count("iqn.2026-11.org.scstu.test:disk"), 1u);

  // A new request (TTT 0xffffffff) in the middle of an answer starts over;
  // the old tag is then unknown: Reject.
  std::string st = std::string("SendTargets=All") + '\0';
  ASSERT_TRUE(ini.send_pdu(
      text_request(0x11, kReservedTag, cmdsn++, false, static_cast<uint32_t>(st.size())), st.data(),
      st.size()));
  ASSERT_TRUE(ini.recv_pdu(h, data));
  TextPdu first = TextPdu::decode(h);
  ASSERT_FALSE(first.final);
  EXPECT_EQ(data.compare(0, 11, "TargetName="), 0);
  ASSERT_TRUE(ini.send_pdu(
      text_request(0x12, kReservedTag, cmdsn++, false, static_cast<uint32_t>(st.size())), st.data(),
      st.size()));
  ASSERT_TRUE(ini.recv_pdu(h, data));
  TextPdu again = TextPdu::decode(h);
  EXPECT_EQ(again.itt, 0x12u);
  EXPECT_EQ(data.compare(0, 11, "TargetName="), 0);
  ASSERT_TRUE(ini.send_pdu(text_request(0x11, first.ttt, cmdsn++, false, 0)));
  ASSERT_TRUE(ini.recv_pdu(h, data));
  EXPECT_EQ(h.opcode(), Opcode::kReject);
  // A text request longer than 64 KiB in C-bit parts is refused, bounded.
  std::string chunk(8192, 'A');
  uint32_t ttt = kReservedTag;
  bool rejected = false;
  for (int i = 0; i < 10 && !rejected; ++i) {
    ASSERT_TRUE(ini.send_pdu(text_request(0x13, ttt, cmdsn++, true, 8192), chunk.data(), 8192));
    ASSERT_TRUE(ini.recv_pdu(h, data));
    if (h.opcode() == Opcode::kReject)
      rejected = true;
    else
      ttt = TextPdu::decode(h).ttt;
  }
  EXPECT_TRUE(rejected);
}

}  // namespace
}  // namespace scstu::iscsi
