#include "portal_set.h"

#include <cstdlib>

namespace scstu::tools {

bool parse_portal_address(const std::string& text, iscsi::PortalAddress* out, std::string* error) {
  const size_t colon = text.rfind(':');
  char* end = nullptr;
  const unsigned long port =
      colon == std::string::npos ? 0 : std::strtoul(text.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size() || *end != '\0' ||
      port > 65535) {
    *error = "portal '" + text + "': expected ADDR:PORT with a port 0..65535, e.g. 127.0.0.1:3260";
    return false;
  }
  out->host = text.substr(0, colon);
  out->port = static_cast<uint16_t>(port);
  return true;
}

PortalSet::~PortalSet() {
  if (server_) server_->stop();
}

std::string PortalSet::add_portal(const std::string& address) {
  iscsi::PortalAddress p;
  std::string error;
  if (!parse_portal_address(address, &p, &error)) return error;
  if (options_.portals.size() == 1 && !started() && portal_defaulted_) {
    options_.portals.clear();
  }
  portal_defaulted_ = false;
  options_.portals.push_back(p);
  return {};
}

void PortalSet::set_target(const config::Target& target) {
  iscsi::AuthConfig auth;
  if (!target.chap().user().empty()) {
    auth.incoming.push_back({target.chap().user(), target.chap().secret()});
  }
  if (!target.mutual_chap().user().empty()) {
    auth.outgoing =
        iscsi::ChapCredentials{target.mutual_chap().user(), target.mutual_chap().secret()};
  }
  options_.target_auth[target.name()] = auth;
  if (server_) server_->set_target_auth(target.name(), auth);
}

void PortalSet::set_discovery_chap(const config::Chap& chap) {
  options_.discovery_auth = {};
  if (!chap.user().empty())
    options_.discovery_auth.incoming.push_back({chap.user(), chap.secret()});
}

std::string PortalSet::set_session_limits(const config::Config& config) {
  if (config.max_connections() != 0) {
    if (std::string e = iscsi::check_max_connections(config.max_connections()); !e.empty())
      return "max_connections " + e;
    options_.max_connections = config.max_connections();
  }
  if (config.cmdsn_gap_timeout_ms() != 0) {
    if (std::string e = iscsi::check_cmdsn_gap_timeout_ms(config.cmdsn_gap_timeout_ms());
        !e.empty())
      return "cmdsn_gap_timeout_ms " + e;
    options_.cmdsn_gap_timeout = std::chrono::milliseconds(config.cmdsn_gap_timeout_ms());
  }
  return {};
}

std::string PortalSet::start() {
  if (portal_defaulted_) return "no portals configured (portals: \"127.0.0.1:3260\")";
  server_ = std::make_unique<iscsi::Server>(core_, options_);
  std::string error;
  if (!server_->start(&error)) {
    server_.reset();
    return error;
  }
  return {};
}

std::vector<std::string> PortalSet::addresses() const {
  std::vector<std::string> out;
  if (!server_) return out;
  for (const auto& p : server_->portals()) out.push_back(p.to_string());
  return out;
}

}  // namespace scstu::tools
