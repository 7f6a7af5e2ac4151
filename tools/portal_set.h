// portal_set.h - the daemon's iSCSI side: the portals of the configuration
// and the CHAP settings of its targets, over iscsi::Server.
//
// iscsi::Server takes its portals when it starts, so add_portal() collects
// them and start() starts it. Adding a target at runtime needs no server
// change (the core knows targets); a target's CHAP set on a running server
// applies to the logins that start after it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config.pb.h"
#include "core/target_core.h"
#include "iscsi/server.h"

namespace scstu::tools {

class PortalSet {
 public:
  explicit PortalSet(core::TargetCore& core) : core_(core) {}
  ~PortalSet();

  // "ADDR:PORT" (port 0: any). "" or the error.
  std::string add_portal(const std::string& address);
  void set_target(const config::Target& target);
  void set_discovery_chap(const config::Chap& chap);
  // Config's max_connections and cmdsn_gap_timeout_ms (0: the default);
  // before start(). "" or the error naming the field.
  std::string set_session_limits(const config::Config& config);
  // Binds every portal and starts serving. "" or the error.
  std::string start();
  bool started() const { return server_ != nullptr; }
  std::vector<std::string> addresses() const;

 private:
  core::TargetCore& core_;
  iscsi::ServerOptions options_;
  bool portal_defaulted_ = true;  // options_.portals still holds ServerOptions' default
  std::unique_ptr<iscsi::Server> server_;
};

// "ADDR:PORT" -> portal. False with *error when malformed.
bool parse_portal_address(const std::string& text, iscsi::PortalAddress* out, std::string* error);

}  // namespace scstu::tools
