// RingDevice's per-thread run cache (ring_device.h, "Buffers"): a thread's
// released buffers are handed back to its own next allocations without the
// allocator lock. What must hold: parked runs are never lost (an allocation
// that needs them gets them, a thread's exit returns them), never handed out
// twice, never outlive their device's memory, and never come from a region a
// reattach retired.
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "ring_test_support.h"

namespace scstu::ring_test {
namespace {

transport::RingDeviceConfig small_area(const std::string& name) {
  transport::RingDeviceConfig cfg;
  cfg.name = name;
  cfg.data_size = 1u << 20;  // 256 pages, one queue: a thread parks at most 16
  cfg.max_io_bytes = 64u << 10;
  return cfg;
}

std::unique_ptr<TestCommand> alloc_cmd(transport::RingDevice& d, uint32_t len) {
  auto c = std::make_unique<TestCommand>(kOpWrite, len, DataDirection::kWrite);
  if (!d.alloc_buffer(c->cmd)) return nullptr;
  return c;
}

uint64_t free_bytes(const transport::RingDevice& d) { return d.data_area_usage().free_bytes; }
uint64_t total_bytes(const transport::RingDevice& d) { return d.data_area_usage().total_bytes; }

TEST(RingBufferCache, AThreadGetsItsReleasedRunBack) {
  Producer p(small_area("cache0"));
  auto a = alloc_cmd(*p.device, 4096);
  ASSERT_TRUE(a);
  const void* where = a->cmd.buffer[0].iov_base;
  p.device->release_buffer(a->cmd);
  EXPECT_LT(free_bytes(*p.device), total_bytes(*p.device));  // parked, not in the allocator
  auto b = alloc_cmd(*p.device, 4096);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->cmd.buffer[0].iov_base, where);
  p.device->release_buffer(b->cmd);
}

TEST(RingBufferCache, ARunStaysWithItsQueue) {
  transport::RingDeviceConfig cfg = small_area("cache7");
  cfg.nr_queues = 2;
  Producer p(cfg);
  TestCommand a(kOpWrite, 4096, DataDirection::kWrite);
  ASSERT_TRUE(p.device->alloc_buffer_on(a.cmd, 0));
  const void* where = a.cmd.buffer[0].iov_base;
  p.device->release_buffer(a.cmd);  // parked for queue 0
  TestCommand b(kOpWrite, 4096, DataDirection::kWrite);
  ASSERT_TRUE(p.device->alloc_buffer_on(b.cmd, 1));
  EXPECT_NE(b.cmd.buffer[0].iov_base, where);  // from queue 1's share
  TestCommand c(kOpWrite, 4096, DataDirection::kWrite);
  ASSERT_TRUE(p.device->alloc_buffer_on(c.cmd, 0));
  EXPECT_EQ(c.cmd.buffer[0].iov_base, where);
  p.device->release_buffer(b.cmd);
  p.device->release_buffer(c.cmd);
}

TEST(RingBufferCache, ParkedRunsServeAnAllocationThatWouldOtherwiseFail) {
  Producer p(small_area("cache1"));
  std::vector<std::unique_ptr<TestCommand>> held;
  while (auto c = alloc_cmd(*p.device, 4096)) held.push_back(std::move(c));
  ASSERT_EQ(held.size(), 256u);
  for (auto& c : held) p.device->release_buffer(c->cmd);
  held.clear();
  // Some 4 KiB runs are parked; the last 8 KiB runs need them back in the allocator.
  while (auto c = alloc_cmd(*p.device, 8192)) held.push_back(std::move(c));
  EXPECT_EQ(held.size(), 128u);
  for (auto& c : held) p.device->release_buffer(c->cmd);
}

TEST(RingBufferCache, ThreadExitGivesParkedRunsBack) {
  Producer p(small_area("cache2"));
  const uint64_t total = total_bytes(*p.device);
  uint64_t free_while_parked = 0;
  std::thread t([&] {
    std::vector<std::unique_ptr<TestCommand>> held;
    for (int i = 0; i < 8; ++i) held.push_back(alloc_cmd(*p.device, 8192));
    for (auto& c : held) p.device->release_buffer(c->cmd);
    free_while_parked = free_bytes(*p.device);
  });
  t.join();
  EXPECT_LT(free_while_parked, total);
  EXPECT_EQ(free_bytes(*p.device), total);
}

// Idle connections keep what they parked, out of every other thread's reach:
// all shelves together hold at most a quarter of a queue's share, so a
// busy thread still gets three quarters of the area however many sit idle.
TEST(RingBufferCache, IdleThreadsTogetherParkAtMostAQuarter) {
  Producer p(small_area("cache8"));  // 256 pages: a shelf holds 16, all shelves 64
  const uint64_t total = total_bytes(*p.device);
  constexpr int kIdle = 12;  // 12 x 16 pages would strand 3/4 of the area
  std::mutex mu;
  std::condition_variable cv;
  int parked = 0;
  bool done = false;
  std::vector<std::thread> idle;
  for (int i = 0; i < kIdle; ++i) {
    idle.emplace_back([&] {
      std::vector<std::unique_ptr<TestCommand>> held;
      for (int k = 0; k < 8; ++k) held.push_back(alloc_cmd(*p.device, 8192));
      for (auto& c : held)
        if (c) p.device->release_buffer(c->cmd);
      std::unique_lock l(mu);
      ++parked;
      cv.notify_all();
      cv.wait(l, [&] { return done; });  // idle, its shelf kept
    });
  }
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return parked == kIdle; });
  }
  EXPECT_GE(free_bytes(*p.device), total * 3 / 4);
  std::vector<std::unique_ptr<TestCommand>> held;
  while (auto c = alloc_cmd(*p.device, 4096)) held.push_back(std::move(c));
  EXPECT_GE(held.size() * 4096, total * 3 / 4);
  for (auto& c : held) p.device->release_buffer(c->cmd);
  {
    std::lock_guard l(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : idle) t.join();
  held.clear();
  // The idle threads' runs and budget are back: a new thread parks again.
  std::thread([&] {
    auto c = alloc_cmd(*p.device, 4096);
    ASSERT_TRUE(c);
    p.device->release_buffer(c->cmd);
    EXPECT_LT(free_bytes(*p.device), total);  // parked
  }).join();
  EXPECT_EQ(free_bytes(*p.device), total);
}

TEST(RingBufferCache, ARunReleasedTwiceIsNotHandedOutTwice) {
  Producer p(small_area("cache3"));
  auto a = alloc_cmd(*p.device, 4096);
  ASSERT_TRUE(a);
  const uint64_t cookie = a->cmd.device_cookie;
  p.device->release_buffer(a->cmd);
  a->cmd.device_cookie = cookie;  // a transport bug: the same buffer again
  p.device->release_buffer(a->cmd);
  // Every page is handed out once: from the cache or from the allocator.
  std::vector<std::unique_ptr<TestCommand>> held;
  std::set<const void*> seen;
  while (auto c = alloc_cmd(*p.device, 4096)) {
    EXPECT_TRUE(seen.insert(c->cmd.buffer[0].iov_base).second) << held.size();
    held.push_back(std::move(c));
  }
  EXPECT_EQ(held.size(), 256u);
  for (auto& c : held) p.device->release_buffer(c->cmd);
}

// A thread parks runs of a device that is then destroyed; it goes on with
// other devices (more than it has shelves for) and exits: the dead device's
// runs are dropped, never touched (ASan would see it), and every live
// device's come back.
TEST(RingBufferCache, DeviceDestroyedWhileAThreadHoldsItsRuns) {
  auto doomed = std::make_unique<Producer>(small_area("cache4"));
  std::vector<std::unique_ptr<Producer>> live;
  for (int i = 0; i < 4; ++i)
    live.push_back(std::make_unique<Producer>(small_area("cache5" + std::to_string(i))));
  std::mutex mu;
  std::condition_variable cv;
  int phase = 0;
  std::vector<bool> parked(live.size());
  std::thread t([&] {
    auto a = alloc_cmd(*doomed->device, 4096);
    doomed->device->release_buffer(a->cmd);
    {
      std::unique_lock lock(mu);
      phase = 1;
      cv.notify_all();
      cv.wait(lock, [&] { return phase == 2; });
    }
    for (size_t i = 0; i < live.size(); ++i) {
      auto c = alloc_cmd(*live[i]->device, 4096);
      live[i]->device->release_buffer(c->cmd);
      parked[i] = free_bytes(*live[i]->device) < total_bytes(*live[i]->device);
    }
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return phase == 1; });
    doomed.reset();
    phase = 2;
    cv.notify_all();
  }
  t.join();
  // Four shelves: the dead device's was reused, so all four parked a run.
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_TRUE(parked[i]) << i;
    EXPECT_EQ(free_bytes(*live[i]->device), total_bytes(*live[i]->device)) << i;
  }
}

// Runs parked before a reattach belong to the retired region: the next
// allocation comes from the new one and its command goes through.
TEST(RingBufferCache, RunsOfARetiredRegionAreNotHandedOut) {
  Producer p(small_area("cache6"));
  PatternHandler h1;
  auto t1 = std::make_unique<HandlerThread>(p.options(), h1);
  ASSERT_TRUE(p.device->wait_ready(10000));
  auto a = alloc_cmd(*p.device, 4096);
  ASSERT_TRUE(a);
  const uint8_t* old_buffer = static_cast<const uint8_t*>(a->cmd.buffer[0].iov_base);
  p.device->release_buffer(a->cmd);  // parked
  const uint64_t generation = p.device->generation();
  EXPECT_EQ(t1->stop(), 0);
  t1.reset();
  for (int i = 0; i < 1000 && p.device->ready(); ++i)  // the hang-up is seen
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  PatternHandler h2;
  HandlerThread t2(p.options(), h2);
  ASSERT_TRUE(p.device->wait_ready(10000));
  EXPECT_NE(p.device->generation(), generation);
  TestCommand w(kOpWrite, 4096, DataDirection::kWrite, 7);
  ASSERT_TRUE(p.device->alloc_buffer(w.cmd));
  EXPECT_NE(w.cmd.buffer[0].iov_base, old_buffer);
  // Allocated in the new region's allocator (not the old run's offset there).
  EXPECT_EQ(free_bytes(*p.device), total_bytes(*p.device) - 4096);
  fill_pattern(DataBuffer(w.cmd.buffer), 7);
  p.device->submit(w.cmd);
  ASSERT_TRUE(w.wait());
  EXPECT_EQ(w.cmd.status, status::kGood);
  p.device->release_buffer(w.cmd);
  EXPECT_EQ(t2.stop(), 0);
}

}  // namespace
}  // namespace scstu::ring_test
