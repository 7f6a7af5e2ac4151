// chap.h - CHAP for iSCSI login (RFC 7143 12.1.3, RFC 1994): MD5 only
// (CHAP_A=5), one-way and mutual.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace scstu::iscsi {

struct ChapCredentials {
  std::string user;
  std::string secret;
};

// Authentication required by a target (or by discovery sessions).
struct AuthConfig {
  // Initiators must prove one of these (empty: no authentication required).
  std::vector<ChapCredentials> incoming;
  // When set, the target answers an initiator's challenge (mutual CHAP).
  std::optional<ChapCredentials> outgoing;
};

inline constexpr size_t kChapChallengeBytes = 16;
inline constexpr size_t kChapMaxChallengeBytes = 1024;  // RFC 7143 12.1.3

// MD5(id || secret || challenge).
std::array<uint8_t, 16> chap_md5_response(uint8_t id, std::string_view secret,
                                          std::span<const uint8_t> challenge);

// Fill from the CSPRNG (OpenSSL RAND_bytes). False if it failed.
bool chap_random(std::span<uint8_t> out);

// The target side of one CHAP exchange.
class ChapTarget {
 public:
  explicit ChapTarget(const AuthConfig& config) : config_(config) {}

  // Step 1: the initiator's CHAP_A list. Returns false if MD5 (5) is absent.
  // Fills our CHAP_I and CHAP_C to send.
  bool start(std::string_view chap_a, std::string& id_out, std::string& challenge_out);

  // Step 2: CHAP_N/CHAP_R, and for mutual CHAP the initiator's CHAP_I/CHAP_C
  // (empty when absent). On success returns nullptr and, for mutual CHAP,
  // fills the CHAP_N/CHAP_R to send; otherwise the reason for the log.
  const char* verify(std::string_view name, std::string_view response, std::string_view peer_id,
                     std::string_view peer_challenge, std::string& name_out,
                     std::string& response_out);

  const std::string& authenticated_user() const { return user_; }

 private:
  const AuthConfig& config_;
  uint8_t id_ = 0;
  std::array<uint8_t, kChapChallengeBytes> challenge_{};
  bool started_ = false;
  std::string user_;
};

}  // namespace scstu::iscsi
