#include "iscsi/login.h"

#include <gtest/gtest.h>

#include <map>

#include "iscsi/text_keys.h"
#include "raw_initiator.h"

namespace scstu::iscsi {
namespace {

constexpr const char* kTarget = "iqn.2026-11.test:disk";

class LoginTest : public ::testing::Test {
 protected:
  LoginTest() {
    config_.portal_group_tag = 7;
    config_.find_target = [this](std::string_view name) -> std::optional<LoginTarget> {
      if (name != kTarget) return std::nullopt;
      return LoginTarget{kTarget, "disk", chap_ ? &auth_ : nullptr};
    };
    auth_.incoming.push_back({"alice", "alicesecret12"});
  }

  struct Reply {
    LoginNegotiator::Outcome outcome;
    LoginPdu pdu;
    std::map<std::string, std::string> keys;
  };

  Reply send(LoginNegotiator& n, uint8_t csg, uint8_t nsg, bool transit,
             std::vector<std::pair<std::string, std::string>> keys, bool cont = false) {
    LoginPdu req;
    req.transit = transit;
    req.continue_ = cont;
    req.csg = csg;
    req.nsg = nsg;
    req.isid = {0x80, 0, 0, 0, 0, 1};
    req.itt = 1;
    req.sn = 100;
    std::string text;
    Bhs h = login_request(req, keys, text), resp;
    std::string out;
    Reply r;
    r.outcome = n.handle(
        h, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
        resp, out);
    r.pdu = LoginPdu::decode(resp);
    EXPECT_EQ(resp.data_length(), out.size());
    std::vector<TextPair> kv;
    EXPECT_EQ(
        parse_text(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(out.data()), out.size()), kv),
        nullptr);
    for (auto& p : kv) r.keys[p.key] = p.value;
    return r;
  }

  LoginConfig config_;
  AuthConfig auth_;
  bool chap_ = false;
};

TEST_F(LoginTest, NormalLoginWithoutAuthentication) {
  LoginNegotiator n(config_, 1000);
  auto r = send(n, 0, 1, true,
                {{"InitiatorName", "iqn.ini"},
                 {"TargetName", kTarget},
                 {"SessionType", "Normal"},
                 {"AuthMethod", "None"}});
  EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kRespond);
  EXPECT_TRUE(r.pdu.transit);
  EXPECT_EQ(r.pdu.nsg, 1);
  EXPECT_EQ(r.pdu.sn, 1000u);
  EXPECT_EQ(r.pdu.expsn, 100u);
  EXPECT_EQ(r.keys["AuthMethod"], "None");
  EXPECT_EQ(r.keys["TargetPortalGroupTag"], "7");
  r = send(n, 1, 3, true,
           {{"HeaderDigest", "CRC32C,None"},
            {"DataDigest", "None"},
            {"MaxRecvDataSegmentLength", "65536"},
            {"MaxBurstLength", "16776192"},
            {"FirstBurstLength", "262144"},
            {"InitialR2T", "No"},
            {"ImmediateData", "Yes"},
            {"MaxOutstandingR2T", "1"},
            {"MaxConnections", "4"},
            {"ErrorRecoveryLevel", "2"},
            {"DefaultTime2Wait", "0"},
            {"DefaultTime2Retain", "20"},
            {"DataPDUInOrder", "No"},
            {"DataSequenceInOrder", "Yes"},
            {"X-com.example", "1"},
            {"OFMarker", "No"}});
  EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kReadyForFullFeature);
  EXPECT_EQ(r.pdu.sn, 1001u);
  EXPECT_EQ(r.keys["HeaderDigest"], "CRC32C");
  EXPECT_EQ(r.keys["DataDigest"], "None");
  EXPECT_EQ(r.keys.count("MaxRecvDataSegmentLength"), 1u);  // our declaration
  EXPECT_EQ(r.keys["MaxBurstLength"], "1048576");
  EXPECT_EQ(r.keys["MaxConnections"], "1");
  EXPECT_EQ(r.keys["ErrorRecoveryLevel"], "0");
  EXPECT_EQ(r.keys["InitialR2T"], "No");
  EXPECT_EQ(r.keys["DataPDUInOrder"], "Yes");
  EXPECT_EQ(r.keys["DefaultTime2Wait"], "2");
  EXPECT_EQ(r.keys["DefaultTime2Retain"], "0");
  EXPECT_EQ(r.keys["X-com.example"], "NotUnderstood");
  EXPECT_EQ(r.keys["OFMarker"], "No");
  const SessionParams& p = n.params();
  EXPECT_TRUE(p.header_digest);
  EXPECT_FALSE(p.data_digest);
  EXPECT_EQ(p.initiator_max_recv_data_segment_length, 65536u);
  EXPECT_EQ(p.first_burst_length, 262144u);
  EXPECT_FALSE(p.initial_r2t);
  EXPECT_EQ(n.initiator_name(), "iqn.ini");
  EXPECT_EQ(n.target_name(), kTarget);
  EXPECT_EQ(n.cmdsn(), 100u);
  Bhs fin;
  std::string text;
  n.finish(fin, 0x55);
  EXPECT_EQ(LoginPdu::decode(fin).tsih, 0x55);
  n.refuse(fin, text, LoginStatus::authorization_failure());
  EXPECT_EQ(fin.b[36], 2);
  EXPECT_EQ(fin.b[37], 2);
  EXPECT_FALSE(LoginPdu::decode(fin).transit);
}

TEST_F(LoginTest, StraightToOperationalAndFullFeature) {
  LoginNegotiator n(config_, 1);
  auto r = send(n, 1, 3, true, {{"InitiatorName", "iqn.ini"}, {"TargetName", kTarget}});
  EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kReadyForFullFeature);
  EXPECT_EQ(n.params().max_burst_length, 262144u);  // RFC default when not offered
}

TEST_F(LoginTest, Failures) {
  {
    LoginNegotiator n(config_, 1);
    auto r = send(n, 0, 1, true, {{"TargetName", kTarget}});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kFail);
    EXPECT_EQ(r.pdu.status_class, 2);
    EXPECT_EQ(r.pdu.status_detail, 7);  // missing parameter
  }
  {
    LoginNegotiator n(config_, 1);
    auto r = send(n, 0, 1, true, {{"InitiatorName", "i"}, {"TargetName", "iqn.nope"}});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kFail);
    EXPECT_EQ(r.pdu.status_detail, 3);  // not found
  }
  {
    LoginNegotiator n(config_, 1);
    auto r = send(n, 0, 2, true, {{"InitiatorName", "i"}, {"TargetName", kTarget}});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kFail);  // NSG 2 is reserved
  }
  {
    LoginNegotiator n(config_, 1);
    auto r = send(n, 0, 1, false, {{"InitiatorName", "i"}, {"TargetName", kTarget}});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kRespond);
    r = send(n, 1, 3, true, {});  // CSG jumps without a transition
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kFail);
  }
  {
    LoginNegotiator n(config_, 1);
    auto r = send(n, 0, 1, true, {{"InitiatorName", "i"}, {"SessionType", "Bogus"}});
    EXPECT_EQ(r.pdu.status_detail, 9);
  }
}

TEST_F(LoginTest, NonZeroTsih) {
  // The server says: TSIH 5 is a full session, TSIH 7 takes the connection.
  config_.can_join = [](uint16_t tsih, uint16_t, const SessionKey& key) {
    EXPECT_EQ(key.initiator, "iqn.ini");
    EXPECT_EQ(key.target, kTarget);
    if (tsih == 5) return LoginStatus::too_many_connections();
    if (tsih == 7) return LoginStatus::success();
    return LoginStatus::session_does_not_exist();
  };
  for (uint16_t tsih : {uint16_t{5}, uint16_t{6}, uint16_t{7}}) {
    LoginNegotiator n(config_, 1);
    LoginPdu req;
    req.transit = true;
    req.csg = 1;
    req.nsg = 3;
    req.tsih = tsih;
    std::string text;
    Bhs h = login_request(
            req,
            {{"InitiatorName", "iqn.ini"}, {"TargetName", kTarget}, {"MaxBurstLength", "65536"}},
            text),
        resp;
    std::string out;
    auto outcome = n.handle(
        h, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
        resp, out);
    if (tsih == 7) {
      // Joins; leading-only keys are the session's: Irrelevant here.
      EXPECT_EQ(outcome, LoginNegotiator::Outcome::kReadyForFullFeature);
      EXPECT_FALSE(n.leading());
      EXPECT_NE(out.find(std::string("MaxBurstLength=Irrelevant")), std::string::npos) << out;
      continue;
    }
    EXPECT_EQ(outcome, LoginNegotiator::Outcome::kFail);
    EXPECT_EQ(resp.b[36], 2);
    // 11.13.5: 02/06 too many connections, 02/0A no such session.
    EXPECT_EQ(resp.b[37], tsih == 5 ? 6 : 10);
  }
}

TEST_F(LoginTest, ContinuationAccumulates) {
  LoginNegotiator n(config_, 1);
  auto r = send(n, 1, 0, false, {{"InitiatorName", "iqn.ini"}}, true);
  EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kRespond);
  EXPECT_TRUE(r.keys.empty());
  r = send(n, 1, 3, true, {{"TargetName", kTarget}});
  EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kReadyForFullFeature);
  EXPECT_EQ(n.initiator_name(), "iqn.ini");
}

TEST_F(LoginTest, DiscoverySessionIrrelevantKeys) {
  LoginNegotiator n(config_, 1);
  auto r = send(n, 1, 3, true,
                {{"InitiatorName", "iqn.ini"},
                 {"SessionType", "Discovery"},
                 {"MaxBurstLength", "4096"},
                 {"HeaderDigest", "None"}});
  EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kReadyForFullFeature);
  EXPECT_TRUE(n.discovery());
  EXPECT_EQ(r.keys["MaxBurstLength"], "Irrelevant");
  EXPECT_EQ(r.keys["HeaderDigest"], "None");
  EXPECT_EQ(r.keys.count("TargetPortalGroupTag"), 0u);
}

std::string chap_answer(const std::string& id, const std::string& c, const std::string& secret) {
  return encode_hex(
      chap_md5_response(static_cast<uint8_t>(std::stoi(id)), secret, *decode_binary(c, 1024)));
}

TEST_F(LoginTest, ChapRequired) {
  chap_ = true;
  {
    LoginNegotiator n(config_, 1);
    auto r = send(n, 0, 1, true,
                  {{"InitiatorName", "i"}, {"TargetName", kTarget}, {"AuthMethod", "CHAP,None"}});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kRespond);
    EXPECT_FALSE(r.pdu.transit);
    EXPECT_EQ(r.keys["AuthMethod"], "CHAP");
    r = send(n, 0, 1, true, {{"CHAP_A", "5"}});
    EXPECT_FALSE(r.pdu.transit);
    EXPECT_EQ(r.keys["CHAP_A"], "5");
    std::string id = r.keys["CHAP_I"], c = r.keys["CHAP_C"];
    r = send(n, 0, 1, true, {{"CHAP_N", "alice"}, {"CHAP_R", chap_answer(id, c, "alicesecret12")}});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kRespond);
    EXPECT_TRUE(r.pdu.transit);
    EXPECT_EQ(r.pdu.nsg, 1);
    r = send(n, 1, 3, true, {});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kReadyForFullFeature);
  }
  {
    LoginNegotiator n(config_, 1);
    send(n, 0, 1, false, {{"InitiatorName", "i"}, {"TargetName", kTarget}, {"AuthMethod", "CHAP"}});
    auto r = send(n, 0, 1, false, {{"CHAP_A", "5"}});
    r = send(
        n, 0, 1, true,
        {{"CHAP_N", "alice"}, {"CHAP_R", chap_answer(r.keys["CHAP_I"], r.keys["CHAP_C"], "x")}});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kFail);
    EXPECT_EQ(r.pdu.status_class, 2);
    EXPECT_EQ(r.pdu.status_detail, 1);
  }
  {
    // Skipping the security stage, or offering only None, fails.
    LoginNegotiator n(config_, 1);
    auto r = send(n, 1, 3, true, {{"InitiatorName", "i"}, {"TargetName", kTarget}});
    EXPECT_EQ(r.pdu.status_detail, 1);
    LoginNegotiator m(config_, 1);
    r = send(m, 0, 1, true,
             {{"InitiatorName", "i"}, {"TargetName", kTarget}, {"AuthMethod", "None"}});
    EXPECT_EQ(r.outcome, LoginNegotiator::Outcome::kFail);
    EXPECT_EQ(r.pdu.status_detail, 1);
  }
}

}  // namespace
}  // namespace scstu::iscsi
