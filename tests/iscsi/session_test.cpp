// The session's CmdSN sequencing (session.h) without sockets: hold, deliver,
// ignore, gap skipping, the shared window.
#include "iscsi/session.h"

#include <gtest/gtest.h>

namespace scstu::iscsi {
namespace {

using Order = Session::Order;

Session make(uint32_t window, uint32_t first, uint32_t max_connections = 1) {
  SessionParams p;
  p.max_connections = max_connections;
  return Session(SessionKey{"iqn.ini", {1, 2, 3, 4, 5, 6}, "iqn.tgt"}, 1, p, window, first,
                 window + 16);
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

// RFC 7143 11.5.1: while a task-set TMF is in progress, a command for its
// LUN numbered from the TMF's CmdSN on waits (kFenced), one numbered before
// it is terminated (kCovered); other LUNs and other PDUs go on; no gap is
// skipped behind a fence; lowering it lets the held command go.
TEST(SessionOrder, TmfFenceHoldsLaterCommandsAndCoversEarlierOnes) {
  Session s = make(8, 10, 2);
  s.connections = 2;
  s.max_cmdsn();
  const uint64_t lun0 = 0, lun1 = uint64_t{1} << 48;
  int tmf = 0;
  s.raise_fence(&tmf, lun0, false, 11);
  EXPECT_FALSE(s.fenced(lun1, nullptr));
  EXPECT_TRUE(s.fenced(lun0, nullptr)) << "an immediate command waits";
  EXPECT_EQ(s.order(11, nullptr, true, &lun0), Order::kFenced) << "numbered from the TMF on";
  EXPECT_EQ(s.order(11, nullptr, true, nullptr), Order::kHold)
      << "10 may be behind the fence: the gap is not skipped";
  EXPECT_EQ(s.order(10, nullptr, false, &lun0), Order::kCovered) << "numbered before the TMF";
  s.delivered();
  EXPECT_EQ(s.order(11, nullptr, false, &lun1), Order::kDeliver) << "another LUN";
  s.delivered();
  EXPECT_EQ(s.order(12, nullptr, false, &lun0), Order::kFenced);
  s.lower_fence(&tmf);
  EXPECT_FALSE(s.fenced(lun0, nullptr));
  EXPECT_EQ(s.order(12, nullptr, false, &lun0), Order::kDeliver);
  s.delivered();
}

// RFC 7143 11.2.1.8: with several connections possible, a tag held by a task
// of one connection is refused to every other task until released.
TEST(SessionItt, TagsAreUniqueAcrossTheSession) {
  Session single = make(4, 1, 1);
  EXPECT_FALSE(single.tracks_itts()) << "one connection: its own table suffices";
  Session s = make(4, 1, 2);
  ASSERT_TRUE(s.tracks_itts());
  Task* a = reinterpret_cast<Task*>(0x1000);
  Task* b = reinterpret_cast<Task*>(0x2000);
  using Insert = IttTable<Task>::Insert;
  EXPECT_EQ(s.claim_itt(7, a), Insert::kDone);
  EXPECT_EQ(s.claim_itt(7, b), Insert::kInUse);
  s.release_itt(7, b);  // not b's: stays a's
  EXPECT_EQ(s.claim_itt(7, b), Insert::kInUse);
  s.release_itt(7, a);
  EXPECT_EQ(s.claim_itt(7, b), Insert::kDone);
}

TEST(IttTable, FindInsertEraseKeepProbeChains) {
  IttTable<int> t;
  t.reset(64);
  std::vector<int> owners(200);
  // Tags that collide in the hash alike and not: every erase must leave the
  // others findable (backward-shift deletion).
  for (uint32_t i = 0; i < 64; ++i)
    ASSERT_EQ(t.insert(i * 1024, &owners[i]), IttTable<int>::Insert::kDone);
  for (uint32_t i = 0; i < 64; i += 3) ASSERT_TRUE(t.erase(i * 1024, &owners[i]));
  for (uint32_t i = 0; i < 64; ++i) EXPECT_EQ(t.find(i * 1024), i % 3 ? &owners[i] : nullptr) << i;
  EXPECT_FALSE(t.erase(1024, &owners[2])) << "another owner's tag";
  // Half the slots at most: the rest is refused, never an endless probe.
  size_t added = 0;
  for (uint32_t i = 0;
       i < 200 && t.insert(0x80000000u + i, &owners[i]) == IttTable<int>::Insert::kDone; ++i)
    ++added;
  EXPECT_GT(added, 0u);
  EXPECT_EQ(t.insert(0xFFFFFFF0u, &owners[0]), IttTable<int>::Insert::kFull);
}

}  // namespace
}  // namespace scstu::iscsi
