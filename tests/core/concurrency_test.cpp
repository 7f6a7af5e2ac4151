// Many transport threads drive one TargetCore while an admin thread changes
// the configuration; completions arrive from handler worker threads. Checks
// that every command completes exactly once and every counter returns to 0.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/local_device.h"
#include "core/target_core.h"
#include "core_test_util.h"
#include "test_handlers.h"

namespace scstu::core {
namespace {

using test::Exchange;

constexpr const char* kTarget = "iqn.2026-11.org.scstu:stress";

TEST(Concurrency, ManyThreadsSubmitWhileTheConfigurationChanges) {
  constexpr int kThreads = 8;
  constexpr int kCommands = 1500;
  // Completion counters, one per transport thread; declared first so they
  // outlive the handlers' worker threads that bump them.
  std::vector<std::atomic<uint64_t>> completions(kThreads);
  TargetCoreOptions options;
  options.limits = FlowLimits{/*per_device=*/6, /*per_session=*/0};
  TargetCore core(options);
  auto h0 = std::make_shared<test::ThreadedHandler>(2);
  auto h1 = std::make_shared<test::ThreadedHandler>(2);
  LocalDeviceOptions o;
  o.queue_depth = 8;
  o.info.name = "d0";
  auto d0 = std::make_shared<LocalDevice>(h0, o);
  o.info.name = "d1";
  auto d1 = std::make_shared<LocalDevice>(h1, o);
  ASSERT_TRUE(core.access().add_device(d0));
  ASSERT_TRUE(core.access().add_device(d1));
  ASSERT_TRUE(core.access().add_target(kTarget));
  ASSERT_TRUE(core.access().add_lun("Default", 0, "d0"));

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> good{0}, refused{0}, checked{0}, double_done{0};

  std::thread admin([&] {
    for (int i = 0; !stop.load(); ++i) {
      if (i % 2 == 0) {
        (void)core.access().add_lun("Default", 1, "d1");
      } else {
        (void)core.access().remove_lun("Default", 1);
      }
      std::this_thread::yield();
    }
  });

  std::vector<std::thread> transports;
  for (int t = 0; t < kThreads; ++t) {
    transports.emplace_back([&, t] {
      SessionParams p;
      p.target_name = kTarget;
      p.initiator_name = "iqn.2026-11.org.scstu:ini" + std::to_string(t);
      p.isid = static_cast<uint64_t>(t);
      auto s = core.open_session(p);
      ASSERT_TRUE(s);
      for (int i = 0; i < kCommands; ++i) {
        const uint64_t lun = i % 3 == 2 ? 1 : 0;
        const bool write = i % 4 == 1;
        Exchange x(s.get(), lun, write ? test::write10(i, 1) : test::read10(i, 2),
                   write ? 512 : 1024, write ? DataDirection::kWrite : DataDirection::kRead);
        std::atomic<uint64_t>& calls = completions[t];
        const uint64_t before = calls.load();
        auto inner = x.cmd.done;
        x.cmd.done = [counter = &calls, inner](TargetCommand& c) {
          std::atomic<uint64_t>* k = counter;  // x may be destroyed once k is bumped
          inner(c);
          k->fetch_add(1);
          k->notify_all();
        };
        if (x.run(core, 0x11)) {
          for (uint64_t now = calls.load(); now == before; now = calls.load()) calls.wait(now);
        }
        if (calls.load() != before + 1) double_done.fetch_add(1);
        if (x.cmd.status == status::kGood) {
          good.fetch_add(1);
          if (!write && x.data_in != std::vector<uint8_t>(1024, 0xC3)) checked.fetch_add(1000000);
        } else if (x.cmd.status == status::kBusy || x.cmd.status == status::kTaskSetFull) {
          refused.fetch_add(1);
        } else {
          checked.fetch_add(1);  // UA or unmapped LUN 1
        }
        core.release(x.cmd);
      }
      EXPECT_EQ(s->outstanding(), 0u);
      core.close_session(*s);
    });
  }
  for (auto& t : transports) t.join();
  stop.store(true);
  admin.join();

  ::testing::Test::RecordProperty("good", std::to_string(good.load()));
  ::testing::Test::RecordProperty("refused", std::to_string(refused.load()));
  EXPECT_EQ(double_done.load(), 0u);
  EXPECT_LT(checked.load(), 1000000u) << "a read returned data the handler did not write";
  EXPECT_EQ(good.load() + refused.load() + checked.load(), uint64_t{kThreads} * kCommands);
  EXPECT_GT(good.load(), 0u);
  EXPECT_EQ(d0->outstanding(), 0u);
  EXPECT_EQ(d1->outstanding(), 0u);
  const auto s0 = core.statistics("d0");
  const auto s1 = core.statistics("d1");
  ASSERT_TRUE(s0 && s1);
  EXPECT_EQ(s0->commands() + s1->commands(), good.load());
  EXPECT_EQ(s0->task_set_full + s0->busy + s1->task_set_full + s1->busy, refused.load());
  EXPECT_TRUE(core.sessions().empty());
}

}  // namespace
}  // namespace scstu::core
