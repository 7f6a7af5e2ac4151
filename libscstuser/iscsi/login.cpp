#include "iscsi/login.h"

#include <algorithm>

#include "iscsi/text_keys.h"

namespace scstu::iscsi {
namespace {

bool in_list(std::string_view list, std::string_view item) {
  for (std::string_view v : split_list(list))
    if (v == item) return true;
  return false;
}

bool is_chap_key(std::string_view k) {
  return k == "CHAP_A" || k == "CHAP_I" || k == "CHAP_C" || k == "CHAP_N" || k == "CHAP_R";
}

// Keys the initiator declares once at the start; no answer (13.4-13.6, 13.21).
bool is_leading_declaration(std::string_view k) {
  return k == "InitiatorName" || k == "InitiatorAlias" || k == "SessionType" || k == "TargetName";
}

}  // namespace

LoginNegotiator::LoginNegotiator(const LoginConfig& config, uint32_t initial_statsn)
    : config_(config), statsn_(initial_statsn) {
  params_.target_max_recv_data_segment_length =
      std::clamp<uint32_t>(config.limits.max_recv_data_segment_length, 512, kMaxDataSegment);
}

void LoginNegotiator::build(Bhs& response, const LoginPdu& req, bool transit, uint8_t nsg,
                            LoginStatus status, uint32_t data_length) {
  LoginPdu r;
  r.transit = transit;
  r.csg = req.csg;
  r.nsg = transit ? nsg : 0;
  r.version_max = 0;
  r.version_min = 0;  // version-active
  r.isid = isid_;
  r.tsih = 0;
  r.itt = req.itt;
  r.sn = statsn_++;
  r.expsn = cmdsn_;
  // Login requests are immediate; no command may be sent before full feature
  // phase, so the window opens only in the final response (finish()).
  r.maxcmdsn = cmdsn_;
  r.status_class = status.status_class;
  r.status_detail = status.detail;
  r.encode(response, Opcode::kLoginResponse, data_length);
  final_ = response;
}

LoginNegotiator::Outcome LoginNegotiator::fail(Bhs& response, std::string& text, LoginStatus status,
                                               std::string why) {
  failure_ = std::move(why);
  text.clear();
  LoginPdu req;
  req.csg = stage_;
  req.itt = itt_;
  build(response, req, false, 0, status, 0);
  return Outcome::kFail;
}

void LoginNegotiator::finish(Bhs& response, uint16_t tsih) const {
  // Same header as built, with the session's TSIH (11.13.4 TSIH is set only
  // in the final response).
  response = final_;
  put16(&response.b[14], tsih);
}

void LoginNegotiator::refuse(Bhs& response, std::string& response_text, LoginStatus status) const {
  response = final_;
  response.b[1] &= static_cast<uint8_t>(~0x83);  // T = 0, NSG = 0
  response.b[36] = status.status_class;
  response.b[37] = status.detail;
  response.set_data_length(0);
  response_text.clear();
}

LoginNegotiator::Outcome LoginNegotiator::handle(const Bhs& request, std::span<const uint8_t> data,
                                                 Bhs& response, std::string& text) {
  text.clear();
  LoginPdu req = LoginPdu::decode(request);
  if (!started_) {
    started_ = true;
    isid_ = req.isid;
    tsih_ = req.tsih;
    cid_ = req.cid;
    itt_ = req.itt;
    cmdsn_ = req.sn;
    stage_ = req.csg;
    // 11.12.4: we speak version 0x00 only.
    if (req.version_min > 0)
      return fail(response, text, LoginStatus::unsupported_version(), "Version-min above 0");
  } else if (req.isid != isid_ || req.tsih != tsih_) {
    return fail(response, text, LoginStatus::initiator_error(),
                "ISID or TSIH changed during login");
  }
  itt_ = req.itt;
  if (req.csg != stage_ || req.csg > 1)
    return fail(response, text, LoginStatus::initiator_error(),
                "CSG " + std::to_string(req.csg) + " out of sequence (stage " +
                    std::to_string(stage_) + ")");
  if (pending_.size() + data.size() > kMaxTextBytes)
    return fail(response, text, LoginStatus::initiator_error(), "login text longer than 64 KiB");
  pending_.append(reinterpret_cast<const char*>(data.data()), data.size());
  if (req.continue_) {
    if (req.transit)
      return fail(response, text, LoginStatus::initiator_error(), "login PDU with both C and T");
    // 6.1: acknowledge the partial text with an empty response.
    build(response, req, false, 0, LoginStatus::success(), 0);
    return Outcome::kRespond;
  }
  const char* err = parse_text(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pending_.data()), pending_.size()),
      keys_);
  pending_.clear();
  if (err) return fail(response, text, LoginStatus::initiator_error(), err);

  LoginStatus status = LoginStatus::success();
  bool first = initiator_name_.empty();
  if (first) {
    std::string session_type = "Normal", target;
    for (const TextPair& kv : keys_) {
      if (kv.key == "InitiatorName") initiator_name_ = kv.value;
      if (kv.key == "InitiatorAlias") initiator_alias_ = kv.value;
      if (kv.key == "SessionType") session_type = kv.value;
      if (kv.key == "TargetName") target = kv.value;
    }
    // 13.5: InitiatorName MUST be in the first Login Request.
    if (initiator_name_.empty())
      return fail(response, text, LoginStatus::missing_parameter(), "no InitiatorName");
    if (session_type == "Discovery") {
      discovery_ = true;
      auth_ = config_.discovery_auth;
    } else if (session_type == "Normal") {
      if (target.empty())
        return fail(response, text, LoginStatus::missing_parameter(),
                    "normal session without TargetName");
      std::optional<LoginTarget> t =
          config_.find_target ? config_.find_target(target) : std::nullopt;
      if (!t) return fail(response, text, LoginStatus::not_found(), "no target " + target);
      target_ = *t;
      auth_ = target_.auth;
    } else {
      return fail(response, text, LoginStatus::session_type_not_supported(),
                  "SessionType " + session_type);
    }
    if (tsih_ != 0) {
      // A connection for an existing session (6.3.1): the TSIH must name a
      // session of this initiator, ISID and target with room for it
      // (MaxConnections, 13.2). The connection joins it at the end (6.3.4).
      SessionKey key{initiator_name_, isid_, discovery_ ? std::string() : target_.name};
      LoginStatus s = config_.can_join ? config_.can_join(tsih_, cid_, key)
                                       : LoginStatus::session_does_not_exist();
      if (s.status_class)
        return fail(response, text, s,
                    "cannot add a connection to the session with TSIH " + std::to_string(tsih_));
    }
    // 13.9: the TargetPortalGroupTag goes in the first response of a normal session.
    if (!discovery_) {
      append_pair(text, "TargetPortalGroupTag", std::to_string(config_.portal_group_tag));
      if (!target_.alias.empty()) append_pair(text, "TargetAlias", target_.alias);
    }
    tpgt_sent_ = true;
  }
  bool auth_required = auth_ && !auth_->incoming.empty();
  if (stage_ == 0) {
    if (!security_keys(text, status)) return fail(response, text, status, failure_);
  } else {
    if (auth_required && !auth_done_)
      return fail(response, text, LoginStatus::authentication_failure(),
                  "operational stage without authentication");
    if (!operational_keys(text, status)) return fail(response, text, status, failure_);
  }

  bool transit = false;
  uint8_t nsg = 0;
  if (req.transit) {
    bool valid = (stage_ == 0 && (req.nsg == 1 || req.nsg == 3)) || (stage_ == 1 && req.nsg == 3);
    if (!valid)
      return fail(response, text, LoginStatus::initiator_error(),
                  "invalid NSG " + std::to_string(req.nsg));
    if (stage_ == 0 && !auth_done_) {
      if (auth_required && !chap_)
        return fail(response, text, LoginStatus::authentication_failure(),
                    "initiator leaves security stage without authenticating");
      // Without required authentication, leaving the stage means None.
      if (!auth_required) auth_done_ = true;
    }
    if (stage_ != 0 || auth_done_) {
      transit = true;
      nsg = req.nsg;
    }
  }
  if (transit && !mrdsl_sent_ && nsg == 3) {
    // 13.12: declare what we accept; initiators assume 8192 otherwise.
    append_pair(text, "MaxRecvDataSegmentLength",
                std::to_string(params_.target_max_recv_data_segment_length));
    mrdsl_sent_ = true;
  }
  build(response, req, transit, nsg, LoginStatus::success(), static_cast<uint32_t>(text.size()));
  if (transit) {
    stage_ = nsg;
    if (nsg == 3) {
      finish_negotiation(params_);
      return Outcome::kReadyForFullFeature;
    }
  }
  return Outcome::kRespond;
}

bool LoginNegotiator::security_keys(std::string& out, LoginStatus& status) {
  bool auth_required = auth_ && !auth_->incoming.empty();
  std::string_view chap_n, chap_r, chap_i, chap_c;
  for (const TextPair& kv : keys_) {
    const std::string& k = kv.key;
    if (is_leading_declaration(k)) continue;
    if (k == "AuthMethod") {
      if (auth_required) {
        if (!in_list(kv.value, "CHAP")) {
          append_pair(out, k, "Reject");
          status = LoginStatus::authentication_failure();
          failure_ = "target requires CHAP, initiator offers AuthMethod=" + kv.value;
          return false;
        }
        append_pair(out, k, "CHAP");
        chap_.emplace(*auth_);
      } else if (in_list(kv.value, "None")) {
        append_pair(out, k, "None");
        auth_done_ = true;
      } else {
        status = LoginStatus::authentication_failure();
        failure_ = "no credentials configured for AuthMethod=" + kv.value;
        return false;
      }
      continue;
    }
    if (k == "CHAP_A") {
      std::string id, challenge;
      if (!chap_ || chap_started_ || !chap_->start(kv.value, id, challenge)) {
        status = LoginStatus::authentication_failure();
        failure_ = chap_ ? "CHAP_A without MD5 (5) or repeated: " + kv.value
                         : "CHAP_A before AuthMethod=CHAP";
        return false;
      }
      chap_started_ = true;
      append_pair(out, "CHAP_A", "5");
      append_pair(out, "CHAP_I", id);
      append_pair(out, "CHAP_C", challenge);
      continue;
    }
    if (k == "CHAP_N")
      chap_n = kv.value;
    else if (k == "CHAP_R")
      chap_r = kv.value;
    else if (k == "CHAP_I")
      chap_i = kv.value;
    else if (k == "CHAP_C")
      chap_c = kv.value;
    else if (is_operational_key(k)) {
      operational_key(k, kv.value, out);
    } else {
      append_pair(out, k, "NotUnderstood");
    }
  }
  if (!chap_r.empty() || !chap_n.empty()) {
    std::string name_out, response_out;
    const char* err = chap_started_
                          ? chap_->verify(chap_n, chap_r, chap_i, chap_c, name_out, response_out)
                          : "CHAP_N/CHAP_R before CHAP_A";
    if (err) {
      status = LoginStatus::authentication_failure();
      failure_ = std::string("CHAP: ") + err + " (CHAP_N=" + std::string(chap_n) + ")";
      return false;
    }
    auth_done_ = true;
    if (!response_out.empty()) {
      append_pair(out, "CHAP_N", name_out);
      append_pair(out, "CHAP_R", response_out);
    }
  } else if (!chap_i.empty() || !chap_c.empty()) {
    status = LoginStatus::initiator_error();
    failure_ = "CHAP_I/CHAP_C without CHAP_N/CHAP_R";
    return false;
  }
  return true;
}

void LoginNegotiator::operational_key(const std::string& key, const std::string& value,
                                      std::string& out) {
  // A non-leading connection takes the session's values of the leading-only
  // keys (13: usage LO); an initiator that offers them anyway learns so.
  if (!leading() && is_leading_only_key(key)) {
    append_pair(out, key, "Irrelevant");
    return;
  }
  KeyAnswer a = negotiate_operational_key(key, value, config_.limits, discovery_, params_);
  if (a.send) append_pair(out, key, a.value);
}

bool LoginNegotiator::operational_keys(std::string& out, LoginStatus& status) {
  for (const TextPair& kv : keys_) {
    const std::string& k = kv.key;
    if (is_leading_declaration(k)) continue;
    if (is_chap_key(k) || k == "AuthMethod") {
      status = LoginStatus::initiator_error();
      failure_ = "security key " + k + " in the operational stage";
      return false;
    }
    if (is_operational_key(k)) {
      operational_key(k, kv.value, out);
    } else {
      append_pair(out, k, "NotUnderstood");
    }
  }
  if (!mrdsl_sent_) {
    append_pair(out, "MaxRecvDataSegmentLength",
                std::to_string(params_.target_max_recv_data_segment_length));
    mrdsl_sent_ = true;
  }
  return true;
}

}  // namespace scstu::iscsi
