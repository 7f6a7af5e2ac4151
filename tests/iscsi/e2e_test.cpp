// End-to-end tests with real initiators: libiscsi's command line tools and
// libiscsi itself against iscsi_test_server (TargetCore + LocalDevice +
// scsi::LogicalUnit over a RAM disk) on 127.0.0.1, port picked by the OS.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
}

#include "iscsi/crc32c.h"
#include "iscsi/pdu.h"
#include "iscsi/text_keys.h"
#include "raw_initiator.h"
#include "test_server.h"

namespace scstu::iscsi {
namespace {

constexpr const char* kTarget = "iqn.2026-11.org.scstu.test:disk";
constexpr const char* kSeedTarget = "iqn.2007-05.com.example:storage.disk1.sys1.xyz";
constexpr const char* kSpecIni = "iqn.2007-05.com.example:storage.spec_ini.xyz";

TEST(IscsiE2e, DiscoveryListsTheTargetWithItsPortal) {
  TestServer server({"--size-mb", "16"});
  CommandResult r = run("iscsi-ls iscsi://" + server.portal());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(std::string("Target:") + kTarget + " Portal:" + server.portal() + ",1"),
            std::string::npos)
      << r.output;
}

TEST(IscsiE2e, InquiryAndReadCapacity16) {
  TestServer server({"--size-mb", "16"});
  CommandResult inq = run("iscsi-inq " + server.url(kTarget, 0));
  EXPECT_EQ(inq.status, 0) << inq.output;
  EXPECT_NE(inq.output.find("Peripheral Device Type:DIRECT_ACCESS"), std::string::npos);
  EXPECT_NE(inq.output.find("Product:RAMDISK"), std::string::npos) << inq.output;
  CommandResult cap = run("iscsi-readcapacity16 " + server.url(kTarget, 0));
  EXPECT_EQ(cap.status, 0) << cap.output;
  EXPECT_NE(cap.output.find("Total size:16777216"), std::string::npos) << cap.output;
}

// A libiscsi session, logged in, for tests that need more than the tools.
class Initiator {
 public:
  Initiator(const TestServer& server, const char* name, bool header_digest = false,
            uint32_t isid_qualifier = 0, bool solicited_only = false) {
    ctx_ = iscsi_create_context(name);
    if (solicited_only) {
      // Every byte of write data through R2Ts (InitialR2T=Yes, ImmediateData=No).
      iscsi_set_initial_r2t(ctx_, ISCSI_INITIAL_R2T_YES);
      iscsi_set_immediate_data(ctx_, ISCSI_IMMEDIATE_DATA_NO);
    }
    iscsi_set_targetname(ctx_, kTarget);
    iscsi_set_session_type(ctx_, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(ctx_,
                            header_digest ? ISCSI_HEADER_DIGEST_CRC32C : ISCSI_HEADER_DIGEST_NONE);
    if (isid_qualifier) iscsi_set_isid_oui(ctx_, 0x00ABCD, isid_qualifier);
    iscsi_set_timeout(ctx_, 10);
    connected_ = iscsi_full_connect_sync(ctx_, server.portal().c_str(), 0) == 0;
    if (!connected_) error_ = iscsi_get_error(ctx_);
    // The first command of a new I_T nexus reports the power-on unit attention.
    if (connected_) {
      if (scsi_task* t = iscsi_testunitready_sync(ctx_, 0)) scsi_free_scsi_task(t);
    }
  }
  ~Initiator() {
    if (connected_) iscsi_logout_sync(ctx_);
    iscsi_destroy_context(ctx_);
  }
  bool connected() const { return connected_; }
  const std::string& error() const { return error_; }
  iscsi_context* ctx() { return ctx_; }

  bool write(uint64_t lba, std::vector<uint8_t>& data) {
    scsi_task* t = iscsi_write16_sync(ctx_, 0, lba, data.data(), static_cast<uint32_t>(data.size()),
                                      512, 0, 0, 0, 0, 0);
    bool ok = t && t->status == SCSI_STATUS_GOOD;
    if (t) scsi_free_scsi_task(t);
    return ok;
  }
  bool read(uint64_t lba, std::vector<uint8_t>& out) {
    scsi_task* t =
        iscsi_read16_sync(ctx_, 0, lba, static_cast<uint32_t>(out.size()), 512, 0, 0, 0, 0, 0);
    bool ok = t && t->status == SCSI_STATUS_GOOD && t->datain.size == static_cast<int>(out.size());
    if (ok) std::memcpy(out.data(), t->datain.data, out.size());
    if (t) scsi_free_scsi_task(t);
    return ok;
  }
  bool test_unit_ready() {
    scsi_task* t = iscsi_testunitready_sync(ctx_, 0);
    bool ok = t && t->status == SCSI_STATUS_GOOD;
    if (t) scsi_free_scsi_task(t);
    return ok;
  }

 private:
  iscsi_context* ctx_ = nullptr;
  bool connected_ = false;
  std::string error_;
};

void round_trip(Initiator& ini, size_t write_size, size_t read_size, uint64_t lba0, size_t total) {
  std::mt19937 rng(static_cast<uint32_t>(write_size * 31 + read_size));
  std::vector<uint8_t> pattern(total);
  for (auto& b : pattern) b = static_cast<uint8_t>(rng());
  for (size_t off = 0; off < total; off += write_size) {
    std::vector<uint8_t> chunk(pattern.begin() + off, pattern.begin() + off + write_size);
    ASSERT_TRUE(ini.write(lba0 + off / 512, chunk)) << "write at " << off;
  }
  for (size_t off = 0; off < total; off += read_size) {
    std::vector<uint8_t> chunk(read_size);
    ASSERT_TRUE(ini.read(lba0 + off / 512, chunk)) << "read at " << off;
    ASSERT_EQ(0, std::memcmp(chunk.data(), pattern.data() + off, read_size)) << "at " << off;
  }
}

TEST(IscsiE2e, DataRoundTripRandomPattern) {
  TestServer server({"--size-mb", "16"});
  Initiator ini(server, "iqn.2026-11.test:roundtrip");
  ASSERT_TRUE(ini.connected()) << ini.error();
  // Large writes (immediate data + R2Ts of MaxBurstLength), large reads
  // (several Data-In PDUs and sequences), small ones.
  round_trip(ini, 1 << 20, 256 << 10, 0, 4 << 20);
  round_trip(ini, 4096, 1 << 20, 8192, 1 << 20);
  round_trip(ini, 512, 512 * 7, 16384, 512 * 7 * 8);
}

TEST(IscsiE2e, DataRoundTripSolicitedOnly) {
  TestServer server({"--size-mb", "16"});
  Initiator ini(server, "iqn.2026-11.test:r2t", false, 0, true);
  ASSERT_TRUE(ini.connected()) << ini.error();
  round_trip(ini, 4 << 20, 1 << 20, 0, 8 << 20);  // several R2Ts of MaxBurstLength each
  round_trip(ini, 512, 4096, 20000, 64 << 10);
}

TEST(IscsiE2e, DataRoundTripWithHeaderDigest) {
  TestServer server({"--size-mb", "16"});
  Initiator ini(server, "iqn.2026-11.test:digest", true);
  ASSERT_TRUE(ini.connected()) << ini.error();
  round_trip(ini, 256 << 10, 1 << 20, 0, 2 << 20);
}

TEST(IscsiE2e, ChapOneWayAndMutual) {
  TestServer server({"--chap", "alice:alicesecret12", "--mutual", "tgt:targetsecret12"});
  CommandResult ok = run("iscsi-inq '" + server.url(kTarget, 0, "alice%alicesecret12@") + "'");
  EXPECT_EQ(ok.status, 0) << ok.output;
  CommandResult bad = run("iscsi-inq '" + server.url(kTarget, 0, "alice%wrongsecret@") + "'");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("Authentication failure"), std::string::npos) << bad.output;
  CommandResult none = run("iscsi-inq '" + server.url(kTarget, 0) + "'");
  EXPECT_NE(none.status, 0) << none.output;
  CommandResult mutual = run("iscsi-inq '" + server.url(kTarget, 0, "alice%alicesecret12@") +
                             "?target_user=tgt&target_password=targetsecret12'");
  EXPECT_EQ(mutual.status, 0) << mutual.output;
  // The initiator checks the target's answer: a wrong target secret fails.
  CommandResult impostor = run("iscsi-inq '" + server.url(kTarget, 0, "alice%alicesecret12@") +
                               "?target_user=tgt&target_password=notthesecret1'");
  EXPECT_NE(impostor.status, 0) << impostor.output;
}

TEST(IscsiE2e, DiscoveryChap) {
  TestServer server({"--discovery-chap", "disco:discosecret12"});
  CommandResult ok = run("iscsi-ls 'iscsi://disco%discosecret12@" + server.portal() + "'");
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find(kTarget), std::string::npos) << ok.output;
  CommandResult bad = run("iscsi-ls 'iscsi://disco%nope@" + server.portal() + "'");
  EXPECT_NE(bad.status, 0) << bad.output;
}

// The SCST README's access control example: everybody sees dev1 as LUN 0
// and dev2 as LUN 1; spec_ini sees only dev2, as LUN 0.
TEST(IscsiE2e, SeedAccessControlExampleWithTwoInitiators) {
  TestServer server({"--seed-example"});
  auto serial = [&](const std::string& ini, int lun) {
    CommandResult r = run("iscsi-inq -i " + ini + " -e 1 -c 128 " + server.url(kSeedTarget, lun));
    return r;
  };
  CommandResult a0 = serial("iqn.2026-11.test:other", 0);
  EXPECT_NE(a0.output.find("Unit Serial Number:[dev1]"), std::string::npos) << a0.output;
  CommandResult a1 = serial("iqn.2026-11.test:other", 1);
  EXPECT_NE(a1.output.find("Unit Serial Number:[dev2]"), std::string::npos) << a1.output;
  CommandResult s0 = serial(kSpecIni, 0);
  EXPECT_NE(s0.output.find("Unit Serial Number:[dev2]"), std::string::npos) << s0.output;
  CommandResult s1 = serial(kSpecIni, 1);
  EXPECT_NE(s1.status, 0);
  EXPECT_NE(s1.output.find("LOGICAL_UNIT_NOT_SUPPORTED"), std::string::npos) << s1.output;
}

// RFC 7143 6.3.5: a login with the same initiator name and ISID replaces
// the old session; the old connection is dropped.
TEST(IscsiE2e, SessionReinstatementDropsTheOldConnection) {
  TestServer server({"--size-mb", "16"});
  Initiator first(server, "iqn.2026-11.test:reinstate", false, 7);
  ASSERT_TRUE(first.connected()) << first.error();
  ASSERT_TRUE(first.test_unit_ready());
  iscsi_set_noautoreconnect(first.ctx(), 1);
  Initiator second(server, "iqn.2026-11.test:reinstate", false, 7);
  ASSERT_TRUE(second.connected()) << second.error();
  EXPECT_TRUE(second.test_unit_ready());
  EXPECT_FALSE(first.test_unit_ready()) << "the reinstated session still answers";
  // A different ISID is a different session: both live.
  Initiator third(server, "iqn.2026-11.test:reinstate", false, 8);
  ASSERT_TRUE(third.connected()) << third.error();
  EXPECT_TRUE(third.test_unit_ready());
  EXPECT_TRUE(second.test_unit_ready());
}

// ---- raw TCP: hostile input and keepalive ----

// A login straight to full feature phase (no authentication configured).
bool raw_login(RawInitiator& ini, const char* initiator, bool digests = false) {
  std::vector<std::pair<std::string, std::string>> keys = {
      {"InitiatorName", initiator}, {"TargetName", kTarget}, {"SessionType", "Normal"}};
  if (digests) {
    keys.push_back({"HeaderDigest", "CRC32C"});
    keys.push_back({"DataDigest", "CRC32C"});
  }
  return ini.login(keys, {0x80, 0, 0, 0, 0, 9}, 0, 0, 1).ok;
}

TEST(IscsiE2e, HostilePdusAreDroppedAndTheServerLives) {
  TestServer server({"--size-mb", "16"});
  std::mt19937 rng(42);
  for (int round = 0; round < 40; ++round) {
    RawInitiator ini(server.port());
    ASSERT_TRUE(ini.connected());
    bool login_first = round % 2 == 1;
    if (login_first) {
      ASSERT_TRUE(raw_login(ini, "iqn.2026-11.test:hostile"));
    }
    Bhs h;
    for (auto& b : h.b) b = static_cast<uint8_t>(rng());
    switch (round % 8) {
      case 0:
        h.b.fill(0xFF);
        break;  // all ones
      case 1:
        h.b[0] = 0x01;
        h.set_data_length(kMaxDataSegment);
        break;  // huge data segment
      case 2:
        h.b[0] = 0x03;
        h.set_data_length(1 << 20);
        break;  // login with 1 MiB text
      case 3:
        h.b[0] = 0x01;
        h.b[4] = 255;
        break;  // AHS, garbage inside
      case 5:
        h.b[0] = 0x05;
        h.set_data_length(512);
        break;  // Data-Out, unknown ITT
      case 7:
        h.b[0] = 0x3E;
        h.set_data_length(0);
        h.b[4] = 0;
        break;  // unknown opcode
      default:
        break;
    }
    std::vector<uint8_t> tail(4096);
    for (auto& b : tail) b = static_cast<uint8_t>(rng());
    ini.send_bytes(h.b.data(), h.b.size());
    ini.send_bytes(tail.data(), tail.size());
    // Rounds 0-2 carry lengths beyond every bound: the server itself must
    // drop them. The others may look like a PDU still waiting for its data:
    // end the stream so the server sees EOF, and only check it survives.
    bool must_drop = round % 8 <= 2;
    if (!must_drop) ini.shutdown_write();
    auto [bytes, closed] = ini.read_until_closed(5000);
    EXPECT_TRUE(closed) << "round " << round << ": connection not dropped";
    if (round % 8 == 7 && login_first) {
      // An unknown opcode is answered with a Reject carrying its header.
      ASSERT_GE(bytes.size(), 2 * kBhsSize) << "round " << round;
      EXPECT_EQ(bytes[0] & 0x3F, static_cast<int>(Opcode::kReject));
      EXPECT_EQ(bytes[2], static_cast<char>(RejectReason::kCommandNotSupported));
      EXPECT_EQ(0, std::memcmp(bytes.data() + kBhsSize, h.b.data(), kBhsSize));
    }
    ASSERT_TRUE(server.alive()) << "server died in round " << round;
  }
  CommandResult inq = run("iscsi-inq " + server.url(kTarget, 0));
  EXPECT_EQ(inq.status, 0) << inq.output;
}

TEST(IscsiE2e, KeepaliveDropsAConnectionThatDoesNotAnswerNopIn) {
  TestServer server({"--nop-interval-ms", "200", "--nop-timeout-ms", "400"});
  {
    RawInitiator silent(server.port());
    ASSERT_TRUE(raw_login(silent, "iqn.2026-11.test:silent"));
    auto [bytes, closed] = silent.read_until_closed(5000);
    EXPECT_TRUE(closed) << "a silent initiator was kept";
    ASSERT_GE(bytes.size(), kBhsSize);
    EXPECT_EQ(bytes[0] & 0x3F, static_cast<int>(Opcode::kNopIn)) << "no NOP-In ping was sent";
  }
  // An initiator that answers (libiscsi does) stays connected.
  Initiator ini(server, "iqn.2026-11.test:awake");
  ASSERT_TRUE(ini.connected());
  for (int i = 0; i < 15; ++i) {
    pollfd p{iscsi_get_fd(ini.ctx()), static_cast<short>(iscsi_which_events(ini.ctx())), 0};
    if (poll(&p, 1, 100) > 0) {
      ASSERT_EQ(iscsi_service(ini.ctx(), p.revents), 0);
    }
  }
  EXPECT_TRUE(ini.test_unit_ready());
}

// An IPv6 portal (::1 only): discovery reports it in brackets (RFC 7143
// 13.8), and libiscsi logs in and reads through it.
TEST(IscsiE2e, Ipv6PortalOnLoopback) {
  TestServer server({"--size-mb", "16", "--ipv6"});
  std::string portal = "[::1]:" + std::to_string(server.port());
  CommandResult ls = run("iscsi-ls iscsi://" + portal);
  EXPECT_EQ(ls.status, 0) << ls.output;
  EXPECT_NE(ls.output.find(std::string("Target:") + kTarget + " Portal:" + portal + ",1"),
            std::string::npos)
      << ls.output;
  CommandResult inq = run("iscsi-inq iscsi://" + portal + "/" + kTarget + "/0");
  EXPECT_EQ(inq.status, 0) << inq.output;
  EXPECT_NE(inq.output.find("Product:RAMDISK"), std::string::npos) << inq.output;
}

// Stopping the server first asks each initiator to log out (RFC 7143
// 11.9.1 AsyncEvent 1), then drops whoever is still there.
TEST(IscsiE2e, StopSendsAsyncLogoutRequest) {
  TestServer server({"--size-mb", "16"});
  RawInitiator ini(server.port());
  ASSERT_TRUE(raw_login(ini, "iqn.2026-11.test:stopping"));
  server.signal(SIGTERM);
  auto [bytes, closed] = ini.read_until_closed(8000);
  EXPECT_TRUE(closed);
  ASSERT_GE(bytes.size(), kBhsSize);
  Bhs h;
  std::memcpy(h.b.data(), bytes.data(), kBhsSize);
  EXPECT_EQ(h.opcode(), Opcode::kAsyncMessage);
  EXPECT_EQ(AsyncMessagePdu::decode(h).event, 1);
}

void put_digest(std::string& out, const void* p, size_t n) {
  uint32_t crc = crc32c(p, n);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(crc >> (8 * i)));
}

// Header and data digests (CRC32C, RFC 7143 13.1) in both directions: a
// NOP-Out ping with data comes back as a NOP-In with the same data and
// correct digests; a wrong data digest drops the connection.
TEST(IscsiE2e, HeaderAndDataDigestsOnTheWire) {
  TestServer server({"--size-mb", "16"});
  RawInitiator ini(server.port());
  ASSERT_TRUE(raw_login(ini, "iqn.2026-11.test:digests", true));
  const std::string payload = "digest me, 13";  // 13 bytes: 3 of padding
  auto nop_out = [&](uint32_t itt, bool corrupt) {
    NopPdu n;
    n.immediate = true;
    n.itt = itt;
    n.ttt = kReservedTag;
    n.sn = 1;
    Bhs h;
    n.encode(h, Opcode::kNopOut, static_cast<uint32_t>(payload.size()));
    std::string wire(reinterpret_cast<const char*>(h.b.data()), kBhsSize);
    put_digest(wire, h.b.data(), kBhsSize);
    std::string data = payload + std::string(pad4(static_cast<uint32_t>(payload.size())), '\0');
    wire += data;
    put_digest(wire, data.data(), data.size());
    if (corrupt) wire.back() ^= 1;
    ASSERT_TRUE(ini.send_bytes(wire.data(), wire.size()));
  };
  nop_out(0x1234, false);
  std::array<uint8_t, kBhsSize + 4> hdr;
  ASSERT_TRUE(ini.recv_exact(hdr.data(), hdr.size()));
  Bhs h;
  std::memcpy(h.b.data(), hdr.data(), kBhsSize);
  EXPECT_EQ(h.opcode(), Opcode::kNopIn);
  EXPECT_EQ(h.itt(), 0x1234u);
  uint32_t hd = uint32_t{hdr[48]} | uint32_t{hdr[49]} << 8 | uint32_t{hdr[50]} << 16 |
                uint32_t{hdr[51]} << 24;
  EXPECT_EQ(hd, crc32c(hdr.data(), kBhsSize));
  ASSERT_EQ(h.data_length(), payload.size());
  std::vector<uint8_t> data(16 + 4);
  ASSERT_TRUE(ini.recv_exact(data.data(), data.size()));
  EXPECT_EQ(std::string(data.begin(), data.begin() + 13), payload);
  uint32_t dd = uint32_t{data[16]} | uint32_t{data[17]} << 8 | uint32_t{data[18]} << 16 |
                uint32_t{data[19]} << 24;
  EXPECT_EQ(dd, crc32c(data.data(), 16));
  nop_out(0x1235, true);
  auto [bytes, closed] = ini.read_until_closed(5000);
  EXPECT_TRUE(closed) << "a data digest error must drop the connection (ErrorRecoveryLevel 0)";
}

}  // namespace
}  // namespace scstu::iscsi
