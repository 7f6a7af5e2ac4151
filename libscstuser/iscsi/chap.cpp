#include "iscsi/chap.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "iscsi/text_keys.h"

namespace scstu::iscsi {

std::array<uint8_t, 16> chap_md5_response(uint8_t id, std::string_view secret,
                                          std::span<const uint8_t> challenge) {
  std::array<uint8_t, 16> out{};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned len = 0;
  if (!ctx || !EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) ||
      !EVP_DigestUpdate(ctx.get(), &id, 1) ||
      !EVP_DigestUpdate(ctx.get(), secret.data(), secret.size()) ||
      !EVP_DigestUpdate(ctx.get(), challenge.data(), challenge.size()) ||
      !EVP_DigestFinal_ex(ctx.get(), out.data(), &len) || len != out.size()) {
    // No MD5 (a FIPS-only OpenSSL): return a value no initiator can match,
    // derived from fresh randomness, so authentication fails closed.
    chap_random(out);
  }
  return out;
}

bool chap_random(std::span<uint8_t> out) {
  return RAND_bytes(out.data(), static_cast<int>(out.size())) == 1;
}

bool ChapTarget::start(std::string_view chap_a, std::string& id_out, std::string& challenge_out) {
  bool md5 = false;
  for (std::string_view a : split_list(chap_a))
    if (a == "5") md5 = true;
  if (!md5) return false;
  if (!chap_random(std::span<uint8_t>(&id_, 1)) || !chap_random(challenge_)) return false;
  started_ = true;
  id_out = std::to_string(id_);
  challenge_out = encode_hex(challenge_);
  return true;
}

const char* ChapTarget::verify(std::string_view name, std::string_view response,
                               std::string_view peer_id, std::string_view peer_challenge,
                               std::string& name_out, std::string& response_out) {
  if (!started_) return "CHAP_R before CHAP_C";
  if (name.empty() || response.empty()) return "CHAP_N or CHAP_R missing";
  auto r = decode_binary(response, 16);
  if (!r || r->size() != 16) return "CHAP_R is not a 16-byte MD5 value";
  const ChapCredentials* match = nullptr;
  for (const ChapCredentials& c : config_.incoming) {
    if (c.user != name) continue;
    auto expected = chap_md5_response(id_, c.secret, challenge_);
    if (CRYPTO_memcmp(expected.data(), r->data(), 16) == 0) match = &c;
  }
  // A challenge can be used once: a second verify() must not replay it.
  started_ = false;
  if (!match) return "CHAP_N/CHAP_R do not match any configured initiator credential";
  user_ = match->user;
  if (peer_id.empty() && peer_challenge.empty()) return nullptr;
  // Mutual CHAP (12.1.3): the initiator challenges us.
  if (peer_id.empty() || peer_challenge.empty()) return "mutual CHAP needs both CHAP_I and CHAP_C";
  if (!config_.outgoing) return "initiator asks for mutual CHAP but no target secret is configured";
  auto id = parse_number(peer_id, 255);
  if (!id) return "CHAP_I is not 0..255";
  auto c = decode_binary(peer_challenge, kChapMaxChallengeBytes);
  if (!c || c->empty()) return "CHAP_C is not a valid binary value";
  // Reflection attack: our own challenge sent back to make us compute the
  // answer the initiator owes us.
  if (c->size() == challenge_.size() &&
      CRYPTO_memcmp(c->data(), challenge_.data(), challenge_.size()) == 0)
    return "initiator reflected the target's CHAP challenge";
  if (config_.outgoing->secret == match->secret)
    return "mutual CHAP with the same secret in both directions is refused (RFC 7143 12.1.3)";
  auto answer = chap_md5_response(static_cast<uint8_t>(*id), config_.outgoing->secret, *c);
  name_out = config_.outgoing->user;
  response_out = encode_hex(answer);
  return nullptr;
}

}  // namespace scstu::iscsi
