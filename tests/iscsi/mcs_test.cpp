// Multiple connections per session (MC/S, RFC 7143 4.4, 6.3.4, 4.2.2.1) with
// a raw-socket initiator (libiscsi does not do MC/S): connections join a
// session by ISID + TSIH, commands are handed to the SCSI layer in CmdSN
// order across connections, each connection keeps its own StatSN, the core
// sees one I_T nexus, and connections leave by logout, by dropping, or by
// reinstatement while the session lives on until the last one goes.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <thread>

#include "iscsi/pdu.h"
#include "iscsi/text_keys.h"
#include "raw_initiator.h"
#include "test_server.h"

namespace scstu::iscsi {
namespace {

constexpr const char* kTarget = "iqn.2026-11.org.scstu.test:disk";
constexpr const char* kInitiator = "iqn.2026-11.test:mcs";
constexpr std::array<uint8_t, 6> kIsid = {0x80, 0x12, 0x34, 0x56, 0x00, 0x01};
constexpr uint8_t kGood = 0x00, kCheckCondition = 0x02, kReservationConflict = 0x18;
// Bounds the wait for any one answer; a gap skipped by timeout (5 s) fits.
constexpr int kAnswerMs = 15000;

struct Reply {
  bool ok = false;
  uint8_t status = 0xFF;
  uint32_t statsn = 0;
  uint32_t expcmdsn = 0;
  std::string data;
};

// One connection of the test session.
class Conn : public RawInitiator {
 public:
  Conn(int port, uint16_t cid) : RawInitiator(port), cid(cid) {}
  uint16_t cid;
};

std::vector<std::pair<std::string, std::string>> login_keys(bool leading) {
  std::vector<std::pair<std::string, std::string>> k = {
      {"InitiatorName", kInitiator}, {"TargetName", kTarget}, {"SessionType", "Normal"}};
  if (leading) {
    k.push_back({"MaxConnections", "4"});
    k.push_back({"ImmediateData", "Yes"});
    k.push_back({"ErrorRecoveryLevel", "0"});
  }
  k.push_back({"MaxRecvDataSegmentLength", "65536"});
  return k;
}

std::array<uint8_t, 16> rw10(uint8_t op, uint32_t lba) {
  std::array<uint8_t, 16> cdb{};
  cdb[0] = op;
  put32(&cdb[2], lba);
  put16(&cdb[7], 1);  // one 512-byte block
  return cdb;
}

// A SCSI Command (non-immediate, F=1) with optional immediate data.
bool send_command(Conn& c, uint32_t itt, uint32_t cmdsn, const std::array<uint8_t, 16>& cdb,
                  bool read, uint32_t edtl, const std::string& immediate = {},
                  uint8_t attr = 1 /* simple */) {
  ScsiCommandPdu p;
  p.final = true;
  p.read = read;
  p.write = !immediate.empty();
  p.attr = attr;
  p.itt = itt;
  p.expected_length = edtl;
  p.cmdsn = cmdsn;
  p.expstatsn = c.exp_statsn();
  p.cdb = cdb;
  Bhs h;
  p.encode(h);
  h.set_data_length(static_cast<uint32_t>(immediate.size()));
  return c.send_pdu(h, immediate.data(), immediate.size());
}

// The next PDU that is not a NOP-In (the target's pings); false when none
// came within `ms`.
bool next_pdu(Conn& c, Bhs& h, std::string& d, int ms = kAnswerMs) {
  for (;;) {
    if (!c.recv_pdu(h, d, ms)) return false;
    if (h.opcode() != Opcode::kNopIn) return true;
  }
}

// The answer to `itt` (any ITT in [itt, itt_end) if given, stored in
// *which): Data-In (with status phase collapse) or SCSI Response.
Reply await(Conn& c, uint32_t itt, int ms = kAnswerMs, uint32_t itt_end = 0,
            uint32_t* which = nullptr) {
  Reply r;
  for (;;) {
    Bhs h;
    std::string d;
    if (!next_pdu(c, h, d, ms)) return r;
    if (which && h.itt() >= itt && h.itt() < itt_end) {
      if (*which != h.itt() && !r.data.empty()) {
        ADD_FAILURE() << "Data-In of two commands interleaved";
        return r;
      }
      *which = h.itt();
    } else if (h.itt() != itt) {
      ADD_FAILURE() << "connection " << c.cid << ": " << opcode_name(h.opcode()) << " for ITT "
                    << h.itt() << " while waiting for " << itt;
      return r;
    }
    if (h.opcode() == Opcode::kDataIn) {
      DataInPdu di = DataInPdu::decode(h);
      r.data += d;
      if (!di.has_status) continue;
      r.status = di.status;
      r.statsn = di.statsn;
      r.expcmdsn = di.expcmdsn;
    } else if (h.opcode() == Opcode::kScsiResponse) {
      ScsiResponsePdu sr = ScsiResponsePdu::decode(h);
      r.status = sr.status;
      r.statsn = sr.statsn;
      r.expcmdsn = sr.expcmdsn;
    } else {
      ADD_FAILURE() << "unexpected " << opcode_name(h.opcode());
      return r;
    }
    r.ok = true;
    c.saw_statsn(r.statsn);
    return r;
  }
}

// Logout (non-immediate); returns the Logout Response code or -1.
int logout(Conn& on, uint32_t itt, uint32_t cmdsn, uint8_t reason, uint16_t cid) {
  LogoutRequestPdu l;
  l.reason = reason;
  l.itt = itt;
  l.cid = cid;
  l.cmdsn = cmdsn;
  l.expstatsn = on.exp_statsn();
  Bhs h;
  l.encode(h);
  if (!on.send_pdu(h)) return -1;
  Bhs r;
  std::string d;
  if (!next_pdu(on, r, d) || r.opcode() != Opcode::kLogoutResponse) return -1;
  LogoutResponsePdu lr = LogoutResponsePdu::decode(r);
  on.saw_statsn(lr.statsn);
  return lr.response;
}

class McsTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = std::make_unique<TestServer>(server_args()); }
  virtual std::vector<std::string> server_args() { return {"--size-mb", "4"}; }

  // The leading connection: a new session; the first command reports the
  // new I_T nexus's unit attention.
  std::unique_ptr<Conn> lead(uint16_t cid) {
    auto c = std::make_unique<Conn>(server_->port(), cid);
    auto r = c->login(login_keys(true), kIsid, 0, cid, cmdsn_);
    EXPECT_TRUE(r.ok);
    tsih_ = r.pdu.tsih;
    EXPECT_NE(tsih_, 0);
    max_connections_ = r.value("MaxConnections");
    EXPECT_TRUE(send_command(*c, ++itt_, cmdsn_++, {}, false, 0));  // TEST UNIT READY
    Reply u = await(*c, itt_);
    EXPECT_TRUE(u.ok);
    EXPECT_EQ(u.status, kCheckCondition) << "the new nexus's unit attention";
    return c;
  }
  // One more connection of the session.
  std::unique_ptr<Conn> join(uint16_t cid, RawInitiator::LoginResult* out = nullptr) {
    auto c = std::make_unique<Conn>(server_->port(), cid);
    auto r = c->login(login_keys(false), kIsid, tsih_, cid, cmdsn_);
    if (out) *out = r;
    return c;
  }
  // One more connection that must be accepted; nullptr (and a failure) if not.
  std::unique_ptr<Conn> joined(uint16_t cid) {
    RawInitiator::LoginResult r;
    auto c = join(cid, &r);
    EXPECT_TRUE(r.ok) << "connection " << cid << ": login status " << int(r.pdu.status_class) << "/"
                      << int(r.pdu.status_detail);
    return r.ok ? std::move(c) : nullptr;
  }
  Reply tur(Conn& c) {
    EXPECT_TRUE(send_command(c, ++itt_, cmdsn_++, {}, false, 0));
    return await(c, itt_);
  }

  std::unique_ptr<TestServer> server_;
  uint16_t tsih_ = 0;
  uint32_t cmdsn_ = 1;
  uint32_t itt_ = 0x100;
  std::string max_connections_;
};

TEST_F(McsTest, TwoConnectionsOneNexusCommandsInCmdSnOrder) {
  auto a = lead(1);
  EXPECT_EQ(max_connections_, "4");
  RawInitiator::LoginResult jr;
  auto b = join(2, &jr);
  ASSERT_TRUE(jr.ok) << "status " << int(jr.pdu.status_class) << "/" << int(jr.pdu.status_detail);
  EXPECT_EQ(jr.pdu.tsih, tsih_);
  EXPECT_EQ(jr.pdu.expsn, cmdsn_) << "ExpCmdSN is the session's";
  // One I_T nexus: its unit attention was reported on the first connection.
  Reply t = tur(*b);
  ASSERT_TRUE(t.ok);
  EXPECT_EQ(t.status, kGood);

  // READ with the higher CmdSN goes first, on B; it must wait for the WRITE
  // (lower CmdSN, on A) and so return the written data.
  std::string pattern(512, '\0');
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<char>(i * 7 + 3);
  uint32_t write_sn = cmdsn_++, read_sn = cmdsn_++;
  uint32_t write_itt = ++itt_, read_itt = ++itt_;
  uint32_t b_statsn = b->exp_statsn(), a_statsn = a->exp_statsn();
  ASSERT_TRUE(send_command(*b, read_itt, read_sn, rw10(0x28, 7), true, 512, {}, 2 /* ordered */));
  EXPECT_TRUE(b->silent_for(300)) << "a command beyond ExpCmdSN was answered";
  ASSERT_TRUE(send_command(*a, write_itt, write_sn, rw10(0x2A, 7), false, 512, pattern));
  Reply w = await(*a, write_itt);
  ASSERT_TRUE(w.ok);
  EXPECT_EQ(w.status, kGood);
  Reply r = await(*b, read_itt);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, kGood);
  EXPECT_EQ(r.data, pattern) << "the READ overtook the WRITE sent before it in CmdSN order";
  // StatSN per connection, ExpCmdSN session-wide.
  EXPECT_EQ(w.statsn, a_statsn);
  EXPECT_EQ(r.statsn, b_statsn);
  EXPECT_TRUE(sn_le(read_sn + 1, r.expcmdsn));

  // The same I_T nexus on both connections: a reservation taken on A does
  // not conflict on B, while another session of the same initiator conflicts.
  std::array<uint8_t, 16> reserve{0x16};
  ASSERT_TRUE(send_command(*a, ++itt_, cmdsn_++, reserve, false, 0));
  Reply rs = await(*a, itt_);
  ASSERT_TRUE(rs.ok);
  ASSERT_EQ(rs.status, kGood);
  ASSERT_TRUE(send_command(*b, ++itt_, cmdsn_++, rw10(0x28, 7), true, 512));
  Reply rb = await(*b, itt_);
  ASSERT_TRUE(rb.ok);
  EXPECT_EQ(rb.status, kGood) << "B is another I_T nexus";
  {
    Conn other(server_->port(), 1);
    std::array<uint8_t, 6> isid = kIsid;
    isid[5] = 2;
    auto lr = other.login(login_keys(true), isid, 0, 1, 1);
    ASSERT_TRUE(lr.ok);
    ASSERT_TRUE(send_command(other, 1, 1, {}, false, 0));  // unit attention
    ASSERT_TRUE(await(other, 1).ok);
    ASSERT_TRUE(send_command(other, 2, 2, rw10(0x28, 7), true, 512));
    Reply ro = await(other, 2);
    ASSERT_TRUE(ro.ok);
    EXPECT_EQ(ro.status, kReservationConflict);
  }
  std::array<uint8_t, 16> release{0x17};
  ASSERT_TRUE(send_command(*b, ++itt_, cmdsn_++, release, false, 0));
  Reply rl = await(*b, itt_);
  ASSERT_TRUE(rl.ok);
  EXPECT_EQ(rl.status, kGood);
}

TEST_F(McsTest, ConnectionsLeaveWhileTheSessionLivesOn) {
  auto a = lead(1);
  auto b = joined(2);
  ASSERT_TRUE(b);

  // Logout of B's own connection (reason 1): A keeps working.
  EXPECT_EQ(logout(*b, ++itt_, cmdsn_++, 1, 2), 0);
  EXPECT_TRUE(b->closed_within(5000));
  EXPECT_EQ(tur(*a).status, kGood);

  // A dropped connection: its command waiting for a CmdSN gap is aborted,
  // never executed; the gap it leaves is skipped; A goes on.
  auto c = joined(3);
  ASSERT_TRUE(c);
  std::string q(512, 'Q');
  uint32_t gap_sn = cmdsn_++, held_sn = cmdsn_++;
  ASSERT_TRUE(send_command(*c, ++itt_, held_sn, rw10(0x2A, 9), false, 512, q));
  EXPECT_TRUE(c->silent_for(300));
  c->drop();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the server see the close
  ASSERT_TRUE(send_command(*a, ++itt_, gap_sn, rw10(0x28, 9), true, 512));
  Reply r9 = await(*a, itt_);
  ASSERT_TRUE(r9.ok);
  EXPECT_EQ(r9.status, kGood);
  EXPECT_EQ(r9.data, std::string(512, '\0')) << "the dropped connection's WRITE was executed";
  EXPECT_EQ(tur(*a).status, kGood) << "after the lost CmdSN";

  // Logout of another connection (reason 1, CID of D, sent on A).
  auto d = joined(4);
  ASSERT_TRUE(d);
  EXPECT_EQ(logout(*a, ++itt_, cmdsn_++, 1, 4), 0);
  EXPECT_TRUE(d->closed_within(5000));
  EXPECT_EQ(logout(*a, ++itt_, cmdsn_++, 1, 99), 1) << "CID not found";
  EXPECT_EQ(tur(*a).status, kGood);

  // Connection reinstatement: a login with A's CID replaces A; same nexus.
  auto e = joined(1);
  ASSERT_TRUE(e);
  EXPECT_TRUE(a->closed_within(5000));
  Reply te = tur(*e);
  EXPECT_EQ(te.status, kGood) << "a new nexus would report a unit attention";

  // Logout reason 0 closes the session with all its connections.
  auto f = joined(5);
  ASSERT_TRUE(f);
  EXPECT_EQ(logout(*e, ++itt_, cmdsn_++, 0, 1), 0);
  EXPECT_TRUE(e->closed_within(5000));
  EXPECT_TRUE(f->closed_within(5000));
  RawInitiator::LoginResult jr;
  auto g = join(6, &jr);
  EXPECT_FALSE(jr.ok);
  EXPECT_EQ(jr.pdu.status_class, 2);
  EXPECT_EQ(jr.pdu.status_detail, 10) << "session does not exist";
}

TEST_F(McsTest, LastConnectionDroppedEndsTheSession) {
  auto a = lead(1);
  auto b = joined(2);
  ASSERT_TRUE(b);
  a->drop();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(tur(*b).status, kGood) << "the session survives a dropped connection";
  b->drop();
  // Gone with its last connection: the TSIH names nothing now.
  bool ended = false;
  for (int i = 0; i < 50 && !ended; ++i) {
    RawInitiator::LoginResult jr;
    auto c = join(3, &jr);
    ended = !jr.ok && jr.pdu.status_class == 2 && jr.pdu.status_detail == 10;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(ended);
  // A new session of the same ISID is a new nexus: unit attention again.
  cmdsn_ = 1;
  auto n = lead(1);
}

// A WRITE without data (no immediate data, F=1): the target asks for it
// with an R2T; the task then waits in its data phase. Returns the R2T's TTT.
uint32_t start_solicited_write(Conn& c, uint32_t itt, uint32_t cmdsn, uint32_t lba) {
  ScsiCommandPdu p;
  p.final = true;
  p.write = true;
  p.attr = 1;
  p.itt = itt;
  p.expected_length = 512;
  p.cmdsn = cmdsn;
  p.expstatsn = c.exp_statsn();
  p.cdb = rw10(0x2A, lba);
  Bhs h;
  p.encode(h);
  EXPECT_TRUE(c.send_pdu(h));
  Bhs r;
  std::string d;
  EXPECT_TRUE(c.recv_pdu(r, d, kAnswerMs));
  EXPECT_EQ(r.opcode(), Opcode::kR2T);
  return R2TPdu::decode(r).ttt;
}

void send_data_out(Conn& c, uint32_t itt, uint32_t ttt) {
  DataOutPdu d;
  d.final = true;
  d.itt = itt;
  d.ttt = ttt;
  d.expstatsn = c.exp_statsn();
  std::string data(512, 'W');
  Bhs h;
  d.encode(h, 512);
  EXPECT_TRUE(c.send_pdu(h, data.data(), data.size()));
}

// An immediate TMF; returns its response code or -1.
int tmf(Conn& on, uint32_t itt, uint32_t cmdsn, uint8_t function, uint32_t ref_itt,
        uint32_t ref_cmdsn) {
  TmfRequestPdu m;
  m.immediate = true;
  m.function = function;
  m.itt = itt;
  m.referenced_itt = ref_itt;
  m.cmdsn = cmdsn;
  m.refcmdsn = ref_cmdsn;
  m.expstatsn = on.exp_statsn();
  Bhs h;
  m.encode(h);
  if (!on.send_pdu(h)) return -1;
  Bhs r;
  std::string d;
  if (!next_pdu(on, r, d)) return -1;
  if (r.opcode() != Opcode::kTaskManagementResponse || r.itt() != itt) return -1;
  TmfResponsePdu tr = TmfResponsePdu::decode(r);
  on.saw_statsn(tr.statsn);
  return tr.response;
}

// A TMF on one connection terminates tasks of another connection of the
// session: they get no response, their data is dropped, nothing is written.
TEST_F(McsTest, TaskManagementReachesTasksOfOtherConnections) {
  auto a = lead(1);
  auto b = joined(2);
  ASSERT_TRUE(b);
  for (uint8_t function : {uint8_t{1} /* ABORT TASK */, uint8_t{2} /* ABORT TASK SET */}) {
    SCOPED_TRACE(function == 1 ? "ABORT TASK" : "ABORT TASK SET");
    uint32_t lba = 20 + function;
    uint32_t witt = ++itt_, wsn = cmdsn_++;
    uint32_t ttt = start_solicited_write(*b, witt, wsn, lba);
    // TMFs are immediate: they do not take a CmdSN.
    EXPECT_EQ(tmf(*a, ++itt_, cmdsn_, function, witt, wsn), 0) << "function complete";
    send_data_out(*b, witt, ttt);  // too late: dropped
    // B's next answer is for its next command: the WRITE got none.
    Reply t = tur(*b);
    EXPECT_TRUE(t.ok);
    ASSERT_TRUE(send_command(*a, ++itt_, cmdsn_++, rw10(0x28, lba), true, 512));
    Reply r = await(*a, itt_);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.data, std::string(512, '\0')) << "the aborted WRITE was executed";
  }
  // A task nowhere in the session, answered long ago: does not exist.
  EXPECT_EQ(tmf(*a, ++itt_, cmdsn_, 1, 0xABCD, cmdsn_ - 5), 1);
  EXPECT_EQ(tur(*b).status, kGood);
}

// The Reject a PDU got (its header comes back as the data); -1 if none.
int await_reject(Conn& c, uint32_t itt) {
  Bhs h;
  std::string d;
  if (!next_pdu(c, h, d)) return -1;
  if (h.opcode() != Opcode::kReject || d.size() < kBhsSize) return -1;
  Bhs rejected;
  std::memcpy(rejected.b.data(), d.data(), kBhsSize);
  EXPECT_EQ(rejected.itt(), itt);
  RejectPdu r = RejectPdu::decode(h);
  c.saw_statsn(r.statsn);
  return r.reason;
}

// RFC 7143 11.2.1.8: an ITT names one task in the whole session. A command
// reusing the tag of a live task, on its connection or another, is refused
// with Reject "Task in progress"; the live task and both connections go on.
TEST_F(McsTest, LiveTaskTagIsUniqueAcrossTheSession) {
  auto a = lead(1);
  auto b = joined(2);
  ASSERT_TRUE(b);
  constexpr uint8_t kTaskInProgress = 0x07;
  uint32_t witt = ++itt_;
  uint32_t ttt = start_solicited_write(*a, witt, cmdsn_++, 30);  // live: waits for its data
  std::string q(512, 'Q');
  ASSERT_TRUE(send_command(*b, witt, cmdsn_++, rw10(0x2A, 31), false, 512, q));
  EXPECT_EQ(await_reject(*b, witt), kTaskInProgress) << "same ITT on another connection";
  ASSERT_TRUE(send_command(*a, witt, cmdsn_++, rw10(0x28, 31), true, 512));
  EXPECT_EQ(await_reject(*a, witt), kTaskInProgress) << "same ITT on the same connection";
  send_data_out(*a, witt, ttt);
  Reply w = await(*a, witt);
  ASSERT_TRUE(w.ok);
  EXPECT_EQ(w.status, kGood) << "the task holding the tag goes on";
  // The refused WRITE wrote nothing; once the tag is free it may be used.
  ASSERT_TRUE(send_command(*b, witt, cmdsn_++, rw10(0x28, 31), true, 512));
  Reply r = await(*b, witt);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, kGood);
  EXPECT_TRUE(r.data == std::string(512, '\0')) << "the rejected WRITE was executed";
  ASSERT_TRUE(send_command(*a, ++itt_, cmdsn_++, rw10(0x28, 30), true, 512));
  Reply r30 = await(*a, itt_);
  ASSERT_TRUE(r30.ok);
  EXPECT_TRUE(r30.data == std::string(512, 'W'));
  // A duplicate on the same connection whose unsolicited Data-Out would
  // follow (F=0) cannot be told apart from the live task's: the connection goes.
  uint32_t titt = ++itt_;
  ttt = start_solicited_write(*a, titt, cmdsn_++, 32);
  ScsiCommandPdu p;
  p.final = false;
  p.write = true;
  p.attr = 1;
  p.itt = titt;
  p.expected_length = 8192;
  p.cmdsn = cmdsn_++;
  p.cdb = rw10(0x2A, 33);
  p.cdb[8] = 16;  // 16 blocks: immediate data, then unsolicited Data-Out
  Bhs h;
  p.encode(h);
  h.set_data_length(512);
  ASSERT_TRUE(a->send_pdu(h, q.data(), q.size()));
  EXPECT_TRUE(a->closed_within(5000));
  EXPECT_EQ(tur(*b).status, kGood) << "the session lives on B";
}

// Many commands interleaved over two connections, each batch sent with the
// later half first: every command is answered on its own connection and the
// data written through one reads back through the other.
TEST_F(McsTest, InterleavedBatchesAcrossConnections) {
  auto a = lead(1);
  auto b = joined(2);
  ASSERT_TRUE(b);
  constexpr int kBatches = 8, kPerBatch = 32;
  auto block = [](int n) {
    std::string d(512, '\0');
    for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<char>(n * 31 + i);
    return d;
  };
  for (int pass = 0; pass < 2; ++pass) {
    bool writing = pass == 0;
    for (int batch = 0; batch < kBatches; ++batch) {
      // Even slots on A, odd ones on B; B's go out first, so each waits for
      // the A command before it.
      uint32_t base_sn = cmdsn_, base_itt = itt_ + 1;
      cmdsn_ += kPerBatch;
      itt_ += kPerBatch;
      for (int side = 1; side >= 0; --side) {
        Conn& c = side ? *b : *a;
        for (int i = side; i < kPerBatch; i += 2) {
          int n = batch * kPerBatch + i;
          // Read back through the other connection than the write.
          bool ok =
              writing
                  ? send_command(c, base_itt + i, base_sn + i,
                                 rw10(0x2A, static_cast<uint32_t>(100 + n)), false, 512, block(n))
                  : send_command(c, base_itt + i, base_sn + i,
                                 rw10(0x28, static_cast<uint32_t>(100 + (n ^ 1))), true, 512);
          ASSERT_TRUE(ok);
        }
      }
      // Answers in any order (a device may complete out of order), each on
      // the connection its command came on.
      for (int side = 0; side < 2; ++side) {
        Conn& c = side ? *b : *a;
        std::vector<bool> seen(kPerBatch);
        for (int k = side; k < kPerBatch; k += 2) {
          uint32_t which = kReservedTag;
          Reply r = await(c, base_itt, kAnswerMs, base_itt + kPerBatch, &which);
          ASSERT_TRUE(r.ok) << "batch " << batch;
          int i = static_cast<int>(which - base_itt);
          ASSERT_EQ(i % 2, side) << "answer on the wrong connection";
          ASSERT_FALSE(seen[i]);
          seen[i] = true;
          ASSERT_EQ(r.status, kGood);
          if (!writing) {
            int n = batch * kPerBatch + i;
            ASSERT_EQ(r.data, block(n ^ 1)) << "block " << (n ^ 1);
          }
        }
      }
    }
  }
}

class McsGateTest : public McsTest {
  std::vector<std::string> server_args() override {
    return {"--size-mb", "4", "--disks", "2", "--gate-lba", std::to_string(kGateLba)};
  }

 protected:
  static constexpr uint32_t kGateLba = 40;  // READs wait until block 41 is written
};

// RFC 7143 11.5.1: a TMF acts on the commands numbered before it. A command
// sent after a LOGICAL UNIT RESET, while the reset waits for another
// connection of the session to mark its tasks, must neither be caught by
// the core's reset nor answered as aborted: it runs once the reset is done.
// One numbered before the reset but arriving after it is terminated by it.
// The race is made wide and certain: connection D is stuck in the middle of
// a PDU (it cannot acknowledge the TMF's abort marks), and an ORDERED READ
// on LUN 0 stays running at the gate, so a command entering LUN 0's task set
// queues behind it, where the reset would find it.
TEST_F(McsGateTest, CommandAfterTaskSetTmfIsNotCaughtByIt) {
  constexpr uint64_t kLun1 = uint64_t{1} << 48;  // SAM-5 peripheral addressing
  auto a = lead(1);
  auto d = joined(2);
  ASSERT_TRUE(d);
  auto command = [&](uint64_t lun, uint32_t itt, uint32_t cmdsn, std::array<uint8_t, 16> cdb,
                     bool read, bool immediate, uint8_t attr, uint32_t data_length) {
    ScsiCommandPdu p;
    p.immediate = immediate;
    p.read = read;
    p.write = !read && data_length > 0;
    p.attr = attr;
    p.lun = lun;
    p.itt = itt;
    p.expected_length = 512;
    p.cmdsn = cmdsn;
    p.cdb = cdb;
    Bhs h;
    p.encode(h);
    h.set_data_length(data_length);
    return h;
  };
  std::string block(512, 'C');
  // LUN 1's unit attention for the new nexus is reported first, out of the way.
  ASSERT_TRUE(a->send_pdu(command(kLun1, ++itt_, cmdsn_++, {}, false, false, 1, 0)));
  ASSERT_TRUE(await(*a, itt_).ok);

  // X: running at LUN 0 until the gate opens; ORDERED, so LUN 0's newer tasks queue.
  uint32_t xitt = ++itt_;
  ASSERT_TRUE(a->send_pdu(command(0, xitt, cmdsn_++, rw10(0x28, kGateLba), true, false, 2, 0)));
  // D: an immediate WRITE to LUN 1 whose data stops after 100 bytes.
  uint32_t ditt = ++itt_;
  Bhs dh = command(kLun1, ditt, cmdsn_, rw10(0x2A, 50), false, true, 1, 512);
  std::string dwire(reinterpret_cast<const char*>(dh.b.data()), kBhsSize);
  dwire += block;
  ASSERT_TRUE(d->send_bytes(dwire.data(), kBhsSize + 100));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // D now waits for the rest

  // The reset (immediate), then Y, numbered before it (as if it had been on
  // its way on another connection), then C, numbered after it.
  uint32_t ysn = cmdsn_++;
  uint32_t titt = ++itt_;
  TmfRequestPdu m;
  m.immediate = true;
  m.function = 5;  // LOGICAL UNIT RESET
  m.itt = titt;
  m.referenced_itt = kReservedTag;
  m.cmdsn = cmdsn_;
  Bhs mh;
  m.encode(mh);
  ASSERT_TRUE(a->send_pdu(mh));
  uint32_t yitt = ++itt_;
  std::string yblock(512, 'Y');
  ASSERT_TRUE(a->send_pdu(command(0, yitt, ysn, rw10(0x2A, 70), false, false, 1, 512),
                          yblock.data(), yblock.size()));
  uint32_t citt = ++itt_;
  ASSERT_TRUE(a->send_pdu(command(0, citt, cmdsn_++, rw10(0x2A, 60), false, false, 1, 512),
                          block.data(), block.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // C reaches LUN 0 if it may

  // D completes its PDU: it marks its tasks, and the reset acts.
  ASSERT_TRUE(d->send_bytes(dwire.data() + kBhsSize + 100, 412));
  Reply dw = await(*d, ditt);
  ASSERT_TRUE(dw.ok);
  EXPECT_EQ(dw.status, kGood) << "LUN 1 is not reset";
  // Open the gate (an immediate WRITE of block 41 of LUN 1 takes no CmdSN turn).
  ASSERT_TRUE(
      d->send_pdu(command(kLun1, ++itt_, cmdsn_, rw10(0x2A, kGateLba + 1), false, true, 1, 512),
                  block.data(), block.size()));
  ASSERT_TRUE(await(*d, itt_).ok);

  // On A: the reset's response, then C's; none for X (the reset aborted it).
  bool tmf_seen = false;
  Reply c;
  for (int pdus = 0; pdus < 2; ++pdus) {
    Bhs h;
    std::string data;
    ASSERT_TRUE(next_pdu(*a, h, data)) << "reset or C unanswered";
    ASSERT_NE(h.itt(), xitt) << opcode_name(h.opcode()) << " for the aborted READ";
    ASSERT_NE(h.itt(), yitt) << opcode_name(h.opcode()) << " for Y, numbered before the reset";
    if (h.opcode() == Opcode::kTaskManagementResponse) {
      ASSERT_EQ(h.itt(), titt);
      EXPECT_EQ(TmfResponsePdu::decode(h).response, 0) << "function complete";
      a->saw_statsn(TmfResponsePdu::decode(h).statsn);
      tmf_seen = true;
      continue;
    }
    ASSERT_EQ(h.opcode(), Opcode::kScsiResponse);
    ASSERT_EQ(h.itt(), citt);
    EXPECT_TRUE(tmf_seen) << "C answered before the reset it came after";
    ScsiResponsePdu r = ScsiResponsePdu::decode(h);
    c.status = r.status;
    c.data = data;
    a->saw_statsn(r.statsn);
  }
  // C runs after the reset: it reports the reset's unit attention (SAM-5
  // 6.3: for every nexus, once), or succeeds; TASK ABORTED (0x40) means the
  // reset caught it.
  auto unit_attention = [](const std::string& d) {
    if (d.size() < 2 + 3) return false;  // SenseLength, then fixed or descriptor sense
    auto* sense = reinterpret_cast<const uint8_t*>(d.data()) + 2;
    uint8_t key = (sense[0] & 0x7F) >= 0x72 ? sense[1] & 0x0F : sense[2] & 0x0F;
    return key == 0x06;
  };
  if (c.status == kCheckCondition) {
    EXPECT_TRUE(unit_attention(c.data)) << "C failed otherwise than with the reset's UA";
    ASSERT_TRUE(send_command(*a, ++itt_, cmdsn_++, rw10(0x2A, 60), false, 512, block));
    c = await(*a, itt_);
  }
  EXPECT_EQ(c.status, kGood) << "C, sent after the reset, was caught by it (0x40: TASK ABORTED)";
  ASSERT_TRUE(send_command(*a, ++itt_, cmdsn_++, rw10(0x28, 60), true, 512));
  Reply r = await(*a, itt_);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, kGood);
  EXPECT_TRUE(r.data == block) << "C's data was not written";
  ASSERT_TRUE(send_command(*a, ++itt_, cmdsn_++, rw10(0x28, 70), true, 512));
  Reply ry = await(*a, itt_);
  ASSERT_TRUE(ry.ok);
  EXPECT_TRUE(ry.data == std::string(512, '\0')) << "Y, terminated by the reset, was written";
}

class McsLimitTest : public McsTest {
  std::vector<std::string> server_args() override {
    return {"--size-mb", "4", "--max-connections", "2"};
  }
};

TEST_F(McsLimitTest, MaxConnectionsIsEnforcedAndTheKeyMustMatch) {
  auto a = lead(1);
  EXPECT_EQ(max_connections_, "2");
  auto b = joined(2);
  ASSERT_TRUE(b);
  RawInitiator::LoginResult jr;
  auto c = join(3, &jr);
  EXPECT_FALSE(jr.ok);
  EXPECT_EQ(jr.pdu.status_class, 2);
  EXPECT_EQ(jr.pdu.status_detail, 6) << "too many connections";
  // A TSIH with another ISID names no session of this initiator.
  Conn x(server_->port(), 4);
  std::array<uint8_t, 6> isid = kIsid;
  isid[5] = 9;
  auto xr = x.login(login_keys(false), isid, tsih_, 4, cmdsn_);
  EXPECT_FALSE(xr.ok);
  EXPECT_EQ(xr.pdu.status_detail, 10);
  EXPECT_EQ(tur(*b).status, kGood);
}

}  // namespace
}  // namespace scstu::iscsi
