// Fuzz the login phase: the key=value parser and the LoginNegotiator driven
// by a sequence of Login Request PDUs taken from the input. Input layout:
// repeated [48-byte BHS][2-byte text length][text]. A target requiring CHAP
// and one without authentication are both exercised.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "iscsi/login.h"
#include "iscsi/text_keys.h"

using namespace scstu::iscsi;

#define CHECK(c)            \
  do {                      \
    if (!(c)) std::abort(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The parser alone, on the whole input.
  std::vector<TextPair> kv;
  if (!parse_text(std::span<const uint8_t>(data, size), kv)) {
    CHECK(kv.size() <= kMaxTextPairs);
    for (auto& p : kv) {
      CHECK(!p.key.empty() && p.key.size() <= kMaxKeyLength);
      CHECK(p.value.size() <= kMaxBinaryValueLength);
      (void)parse_number(p.value, UINT32_MAX);
      (void)decode_binary(p.value, 1024);
    }
  }

  static AuthConfig auth = [] {
    AuthConfig a;
    a.incoming.push_back({"alice", "alicesecret12"});
    a.outgoing = ChapCredentials{"target", "targetsecret12"};
    return a;
  }();
  LoginConfig cfg;
  bool chap = size > 0 && (data[0] & 1);
  // MC/S: up to 8 connections, and a non-zero TSIH that joins a session
  // (odd TSIHs) or names none; leading-only keys then answer Irrelevant.
  bool mcs = size > 0 && (data[0] & 2);
  if (mcs) {
    cfg.limits.max_connections = 8;
    cfg.can_join = [](uint16_t tsih, uint16_t, const SessionKey&) {
      return (tsih & 1) ? LoginStatus::success() : LoginStatus::session_does_not_exist();
    };
  }
  cfg.discovery_auth = chap ? &auth : nullptr;
  cfg.find_target = [chap](std::string_view name) -> std::optional<LoginTarget> {
    if (name != "iqn.t") return std::nullopt;
    return LoginTarget{"iqn.t", "", chap ? &auth : nullptr};
  };
  LoginNegotiator n(cfg, 1);
  size_t pos = size > 0 ? 1 : 0;
  for (int pdus = 0; pdus < 16 && size - pos >= kBhsSize + 2; ++pdus) {
    Bhs h;
    std::memcpy(h.b.data(), data + pos, kBhsSize);
    pos += kBhsSize;
    size_t len = std::min<size_t>(size_t{data[pos]} << 8 | data[pos + 1], size - pos - 2);
    pos += 2;
    Bhs resp;
    std::string text;
    auto outcome = n.handle(h, std::span<const uint8_t>(data + pos, len), resp, text);
    pos += len;
    CHECK(resp.data_length() == text.size());
    CHECK(text.size() <= kMaxTextBytes);
    if (outcome == LoginNegotiator::Outcome::kFail) break;
    if (outcome == LoginNegotiator::Outcome::kReadyForFullFeature) {
      CHECK(!n.initiator_name().empty());
      const SessionParams& p = n.params();
      CHECK(p.first_burst_length <= p.max_burst_length);
      CHECK(p.max_connections >= 1 && p.max_connections <= cfg.limits.max_connections &&
            p.error_recovery_level == 0);
      CHECK(n.leading() || (n.requested_tsih() & 1));
      CHECK(p.initiator_max_recv_data_segment_length >= 512);
      n.finish(resp, 1);
      break;
    }
  }
  return 0;
}
