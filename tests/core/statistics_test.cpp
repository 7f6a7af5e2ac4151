#include "core/statistics.h"

#include <gtest/gtest.h>

namespace scstu::core {
namespace {

TEST(Statistics, LatencyBuckets) {
  EXPECT_EQ(latency_bucket(0), 0u);
  EXPECT_EQ(latency_bucket(1), 0u);
  EXPECT_EQ(latency_bucket(2), 1u);
  EXPECT_EQ(latency_bucket(3), 1u);
  EXPECT_EQ(latency_bucket(4), 2u);
  EXPECT_EQ(latency_bucket(1023), 9u);
  EXPECT_EQ(latency_bucket(1024), 10u);
  EXPECT_EQ(latency_bucket(1'000'000), 19u);  // 1 ms: [524288, 1048576)
  EXPECT_EQ(latency_bucket(UINT64_MAX), kLatencyBuckets - 1);
}

TEST(Statistics, RecordsPerClass) {
  StatisticsCounters c;
  c.record(CommandClass::kRead, 4096, status::kGood, 1500);
  c.record(CommandClass::kRead, 8192, status::kGood, 3000);
  c.record(CommandClass::kWrite, 512, status::kCheckCondition, 100);
  c.record(CommandClass::kNonData, 0, status::kConditionMet, 10);
  c.record_task_set_full();
  c.record_busy();
  c.record_busy();
  const DeviceStatistics s = c.snapshot("disk0");
  EXPECT_EQ(s.device, "disk0");
  EXPECT_EQ(s.commands(), 4u);
  EXPECT_EQ(s.bytes_read(), 12288u);
  EXPECT_EQ(s.bytes_written(), 512u);
  EXPECT_EQ(s.errors(), 1u);
  EXPECT_EQ(s.of(CommandClass::kWrite).errors, 1u);
  EXPECT_EQ(s.of(CommandClass::kNonData).errors, 0u);  // CONDITION MET is not an error
  EXPECT_EQ(s.of(CommandClass::kRead).mean_latency_ns(), 2250u);
  EXPECT_EQ(s.of(CommandClass::kRead).latency[10], 1u);  // 1500 ns
  EXPECT_EQ(s.of(CommandClass::kRead).latency[11], 1u);  // 3000 ns
  EXPECT_EQ(s.of(CommandClass::kWrite).latency[6], 1u);  // 100 ns
  EXPECT_EQ(s.task_set_full, 1u);
  EXPECT_EQ(s.busy, 2u);
  c.reset();
  const DeviceStatistics z = c.snapshot("disk0");
  EXPECT_EQ(z.commands(), 0u);
  EXPECT_EQ(z.of(CommandClass::kRead).latency[10], 0u);
  EXPECT_EQ(z.busy, 0u);
}

TEST(Statistics, PercentilesAndFormat) {
  StatisticsCounters c;
  for (int i = 0; i < 98; ++i) c.record(CommandClass::kRead, 512, status::kGood, 1000);  // bucket 9
  c.record(CommandClass::kRead, 512, status::kGood, 70000);    // bucket 16
  c.record(CommandClass::kRead, 512, status::kGood, 5000000);  // bucket 22
  const DeviceStatistics s = c.snapshot("disk0");
  const ClassStatistics& r = s.of(CommandClass::kRead);
  EXPECT_EQ(r.latency_percentile_ns(0.0), 1023u);
  EXPECT_EQ(r.latency_percentile_ns(0.5), 1023u);
  EXPECT_EQ(r.latency_percentile_ns(0.99), 131071u);
  EXPECT_EQ(r.latency_percentile_ns(1.0), 8388607u);
  EXPECT_EQ(ClassStatistics{}.latency_percentile_ns(0.5), 0u);
  const std::string text = format_statistics(s);
  EXPECT_NE(text.find("device disk0: 100 commands, 0 errors, 51200 bytes read"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  read     100 commands, 0 errors, mean 51680 ns, p50 <= 1023 ns"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("  write"), std::string::npos);  // no line for idle classes
}

TEST(Statistics, ClassOfDirection) {
  EXPECT_EQ(command_class(DataDirection::kRead), CommandClass::kRead);
  EXPECT_EQ(command_class(DataDirection::kWrite), CommandClass::kWrite);
  EXPECT_EQ(command_class(DataDirection::kBidi), CommandClass::kBidi);
  EXPECT_EQ(command_class(DataDirection::kNone), CommandClass::kNonData);
  EXPECT_STREQ(command_class_name(CommandClass::kNonData), "non-data");
}

}  // namespace
}  // namespace scstu::core
