#include "core/flow_control.h"

#include <gtest/gtest.h>

#include "core/slot_bitmap.h"

namespace scstu::core {
namespace {

TEST(FlowControl, SessionLimitThenStatusByNexus) {
  std::atomic<uint32_t> device{0}, session{0}, nexus_a{0}, nexus_b{0};
  const FlowLimits limits{/*per_device=*/10, /*per_session=*/2};
  const FlowCounters a{&device, &session, &nexus_a};
  const FlowCounters b{&device, &session, &nexus_b};
  EXPECT_EQ(admit(limits, a), Admission::kAdmitted);
  EXPECT_EQ(admit(limits, a), Admission::kAdmitted);
  // Session full; nexus a has commands outstanding: TASK SET FULL.
  EXPECT_EQ(admit(limits, a), Admission::kTaskSetFull);
  // Same session, another LU with nothing outstanding: BUSY (SAM-5 5.3.1).
  EXPECT_EQ(admit(limits, b), Admission::kBusy);
  EXPECT_EQ(device.load(), 2u);
  EXPECT_EQ(session.load(), 2u);
  EXPECT_EQ(nexus_a.load(), 2u);
  EXPECT_EQ(nexus_b.load(), 0u);
  finish(a);
  EXPECT_EQ(admit(limits, b), Admission::kAdmitted);
  EXPECT_EQ(refusal_status(Admission::kTaskSetFull), status::kTaskSetFull);
  EXPECT_EQ(refusal_status(Admission::kBusy), status::kBusy);
  EXPECT_EQ(no_resources_status(0), status::kBusy);
  EXPECT_EQ(no_resources_status(3), status::kTaskSetFull);
}

TEST(FlowControl, DeviceLimitAcrossSessions) {
  std::atomic<uint32_t> device{0}, s1{0}, s2{0}, n1{0}, n2{0};
  const FlowLimits limits{/*per_device=*/3, /*per_session=*/0};
  const FlowCounters c1{&device, &s1, &n1}, c2{&device, &s2, &n2};
  EXPECT_EQ(admit(limits, c1), Admission::kAdmitted);
  EXPECT_EQ(admit(limits, c1), Admission::kAdmitted);
  EXPECT_EQ(admit(limits, c1), Admission::kAdmitted);
  EXPECT_EQ(admit(limits, c2), Admission::kBusy);
  EXPECT_EQ(admit(limits, c1), Admission::kTaskSetFull);
  // A refusal leaves every counter as it was.
  EXPECT_EQ(device.load(), 3u);
  EXPECT_EQ(s2.load(), 0u);
  EXPECT_EQ(n2.load(), 0u);
  EXPECT_EQ(s1.load(), 3u);
}

TEST(FlowControl, ZeroMeansUnlimited) {
  std::atomic<uint32_t> device{0}, session{0}, nexus{0};
  const FlowLimits limits{0, 0};
  for (int i = 0; i < 10000; ++i)
    ASSERT_EQ(admit(limits, {&device, &session, &nexus}), Admission::kAdmitted);
  EXPECT_EQ(device.load(), 10000u);
}

TEST(SlotBitmap, AcquiresEverySlotOnceThenNone) {
  for (uint32_t n : {1u, 63u, 64u, 65u, 130u}) {
    SlotBitmap bm(n);
    std::vector<bool> seen(n, false);
    for (uint32_t i = 0; i < n; ++i) {
      auto s = bm.acquire();
      ASSERT_TRUE(s) << n;
      ASSERT_LT(*s, n);
      ASSERT_FALSE(seen[*s]);
      seen[*s] = true;
    }
    EXPECT_FALSE(bm.acquire()) << n;
    EXPECT_EQ(bm.in_use(), n);
    bm.release(n - 1);
    auto again = bm.acquire();
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, n - 1);
    bm.release(n + 5);  // out of range: ignored
    EXPECT_EQ(bm.in_use(), n);
  }
}

}  // namespace
}  // namespace scstu::core
