#include "core/unit_attentions.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace scstu::core {
namespace {

using UA = UnitAttention;

TEST(UnitAttentions, NewNexusStartsWithPowerOn) {
  UnitAttentions ua;
  EXPECT_FALSE(ua.pending(1));
  ua.attach(1);
  EXPECT_TRUE(ua.pending(1));
  EXPECT_EQ(ua.take(1), UA::kPowerOnOccurred);
  EXPECT_FALSE(ua.pending(1));
  EXPECT_EQ(ua.take(1), std::nullopt);
}

TEST(UnitAttentions, SenseCodesAreUnitAttentionWithSpcCodes) {
  EXPECT_EQ(sense_code(UA::kPowerOnOccurred), (scsi::SenseCode{0x06, 0x29, 0x01}));
  EXPECT_EQ(sense_code(UA::kBusDeviceResetFunction), (scsi::SenseCode{0x06, 0x29, 0x03}));
  EXPECT_EQ(sense_code(UA::kItNexusLossOccurred), (scsi::SenseCode{0x06, 0x29, 0x07}));
  EXPECT_EQ(sense_code(UA::kCapacityDataHasChanged), (scsi::SenseCode{0x06, 0x2A, 0x09}));
  EXPECT_EQ(sense_code(UA::kModeParametersChanged), (scsi::SenseCode{0x06, 0x2A, 0x01}));
  EXPECT_EQ(sense_code(UA::kReservationsPreempted), (scsi::SenseCode{0x06, 0x2A, 0x03}));
  EXPECT_EQ(sense_code(UA::kReservationsReleased), (scsi::SenseCode{0x06, 0x2A, 0x04}));
  EXPECT_EQ(sense_code(UA::kRegistrationsPreempted), (scsi::SenseCode{0x06, 0x2A, 0x05}));
  EXPECT_EQ(sense_code(UA::kReportedLunsDataHasChanged), (scsi::SenseCode{0x06, 0x3F, 0x0E}));
  EXPECT_EQ(sense_code(UA::kCommandsClearedByAnotherInitiator),
            (scsi::SenseCode{0x06, 0x2F, 0x00}));
  for (int i = 0; i < static_cast<int>(kUnitAttentionKinds); ++i) {
    EXPECT_EQ(sense_code(static_cast<UA>(i)).key, 0x06) << i;
  }
}

TEST(UnitAttentions, ResetFamilyBeforeOthersOthersInArrivalOrder) {
  UnitAttentions ua;
  ua.attach(1, UA::kItNexusLossOccurred);
  ua.raise(1, UA::kCapacityDataHasChanged);
  ua.raise(1, UA::kReportedLunsDataHasChanged);
  ua.raise(1, UA::kModeParametersChanged);
  EXPECT_EQ(ua.count(1), 4u);
  EXPECT_EQ(ua.peek(1), UA::kItNexusLossOccurred);
  EXPECT_EQ(ua.take(1), UA::kItNexusLossOccurred);
  EXPECT_EQ(ua.take(1), UA::kCapacityDataHasChanged);
  EXPECT_EQ(ua.take(1), UA::kReportedLunsDataHasChanged);
  EXPECT_EQ(ua.take(1), UA::kModeParametersChanged);
  EXPECT_EQ(ua.take(1), std::nullopt);
}

// SAM-5 5.14: 29/00, then 29/01 and 29/04, then 29/02 and 3F/01, then
// 29/03, then 29/07, then the rest in arrival order. MICROCODE HAS BEEN
// CHANGED is not a reset: a later reset drops it, it drops nothing.
TEST(UnitAttentions, SamPrecedenceTable) {
  UnitAttentions ua;
  ua.attach(1, UA::kCapacityDataHasChanged);
  ua.raise(1, UA::kMicrocodeHasBeenChanged);
  EXPECT_EQ(ua.count(1), 2u);
  ua.raise(1, UA::kItNexusLossOccurred);
  EXPECT_EQ(ua.count(1), 1u);
  ua.raise(1, UA::kBusDeviceResetFunction);
  ua.raise(1, UA::kMicrocodeHasBeenChanged);
  ua.raise(1, UA::kBusResetOccurred);
  ua.raise(1, UA::kDeviceInternalReset);
  ua.raise(1, UA::kPowerOnResetOrBusDeviceReset);
  ua.raise(1, UA::kModeParametersChanged);
  EXPECT_EQ(ua.count(1), 6u);  // the microcode condition went with the 29/02 after it
  EXPECT_EQ(ua.take(1), UA::kPowerOnResetOrBusDeviceReset);
  EXPECT_EQ(ua.take(1), UA::kDeviceInternalReset);
  EXPECT_EQ(ua.take(1), UA::kBusResetOccurred);
  EXPECT_EQ(ua.take(1), UA::kBusDeviceResetFunction);
  EXPECT_EQ(ua.take(1), UA::kItNexusLossOccurred);
  EXPECT_EQ(ua.take(1), UA::kModeParametersChanged);
  EXPECT_EQ(ua.take(1), std::nullopt);
  // Without a reset after it, 3F/01 outranks 29/03 and 29/07.
  ua.raise(1, UA::kItNexusLossOccurred);
  ua.raise(1, UA::kBusDeviceResetFunction);
  ua.raise(1, UA::kMicrocodeHasBeenChanged);
  EXPECT_EQ(ua.take(1), UA::kMicrocodeHasBeenChanged);
  EXPECT_EQ(ua.take(1), UA::kBusDeviceResetFunction);
  EXPECT_EQ(ua.take(1), UA::kItNexusLossOccurred);
}

TEST(UnitAttentions, PowerOnOutranksBusDeviceResetOutranksNexusLoss) {
  UnitAttentions ua;
  ua.attach(1, UA::kItNexusLossOccurred);
  ua.raise(1, UA::kBusDeviceResetFunction);
  ua.raise(1, UA::kPowerOnOccurred);
  EXPECT_EQ(ua.take(1), UA::kPowerOnOccurred);
  EXPECT_EQ(ua.take(1), UA::kBusDeviceResetFunction);
  EXPECT_EQ(ua.take(1), UA::kItNexusLossOccurred);
}

TEST(UnitAttentions, ResetSupersedesOlderNonResetConditions) {
  UnitAttentions ua;
  ua.attach(1);
  EXPECT_TRUE(ua.take(1));
  ua.raise(1, UA::kCapacityDataHasChanged);
  ua.raise(1, UA::kBusDeviceResetFunction);
  ua.raise(1, UA::kReservationsPreempted);  // after the reset: kept
  EXPECT_EQ(ua.take(1), UA::kBusDeviceResetFunction);
  EXPECT_EQ(ua.take(1), UA::kReservationsPreempted);
  EXPECT_EQ(ua.take(1), std::nullopt);
}

TEST(UnitAttentions, SameConditionQueuedOnce) {
  UnitAttentions ua;
  ua.attach(1);
  ua.take(1);
  for (int i = 0; i < 10; ++i) ua.raise(1, UA::kCapacityDataHasChanged);
  EXPECT_EQ(ua.count(1), 1u);
  // Every kind at once fits.
  for (int i = 0; i < static_cast<int>(kUnitAttentionKinds); ++i) {
    ua.raise(1, static_cast<UA>(i));
  }
  size_t n = 0;
  while (ua.take(1)) ++n;
  EXPECT_GE(n, 6u);
  EXPECT_LE(n, kUnitAttentionKinds);
}

TEST(UnitAttentions, RaiseForAllAndAllButOne) {
  UnitAttentions ua;
  for (uint64_t n : {1, 2, 3}) {
    ua.attach(n);
    ua.take(n);
  }
  ua.raise_all_except(2, UA::kModeParametersChanged);
  EXPECT_EQ(ua.take(1), UA::kModeParametersChanged);
  EXPECT_EQ(ua.take(2), std::nullopt);
  EXPECT_EQ(ua.take(3), UA::kModeParametersChanged);
  ua.raise_all(UA::kCapacityDataHasChanged);
  for (uint64_t n : {1, 2, 3}) EXPECT_EQ(ua.take(n), UA::kCapacityDataHasChanged);
}

TEST(UnitAttentions, UnknownAndDetachedNexusesHoldNothing) {
  UnitAttentions ua;
  ua.raise(7, UA::kCapacityDataHasChanged);
  EXPECT_FALSE(ua.pending(7));
  ua.attach(7);
  ua.raise(7, UA::kCapacityDataHasChanged);
  ua.detach(7);
  EXPECT_FALSE(ua.pending(7));
  EXPECT_EQ(ua.count(7), 0u);
  ua.attach(7);  // a re-attached nexus starts afresh
  EXPECT_EQ(ua.take(7), UA::kPowerOnOccurred);
  EXPECT_EQ(ua.take(7), std::nullopt);
}

TEST(UnitAttentions, ClearRemovesOneKind) {
  UnitAttentions ua;
  ua.attach(1);
  ua.raise(1, UA::kReportedLunsDataHasChanged);
  ua.clear(1, UA::kReportedLunsDataHasChanged);
  EXPECT_EQ(ua.take(1), UA::kPowerOnOccurred);
  EXPECT_EQ(ua.take(1), std::nullopt);
}

TEST(UnitAttentions, ExemptCommands) {
  const uint8_t inquiry[6] = {0x12}, report_luns[12] = {0xA0}, request_sense[6] = {0x03},
                tur[6] = {0x00}, read10[10] = {0x28};
  EXPECT_EQ(unit_attention_handling(inquiry), UnitAttentionHandling::kExempt);
  EXPECT_EQ(unit_attention_handling(report_luns), UnitAttentionHandling::kExempt);
  EXPECT_EQ(unit_attention_handling(request_sense), UnitAttentionHandling::kReturnAsSense);
  EXPECT_EQ(unit_attention_handling(tur), UnitAttentionHandling::kReport);
  EXPECT_EQ(unit_attention_handling(read10), UnitAttentionHandling::kReport);
  EXPECT_EQ(unit_attention_handling({}), UnitAttentionHandling::kReport);
}

TEST(UnitAttentions, ConcurrentRaiseAndTakeLoseNothing) {
  UnitAttentions ua;
  constexpr int kNexuses = 8;
  for (int n = 0; n < kNexuses; ++n) {
    ua.attach(n);
    ua.take(n);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> taken{0};
  std::vector<std::thread> takers;
  for (int n = 0; n < kNexuses; ++n) {
    takers.emplace_back([&, n] {
      while (!stop.load()) {
        if (ua.take(n)) taken++;
      }
      while (ua.take(n)) taken++;
    });
  }
  int raised = 0;
  for (int i = 0; i < 2000; ++i) {
    ua.raise(i % kNexuses, UA::kCapacityDataHasChanged);
    ++raised;
  }
  stop = true;
  for (auto& t : takers) t.join();
  // Duplicates may merge, never appear from nowhere; nothing is left.
  EXPECT_GT(taken.load(), 0);
  EXPECT_LE(taken.load(), raised);
  for (int n = 0; n < kNexuses; ++n) EXPECT_FALSE(ua.pending(n));
}

}  // namespace
}  // namespace scstu::core
