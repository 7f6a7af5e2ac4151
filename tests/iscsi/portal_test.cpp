// SendTargets' TargetAddress of a portal (RFC 7143 13.8).
#include <gtest/gtest.h>

#include "iscsi/server_impl.h"

namespace scstu::iscsi {
namespace {

TEST(TargetAddress, Ipv4Ipv6AndWildcards) {
  EXPECT_EQ(target_address({"127.0.0.1", 3260}, "127.0.0.1", 1), "127.0.0.1:3260,1");
  EXPECT_EQ(target_address({"::1", 3260}, "::1", 2), "[::1]:3260,2") << "IPv6 in brackets";
  // A wildcard portal is reported as the address the initiator reached.
  EXPECT_EQ(target_address({"0.0.0.0", 3260}, "192.0.2.7", 1), "192.0.2.7:3260,1");
  EXPECT_EQ(target_address({"::", 3261}, "2001:db8::5", 1), "[2001:db8::5]:3261,1");
  // ... of its own family only; unknown: left as it is.
  EXPECT_EQ(target_address({"0.0.0.0", 3260}, "2001:db8::5", 1), "0.0.0.0:3260,1");
  EXPECT_EQ(target_address({"::", 3260}, "", 1), "[::]:3260,1");
}

}  // namespace
}  // namespace scstu::iscsi
