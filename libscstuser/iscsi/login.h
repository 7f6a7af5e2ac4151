// login.h - the target side of the login phase (RFC 7143 6, 13): stage
// transitions, security negotiation (CHAP), operational negotiation.
//
// Pure: it sees Login Request PDUs (header + data segment) and produces Login
// Response PDUs; the connection does the I/O and, once negotiation is done,
// opens the session (TargetCore) and sends the final response.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iscsi/chap.h"
#include "iscsi/pdu.h"
#include "iscsi/session.h"
#include "iscsi/session_params.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {

// 11.13.5 Status-Class / Status-Detail.
struct LoginStatus {
  uint8_t status_class = 0;
  uint8_t detail = 0;
  static constexpr LoginStatus success() { return {0, 0}; }
  static constexpr LoginStatus initiator_error() { return {2, 0}; }
  static constexpr LoginStatus authentication_failure() { return {2, 1}; }
  static constexpr LoginStatus authorization_failure() { return {2, 2}; }
  static constexpr LoginStatus not_found() { return {2, 3}; }
  static constexpr LoginStatus unsupported_version() { return {2, 5}; }
  static constexpr LoginStatus too_many_connections() { return {2, 6}; }
  static constexpr LoginStatus missing_parameter() { return {2, 7}; }
  static constexpr LoginStatus session_type_not_supported() { return {2, 9}; }
  static constexpr LoginStatus session_does_not_exist() { return {2, 10}; }
  static constexpr LoginStatus invalid_during_login() { return {2, 11}; }
  static constexpr LoginStatus target_error() { return {3, 0}; }
  static constexpr LoginStatus out_of_resources() { return {3, 2}; }
};

// What the login needs to know about a target.
struct LoginTarget {
  std::string name;
  std::string alias;
  const AuthConfig* auth = nullptr;                        // nullptr: no authentication
  std::shared_ptr<const AuthConfig> auth_owner = nullptr;  // keeps *auth alive during the login
};

struct LoginConfig {
  TargetLimits limits;
  uint16_t portal_group_tag = 1;
  const AuthConfig* discovery_auth = nullptr;
  // Look a target up by name; nullopt if there is none.
  std::function<std::optional<LoginTarget>(std::string_view)> find_target;
  // A login with a non-zero TSIH adds a connection to a session (6.3.1):
  // success if the session with this TSIH and key exists and takes one more
  // connection (or has one with this CID, to be reinstated), else why not.
  std::function<LoginStatus(uint16_t tsih, uint16_t cid, const SessionKey& key)> can_join;
};

class LoginNegotiator {
 public:
  enum class Outcome {
    kRespond,              // send the response, wait for the next request
    kFail,                 // send the (failure) response, then close the connection
    kReadyForFullFeature,  // open the session, then finish() or refuse()
  };

  LoginNegotiator(const LoginConfig& config, uint32_t initial_statsn);

  // One Login Request. Fills the response header and text.
  Outcome handle(const Bhs& request, std::span<const uint8_t> data, Bhs& response,
                 std::string& response_text);
  // After kReadyForFullFeature: set the TSIH in the final response, or turn
  // it into a failure with `status`.
  void finish(Bhs& response, uint16_t tsih) const;
  void refuse(Bhs& response, std::string& response_text, LoginStatus status) const;

  // Results (valid after kReadyForFullFeature).
  const SessionParams& params() const { return params_; }
  bool discovery() const { return discovery_; }
  const std::string& initiator_name() const { return initiator_name_; }
  const std::string& initiator_alias() const { return initiator_alias_; }
  const std::string& target_name() const { return target_.name; }
  const std::array<uint8_t, 6>& isid() const { return isid_; }
  uint16_t requested_tsih() const { return tsih_; }
  bool leading() const { return tsih_ == 0; }
  uint16_t cid() const { return cid_; }
  uint32_t cmdsn() const { return cmdsn_; }  // the session's first CmdSN
  uint32_t next_statsn() const { return statsn_; }
  // Why the last kFail happened (for the log).
  const std::string& failure() const { return failure_; }

 private:
  Outcome fail(Bhs& response, std::string& text, LoginStatus status, std::string why);
  Outcome first_request(const LoginPdu& req);
  bool security_keys(std::string& out, LoginStatus& status);
  bool operational_keys(std::string& out, LoginStatus& status);
  void operational_key(const std::string& key, const std::string& value, std::string& out);
  void build(Bhs& response, const LoginPdu& req, bool transit, uint8_t nsg, LoginStatus status,
             uint32_t data_length);

  const LoginConfig& config_;
  SessionParams params_;
  uint32_t statsn_;
  bool started_ = false;
  bool discovery_ = false;
  std::string initiator_name_, initiator_alias_;
  LoginTarget target_;
  const AuthConfig* auth_ = nullptr;
  std::array<uint8_t, 6> isid_{};
  uint16_t tsih_ = 0;
  uint16_t cid_ = 0;
  uint32_t itt_ = 0;
  uint32_t cmdsn_ = 0;
  uint8_t stage_ = 0;
  bool auth_done_ = false;
  bool chap_started_ = false;
  bool tpgt_sent_ = false;
  bool mrdsl_sent_ = false;
  std::optional<ChapTarget> chap_;
  std::string pending_;         // C-bit text being accumulated
  std::vector<TextPair> keys_;  // the current request's keys
  std::string failure_;
  Bhs final_;  // the last response built
};

}  // namespace scstu::iscsi
