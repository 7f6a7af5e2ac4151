#include "iscsi/chap.h"

#include <gtest/gtest.h>

#include "iscsi/text_keys.h"

namespace scstu::iscsi {
namespace {

// RFC 1994 CHAP with MD5: response = MD5(id || secret || challenge).
// Vector computed independently: `printf '\x01secret\x00\x01\x02\x03' | md5sum`.
TEST(Chap, Md5Vector) {
  std::vector<uint8_t> challenge{0, 1, 2, 3};
  auto r = chap_md5_response(1, "secret", challenge);
  EXPECT_EQ(encode_hex(r),
            "0x"
            "e82cb2ed1efe04893c9cf73d4dd12e2d");
}

AuthConfig config() {
  AuthConfig c;
  c.incoming.push_back({"alice", "alicesecret12"});
  c.outgoing = ChapCredentials{"target", "targetsecret12"};
  return c;
}

std::string answer(const std::string& id, const std::string& challenge, const std::string& secret) {
  auto c = decode_binary(challenge, 1024);
  return encode_hex(chap_md5_response(static_cast<uint8_t>(std::stoi(id)), secret, *c));
}

TEST(Chap, OneWaySuccessAndFailure) {
  AuthConfig cfg = config();
  ChapTarget t(cfg);
  std::string id, challenge, n, r;
  ASSERT_FALSE(t.start("7", id, challenge));  // no MD5 offered
  ASSERT_TRUE(t.start("7,5", id, challenge));
  EXPECT_EQ(challenge.size(), 2 + 2 * kChapChallengeBytes);
  EXPECT_EQ(t.verify("alice", answer(id, challenge, "alicesecret12"), "", "", n, r), nullptr);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(t.authenticated_user(), "alice");

  ChapTarget bad(cfg);
  ASSERT_TRUE(bad.start("5", id, challenge));
  EXPECT_NE(bad.verify("alice", answer(id, challenge, "wrong"), "", "", n, r), nullptr);
  ChapTarget unknown(cfg);
  ASSERT_TRUE(unknown.start("5", id, challenge));
  EXPECT_NE(unknown.verify("mallory", answer(id, challenge, "alicesecret12"), "", "", n, r),
            nullptr);
}

TEST(Chap, ChallengesAreFresh) {
  AuthConfig cfg = config();
  ChapTarget a(cfg), b(cfg);
  std::string ia, ca, ib, cb;
  ASSERT_TRUE(a.start("5", ia, ca));
  ASSERT_TRUE(b.start("5", ib, cb));
  EXPECT_NE(ca, cb);
}

TEST(Chap, MutualAndReflection) {
  AuthConfig cfg = config();
  ChapTarget t(cfg);
  std::string id, challenge, n, r;
  ASSERT_TRUE(t.start("5", id, challenge));
  std::string my_challenge =
      "0b"
      "AAECAwQFBgcICQoLDA0ODw==";
  ASSERT_EQ(t.verify("alice", answer(id, challenge, "alicesecret12"), "9", my_challenge, n, r),
            nullptr);
  EXPECT_EQ(n, "target");
  EXPECT_EQ(r, answer("9", my_challenge, "targetsecret12"));

  ChapTarget refl(cfg);
  ASSERT_TRUE(refl.start("5", id, challenge));
  EXPECT_NE(refl.verify("alice", answer(id, challenge, "alicesecret12"), id, challenge, n, r),
            nullptr);

  AuthConfig oneway = config();
  oneway.outgoing.reset();
  ChapTarget no_mutual(oneway);
  ASSERT_TRUE(no_mutual.start("5", id, challenge));
  EXPECT_NE(
      no_mutual.verify("alice", answer(id, challenge, "alicesecret12"), "9", my_challenge, n, r),
      nullptr);
}

TEST(Chap, ResponseCannotBeReplayed) {
  AuthConfig cfg = config();
  ChapTarget t(cfg);
  std::string id, challenge, n, r;
  ASSERT_TRUE(t.start("5", id, challenge));
  std::string ok = answer(id, challenge, "alicesecret12");
  ASSERT_EQ(t.verify("alice", ok, "", "", n, r), nullptr);
  EXPECT_NE(t.verify("alice", ok, "", "", n, r), nullptr);
}

}  // namespace
}  // namespace scstu::iscsi
