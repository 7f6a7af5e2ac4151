// The daemon's iSCSI side (PortalSet): the configuration's session limits
// are validated and reach the logins (MaxConnections negotiated down to the
// configured value).
#include "portal_set.h"

#include <gtest/gtest.h>

#include "../iscsi/raw_initiator.h"

namespace scstu::tools {
namespace {

constexpr const char* kTarget = "iqn.2026-11.org.scstu.test:portal-set";

TEST(PortalSet, SessionLimitsOutOfRangeAreRefusedNamingTheField) {
  core::TargetCore core;
  PortalSet portals(core);
  config::Config c;
  c.set_max_connections(65);
  EXPECT_NE(portals.set_session_limits(c).find("max_connections 65"), std::string::npos);
  c.set_max_connections(2);
  c.set_cmdsn_gap_timeout_ms(600001);
  EXPECT_NE(portals.set_session_limits(c).find("cmdsn_gap_timeout_ms 600001"), std::string::npos);
  c.set_cmdsn_gap_timeout_ms(0);  // unset: the default
  EXPECT_EQ(portals.set_session_limits(c), "");
}

// What a login with MaxConnections=8 is answered, with `configured` in the
// configuration (0: unset).
std::string negotiated_max_connections(uint32_t configured) {
  core::TargetCore core;
  EXPECT_TRUE(core.access().add_target(kTarget));
  PortalSet portals(core);
  config::Config c;
  c.set_max_connections(configured);
  c.set_cmdsn_gap_timeout_ms(250);
  EXPECT_EQ(portals.set_session_limits(c), "");
  EXPECT_EQ(portals.add_portal("127.0.0.1:0"), "");
  EXPECT_EQ(portals.start(), "");
  std::vector<std::string> bound = portals.addresses();
  if (bound.size() != 1) return "not started";
  int port = std::stoi(bound[0].substr(bound[0].rfind(':') + 1));
  iscsi::RawInitiator ini(port);
  auto r = ini.login({{"InitiatorName", "iqn.2026-11.test:limits"},
                      {"TargetName", kTarget},
                      {"SessionType", "Normal"},
                      {"MaxConnections", "8"}},
                     {0x80, 0, 0, 0, 0, 1}, 0, 1, 1);
  EXPECT_TRUE(r.ok);
  return r.value("MaxConnections");
}

TEST(PortalSet, ConfiguredMaxConnectionsIsWhatLoginsGet) {
  EXPECT_EQ(negotiated_max_connections(0), "8") << "the default";
  EXPECT_EQ(negotiated_max_connections(1), "1");
  EXPECT_EQ(negotiated_max_connections(3), "3");
}

}  // namespace
}  // namespace scstu::tools
