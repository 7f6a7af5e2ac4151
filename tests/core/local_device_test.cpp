#include "core/local_device.h"

#include <gtest/gtest.h>

#include "core/target_core.h"
#include "core_test_util.h"
#include "test_handlers.h"

namespace scstu::core {
namespace {

using test::Exchange;
using test::InlineHandler;

constexpr const char* kTarget = "iqn.2026-11.org.scstu:local";
constexpr const char* kIni = "iqn.2026-11.org.scstu:initiator";

class LocalDeviceTest : public ::testing::Test {
 protected:
  void make(LocalDeviceOptions options = {}) {
    handler = std::make_shared<InlineHandler>();
    options.info.name = "disk0";
    options.info.block_size = 512;
    device = std::make_shared<LocalDevice>(handler, options);
    ASSERT_NO_FATAL_FAILURE(one.add(device, 0, read_only));
    ASSERT_NO_FATAL_FAILURE(one.open(kIni));
  }

  bool read_only = false;
  std::shared_ptr<InlineHandler> handler;
  std::shared_ptr<LocalDevice> device;
  test::OneTarget one{kTarget};
  std::unique_ptr<TargetCore>& core = one.core;
  std::shared_ptr<Session>& session = one.session;
};

TEST_F(LocalDeviceTest, ReadAndWriteThroughTheHandler) {
  make();
  ASSERT_EQ(handler->attached, std::vector<std::string>{kIni});
  Exchange w(session.get(), 0, test::write10(0, 2), 1024, DataDirection::kWrite);
  ASSERT_TRUE(w.run(*core, 0x5A));
  EXPECT_EQ(w.done_calls, 1);
  EXPECT_EQ(w.cmd.status, status::kGood);
  EXPECT_EQ(handler->written, std::vector<uint8_t>(1024, 0x5A));
  core->release(w.cmd);

  Exchange r(session.get(), 0, test::read10(0, 8), 4096, DataDirection::kRead);
  ASSERT_TRUE(r.run(*core));
  EXPECT_EQ(r.data_in, std::vector<uint8_t>(4096, 0xAB));
  core->release(r.cmd);

  ASSERT_EQ(handler->seen.size(), 2u);
  const auto& s = handler->seen[1];
  EXPECT_EQ(s.opcode, 0x28);
  EXPECT_EQ(s.direction, DataDirection::kRead);
  EXPECT_EQ(s.data_length, 4096u);
  EXPECT_FALSE(s.read_only);
  EXPECT_EQ(s.initiator, kIni);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.buffer) % 4096, 0u);  // O_DIRECT-ready
  EXPECT_EQ(device->outstanding(), 0u);
}

TEST_F(LocalDeviceTest, ReadOnlyMappingReachesTheHandlerAsAFlag) {
  read_only = true;
  make();
  Exchange r(session.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(r.run(*core));
  core->release(r.cmd);
  ASSERT_EQ(handler->seen.size(), 1u);
  EXPECT_TRUE(handler->seen[0].read_only);
}

TEST_F(LocalDeviceTest, ShortReadsGetTheirTailZeroedNotTheWholeBuffer) {
  make();
  Exchange w(session.get(), 0, test::write10(0, 8), 4096, DataDirection::kWrite);
  ASSERT_TRUE(w.run(*core, 0x5A));
  void* slot_buffer = w.cmd.buffer[0].iov_base;
  core->release(w.cmd);
  // The handler fills 16 bytes and says so: 16 bytes go out, and the rest of
  // the slot no longer holds the write's data.
  handler->read_fill_bytes = 16;
  handler->report_filled = true;
  Exchange r(session.get(), 0, test::read10(0, 8), 4096, DataDirection::kRead);
  ASSERT_TRUE(r.run(*core));
  EXPECT_EQ(r.data_in, std::vector<uint8_t>(16, 0xAB));
  ASSERT_EQ(r.cmd.buffer[0].iov_base, slot_buffer) << "the write's slot, reused";
  const auto* slot = static_cast<const uint8_t*>(slot_buffer);
  for (size_t i = 16; i < 4096; ++i) ASSERT_EQ(slot[i], 0x00) << i;
  core->release(r.cmd);
}

TEST_F(LocalDeviceTest, ZeroReadBuffersProtectsFromACarelessHandler) {
  LocalDeviceOptions o;
  o.zero_read_buffers = true;
  make(o);
  // Same slot reused: a write leaves 0x5A in it...
  Exchange w(session.get(), 0, test::write10(0, 8), 4096, DataDirection::kWrite);
  ASSERT_TRUE(w.run(*core, 0x5A));
  void* slot_buffer = w.cmd.buffer[0].iov_base;
  core->release(w.cmd);
  // ...then a careless handler writes only 16 bytes but reports 4096.
  handler->read_fill_bytes = 16;
  Exchange r(session.get(), 0, test::read10(0, 8), 4096, DataDirection::kRead);
  ASSERT_TRUE(r.run(*core));
  ASSERT_EQ(r.cmd.buffer[0].iov_base, slot_buffer);
  ASSERT_EQ(r.data_in.size(), 4096u);
  for (size_t i = 0; i < 16; ++i) ASSERT_EQ(r.data_in[i], 0xAB) << i;
  for (size_t i = 16; i < 4096; ++i) ASSERT_EQ(r.data_in[i], 0x00) << i;
  core->release(r.cmd);
}

TEST_F(LocalDeviceTest, WithoutZeroingTheStaleBytesShowWhyItIsTheDefault) {
  LocalDeviceOptions o;
  o.zero_read_buffers = false;
  make(o);
  Exchange w(session.get(), 0, test::write10(0, 1), 512, DataDirection::kWrite);
  ASSERT_TRUE(w.run(*core, 0x5A));
  core->release(w.cmd);
  handler->read_fill_bytes = 0;
  Exchange r(session.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(r.run(*core));
  EXPECT_EQ(r.data_in, std::vector<uint8_t>(512, 0x5A));
  core->release(r.cmd);
}

TEST_F(LocalDeviceTest, SenseAndStatusComeBack) {
  make();
  handler->fail_with_sense = true;
  Exchange r(session.get(), 0, test::read10(0, 1), 512, DataDirection::kRead);
  ASSERT_TRUE(r.run(*core));
  EXPECT_EQ(r.cmd.status, status::kCheckCondition);
  EXPECT_EQ(r.cmd.sense_len, 18);
  EXPECT_EQ(r.sense_key(), 0x03);
  EXPECT_EQ(r.asc(), 0x11);
  core->release(r.cmd);
  EXPECT_EQ(core->statistics("disk0")->of(CommandClass::kRead).errors, 1u);
}

TEST_F(LocalDeviceTest, QueueDepthBoundsOutstandingCommands) {
  // Declared before the handler so it outlives the handler's worker threads.
  std::atomic<int> done{0};
  auto threaded = std::make_shared<test::ThreadedHandler>(1, /*hold=*/true);
  LocalDeviceOptions o;
  o.info.name = "held";
  o.queue_depth = 2;
  auto held = std::make_shared<LocalDevice>(threaded, o);
  test::OneTarget target(kTarget);
  ASSERT_NO_FATAL_FAILURE(target.add(held, 0));
  ASSERT_NO_FATAL_FAILURE(target.open(kIni));
  TargetCore& c = *target.core;
  Session* s = target.session.get();
  std::vector<std::unique_ptr<Exchange>> xs;
  for (int i = 0; i < 3; ++i) {
    xs.push_back(std::make_unique<Exchange>(s, 0, test::read10(i, 1), 512, DataDirection::kRead));
    auto inner = xs.back()->cmd.done;
    xs.back()->cmd.done = [inner, counter = &done](TargetCommand& t) {
      std::atomic<int>* k = counter;  // the lambda may be destroyed once k is bumped
      inner(t);
      k->fetch_add(1);
      k->notify_all();
    };
  }
  ASSERT_TRUE(xs[0]->run(c));
  ASSERT_TRUE(xs[1]->run(c));
  EXPECT_EQ(held->outstanding(), 2u);
  EXPECT_FALSE(xs[2]->run(c));  // no slot: the nexus has commands outstanding
  EXPECT_EQ(xs[2]->cmd.status, status::kTaskSetFull);
  c.release(xs[2]->cmd);
  threaded->release_all();
  while (done.load() < 3) done.wait(done.load());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(xs[i]->data_in, std::vector<uint8_t>(512, 0xC3));
    c.release(xs[i]->cmd);
  }
  EXPECT_EQ(held->outstanding(), 0u);
}

TEST_F(LocalDeviceTest, OversizedTransferIsRefusedByTheCore) {
  LocalDeviceOptions o;
  o.max_io_bytes = 8192;
  make(o);
  EXPECT_EQ(device->info().max_transfer_bytes, 8192u);
  Exchange r(session.get(), 0, test::read10(0, 17), 17 * 512, DataDirection::kRead);
  EXPECT_FALSE(r.run(*core));
  EXPECT_EQ(r.cmd.status, status::kCheckCondition);
  EXPECT_EQ(r.asc(), 0x24);
  core->release(r.cmd);
  EXPECT_TRUE(handler->seen.empty());
}

TEST_F(LocalDeviceTest, TaskManagementAndSessionEventsReachTheHandler) {
  make();
  TargetTmf t;
  t.function = SCSTU_TMF_LUN_RESET;
  t.session = session.get();
  t.lun = encode_lun(0);
  scstu_tmf_response answer = SCSTU_TMF_FAILED;
  t.done = [&](scstu_tmf_response r) { answer = r; };
  core->task_management(t);
  EXPECT_EQ(answer, SCSTU_TMF_SUCCEEDED);
  ASSERT_EQ(handler->tmfs.size(), 1u);
  EXPECT_EQ(handler->tmfs[0].function, SCSTU_TMF_LUN_RESET);
  ASSERT_NE(handler->tmfs[0].session, nullptr);
  EXPECT_EQ(handler->tmfs[0].session->initiator_name, kIni);
  core->close_session(*session);
  ASSERT_EQ(handler->tmfs.size(), 2u);
  EXPECT_EQ(handler->tmfs[1].function, SCSTU_TMF_I_T_NEXUS_LOSS);
  EXPECT_EQ(handler->detached, std::vector<std::string>{kIni});
  session.reset();
}

}  // namespace
}  // namespace scstu::core
