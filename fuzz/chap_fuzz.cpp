// Fuzz target: the target side of CHAP (iscsi/chap.*, RFC 7143 12.1.3) on the
// initiator's values: the CHAP_A list, CHAP_N, CHAP_R (hex or base64), and a
// mutual CHAP's CHAP_I / CHAP_C, plus the binary and number value decoders
// they use (iscsi/text_keys.*). The input is those strings separated by NUL
// bytes: [flags][CHAP_A][CHAP_N][CHAP_R][CHAP_I][CHAP_C]. Flag bit 0 replaces
// CHAP_R with the right answer to the target's random challenge, so the
// mutual CHAP path is reached. Invariants: a wrong response never
// authenticates; a right one does unless the mutual part is refused; the
// mutual answer is a 16-byte hex value; a challenge is used once.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "iscsi/chap.h"
#include "iscsi/text_keys.h"

using namespace scstu::iscsi;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::vector<std::string_view> f;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  while (f.size() < 5) {
    size_t nul = rest.find('\0');
    f.push_back(rest.substr(0, nul));
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  }
  // The value decoders alone.
  for (std::string_view v : f) {
    if (auto b = decode_binary(v, kChapMaxChallengeBytes); b && b->size() > kChapMaxChallengeBytes)
      std::abort();
    if (auto n = parse_number(v, 255); n && *n > 255) std::abort();
  }

  static const AuthConfig auth = [] {
    AuthConfig a;
    a.incoming.push_back({"alice", "alicesecret12"});
    a.incoming.push_back({"bob", "bobsecret1234"});
    a.outgoing = ChapCredentials{"target", "targetsecret12"};
    return a;
  }();
  ChapTarget chap(auth);
  std::string id, challenge, name_out, response_out;
  if (!chap.start(f[0], id, challenge)) {
    std::string n, r;
    if (chap.verify("alice", "0x00", "", "", n, r) == nullptr) std::abort();  // not started
    return 0;
  }
  auto our_id = parse_number(id, 255);
  auto our_challenge = decode_binary(challenge, kChapMaxChallengeBytes);
  if (!our_id || !our_challenge || our_challenge->size() != kChapChallengeBytes) std::abort();
  std::string response(f[2]);
  const std::string_view name = f[1];
  bool right = false;
  if (flags & 1) {
    for (const ChapCredentials& c : auth.incoming) {
      if (c.user != name) continue;
      auto r = chap_md5_response(static_cast<uint8_t>(*our_id), c.secret, *our_challenge);
      response = "0x";
      static const char* hex = "0123456789abcdef";
      for (uint8_t b : r) {
        response += hex[b >> 4];
        response += hex[b & 15];
      }
      right = true;
    }
  }
  const char* err = chap.verify(name, response, f[3], f[4], name_out, response_out);
  if (err == nullptr) {
    if (!right || chap.authenticated_user() != name) std::abort();
    if (!f[3].empty() || !f[4].empty()) {
      if (name_out != auth.outgoing->user) std::abort();
      auto answer = decode_binary(response_out, 16);
      if (!answer || answer->size() != 16) std::abort();
    }
  } else if (right && f[3].empty() && f[4].empty()) {
    std::abort();  // the right answer without a mutual challenge must pass
  }
  // Used once: the same response again is refused.
  std::string n, r;
  if (chap.verify(name, response, "", "", n, r) == nullptr) std::abort();
  return 0;
}
