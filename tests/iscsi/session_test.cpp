// The session's CmdSN sequencing (session.h) without sockets: hold, deliver,
// ignore, gap skipping, the shared window.
#include "iscsi/session.h"

#include <gtest/gtest.h>

namespace scstu::iscsi {
namespace {

using Order = Session::Order;

Session make(uint32_t window, uint32_t first) {
  return Session(SessionKey{"iqn.ini", {1, 2, 3, 4, 5, 6}, "iqn.tgt"}, 1, SessionParams{}, window,
                 first);
}

TEST(SessionOrder, CommandsGoInCmdSnOrderAcrossConnections) {
  Session s = make(4, 10);
  s.connections = 2;
  EXPECT_EQ(s.max_cmdsn(), 13u);  // 4.2.2.1: ExpCmdSN + window - 1
  EXPECT_EQ(s.order(11, nullptr, false), Order::kHold) << "beyond ExpCmdSN waits";
  EXPECT_EQ(s.order(10, nullptr, false), Order::kDeliver);
  EXPECT_EQ(s.exp_cmdsn(), 11u);
  EXPECT_EQ(s.order(11, nullptr, false), Order::kHold) << "10 is still being handed on";
  s.delivered();
  EXPECT_EQ(s.order(11, nullptr, false), Order::kDeliver);
  s.delivered();
  EXPECT_EQ(s.order(10, nullptr, false), Order::kIgnore) << "below ExpCmdSN: a duplicate";
  EXPECT_EQ(s.order(14, nullptr, false), Order::kIgnore) << "beyond the advertised MaxCmdSN";
  // A gap open too long is skipped; the missing number is then stale.
  EXPECT_EQ(s.order(13, nullptr, true), Order::kDeliver);
  s.delivered();
  EXPECT_EQ(s.exp_cmdsn(), 14u);
  EXPECT_EQ(s.order(12, nullptr, false), Order::kIgnore);
}

TEST(SessionOrder, SingleConnectionSkipsAGapAtOnce) {
  Session s = make(8, 0xFFFFFFFEu);  // across the wrap (RFC 1982 arithmetic)
  s.connections = 1;
  s.max_cmdsn();
  EXPECT_EQ(s.order(0xFFFFFFFEu, nullptr, false), Order::kDeliver);
  s.delivered();
  EXPECT_EQ(s.order(1, nullptr, false), Order::kDeliver) << "TCP keeps order: nothing to wait for";
  s.delivered();
  EXPECT_EQ(s.exp_cmdsn(), 2u);
}

TEST(SessionOrder, WindowIsSharedAndNeverShrinks) {
  Session s = make(3, 5);
  uint32_t max = s.max_cmdsn();
  EXPECT_EQ(max, 7u);
  EXPECT_TRUE(s.take_slot());
  EXPECT_TRUE(s.take_slot());
  EXPECT_TRUE(s.take_slot());
  EXPECT_FALSE(s.take_slot()) << "window full";
  EXPECT_EQ(s.max_cmdsn(), max) << "what was advertised stays valid";
  s.release_slot();
  EXPECT_TRUE(s.take_slot());
}

}  // namespace
}  // namespace scstu::iscsi
