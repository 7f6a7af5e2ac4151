// End-to-end tests of the ring over the real user-space transport: a
// RingDevice + UnixListener in this process, serve() in a forked handler
// process or a thread. Data is verified end to end; handler death, handler
// reattach, sessions and task management are exercised.
#include <sys/socket.h>

#include "ring_test_support.h"

namespace scstu::ring_test {
namespace {

TEST(RingTransport, ReadAndWriteDataVerifiedEndToEnd) {
  Producer p;
  pid_t child = fork_handler(p.options());
  ASSERT_TRUE(p.device->wait_ready(10000));
  EXPECT_EQ(p.device->info().block_size, 512u);
  for (uint32_t len : {0u, 512u, 4096u, 65536u, 1u << 20}) {
    TestCommand w(kOpWrite, len, DataDirection::kWrite, len * 7 + 1);
    ASSERT_TRUE(p.device->alloc_buffer(w.cmd));
    fill_pattern(DataBuffer(w.cmd.buffer), len * 7 + 1);
    p.device->submit(w.cmd);
    ASSERT_TRUE(w.wait());
    EXPECT_EQ(w.cmd.status, status::kGood) << len;
    EXPECT_EQ(w.cmd.transferred, len);
    p.device->release_buffer(w.cmd);

    TestCommand r(kOpRead, len, DataDirection::kRead, len * 3 + 5);
    ASSERT_TRUE(p.device->alloc_buffer(r.cmd));
    p.device->submit(r.cmd);
    ASSERT_TRUE(r.wait());
    EXPECT_EQ(r.cmd.status, status::kGood);
    EXPECT_TRUE(check_pattern(DataBuffer(r.cmd.buffer), len * 3 + 5)) << len;
    p.device->release_buffer(r.cmd);
  }
  // A corrupted write is caught by the handler's check: the data really travels.
  TestCommand bad(kOpWrite, 4096, DataDirection::kWrite, 99);
  ASSERT_TRUE(p.device->alloc_buffer(bad.cmd));
  fill_pattern(DataBuffer(bad.cmd.buffer), 98);
  p.device->submit(bad.cmd);
  ASSERT_TRUE(bad.wait());
  EXPECT_EQ(bad.cmd.status, status::kCheckCondition);
  EXPECT_EQ(sense_code(bad.cmd)[0], 0x0E);
  p.device->release_buffer(bad.cmd);
  p.listener.reset();
  p.device.reset();  // producer goes away: the handler's serve() returns -EPIPE
  EXPECT_EQ(wait_exit(child), 0);
}

TEST(RingTransport, LongCdbTravelsThroughTheDataArea) {
  Producer p;
  PatternHandler h;
  HandlerThread t(p.options(), h);
  ASSERT_TRUE(p.device->wait_ready(10000));
  TestCommand c(0x7F, 0, DataDirection::kNone);
  c.cmd.cdb_len = 48;
  for (int i = 10; i < 48; ++i) c.cmd.cdb[i] = static_cast<uint8_t>(i);
  ASSERT_TRUE(p.device->alloc_buffer(c.cmd));
  p.device->submit(c.cmd);
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.cmd.status, status::kGood);
  EXPECT_EQ(h.commands.load(), 1u);
  EXPECT_EQ(t.stop(), 0);
}

TEST(RingTransport, CommandsWithoutHandlerFailWithCommunicationFailure) {
  Producer p;
  TestCommand c(kOpRead, 4096, DataDirection::kRead, 1);
  ASSERT_TRUE(p.device->alloc_buffer(c.cmd));
  p.device->submit(c.cmd);
  ASSERT_TRUE(c.wait(1000));
  EXPECT_EQ(c.cmd.status, status::kCheckCondition);
  EXPECT_EQ(sense_code(c.cmd), kLuCommFailure);
  p.device->release_buffer(c.cmd);
}

TEST(RingTransport, HandlerDeathFailsOutstandingCommandsAndANewHandlerReattaches) {
  Producer p;
  pid_t child = fork_handler(p.options());
  ASSERT_TRUE(p.device->wait_ready(10000));
  const uint64_t gen = p.device->generation();
  // Several commands held by the handler, then one that kills it.
  std::vector<std::unique_ptr<TestCommand>> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(std::make_unique<TestCommand>(kOpHold, 4096, DataDirection::kRead));
    ASSERT_TRUE(p.device->alloc_buffer(held.back()->cmd));
    p.device->submit(held.back()->cmd);
  }
  TestCommand die(kOpDie, 0, DataDirection::kNone);
  p.device->alloc_buffer(die.cmd);
  p.device->submit(die.cmd);
  EXPECT_EQ(wait_exit(child), 3);
  ASSERT_TRUE(die.wait());
  EXPECT_EQ(sense_code(die.cmd), kLuCommFailure);
  for (auto& c : held) {
    ASSERT_TRUE(c->wait());
    EXPECT_EQ(c->cmd.status, status::kCheckCondition);
    EXPECT_EQ(sense_code(c->cmd), kLuCommFailure);
    p.device->release_buffer(c->cmd);
  }
  EXPECT_NE(p.device->last_drop_reason().find("hung up"), std::string::npos);
  EXPECT_FALSE(p.device->ready());

  // A second handler attaches to the same device; traffic flows again.
  pid_t child2 = fork_handler(p.options());
  ASSERT_TRUE(p.device->wait_ready(10000));
  EXPECT_EQ(p.device->generation(), gen + 1);
  TestCommand r(kOpRead, 8192, DataDirection::kRead, 5);
  ASSERT_TRUE(p.device->alloc_buffer(r.cmd));
  p.device->submit(r.cmd);
  ASSERT_TRUE(r.wait());
  EXPECT_EQ(r.cmd.status, status::kGood);
  EXPECT_TRUE(check_pattern(DataBuffer(r.cmd.buffer), 5));
  p.device->release_buffer(r.cmd);
  p.listener.reset();
  p.device.reset();
  EXPECT_EQ(wait_exit(child2), 0);
}

// Completes every command on a worker thread, so replies are published
// while the queue thread is still going through its batch.
class AsyncHandler : public LowLevelHandler {
 public:
  AsyncHandler() : worker_([this] { work(); }) {}
  ~AsyncHandler() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    worker_.join();
  }
  void command(CommandHandle cmd) override {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(cmd));
    cv_.notify_all();
  }

 private:
  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::deque<CommandHandle> batch;
      batch.swap(queue_);
      lock.unlock();
      for (CommandHandle& c : batch) {
        const uint32_t n = c.request().data_length;
        std::move(c).complete_good(n);
      }
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<CommandHandle> queue_;
  bool stop_ = false;
  std::thread worker_;
};

// With every tag in flight, a reply published mid-batch frees a tag that the
// producer resubmits at once, before the handler consumed the batch's slots:
// the ring indices must stay consistent (no drop on either side) and every
// command completes once.
TEST(RingTransport, RepliesFromAnotherThreadAtFullQueueDepth) {
  transport::RingDeviceConfig cfg;
  cfg.queue_depth = 8;
  Producer p(cfg);
  AsyncHandler h;
  HandlerThread t(p.options(), h);
  ASSERT_TRUE(p.device->wait_ready(10000));
  constexpr uint64_t kTotal = 20000;
  std::atomic<uint64_t> issued{0}, good{0}, finished{0};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<core::TargetCommand> cmds(8);
  auto issue = [&](core::TargetCommand& c) {
    if (issued.fetch_add(1) >= kTotal) return false;
    p.device->alloc_buffer(c);
    p.device->submit(c);
    return true;
  };
  for (auto& c : cmds) {
    c.cdb[0] = 0x00;
    c.cdb_len = 6;
    c.done = [&](core::TargetCommand& cmd) {
      if (cmd.status == status::kGood) good.fetch_add(1);
      if (finished.fetch_add(1) + 1 == kTotal) {
        std::lock_guard lock(mu);
        cv.notify_all();
        return;
      }
      issue(cmd);
    };
  }
  for (auto& c : cmds) issue(c);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished >= kTotal; }));
  }
  EXPECT_EQ(good.load(), kTotal);
  EXPECT_TRUE(p.device->ready()) << p.device->last_drop_reason();
  EXPECT_EQ(t.stop(), 0) << t.error;
}

TEST(RingTransport, SecondHandlerForAnAttachedDeviceIsRefused) {
  Producer p;
  PatternHandler h1, h2;
  HandlerThread t1(p.options(), h1);
  ASSERT_TRUE(p.device->wait_ready(10000));
  std::string err;
  EXPECT_EQ(serve(p.options(), h2, &err), -ENODEV);
  EXPECT_NE(err.find("already has a handler"), std::string::npos) << err;
  HandlerOptions wrong = p.options();
  wrong.device_name = "nosuch";
  EXPECT_EQ(serve(wrong, h2, &err), -ENODEV);
  EXPECT_NE(err.find("no device named 'nosuch'"), std::string::npos) << err;
  EXPECT_EQ(t1.stop(), 0);
}

TEST(RingTransport, SessionsReachTheHandlerBeforeTheirCommandsAndAfterReattach) {
  Producer p;
  auto h = std::make_unique<PatternHandler>();
  auto t = std::make_unique<HandlerThread>(p.options(), *h);
  ASSERT_TRUE(p.device->wait_ready(10000));
  SessionInfo s;
  s.id = 0;  // TargetCommand::session == nullptr travels as session id 0
  s.initiator_name = "iqn.2026-11.test:initiator";
  p.device->session_attached(s);  // returns once the handler acknowledged it
  {
    std::lock_guard lock(h->mu);
    ASSERT_EQ(h->attached.size(), 1u);
    EXPECT_EQ(h->attached[0], s.initiator_name);
  }
  TestCommand who(kOpWhoAmI, 256, DataDirection::kRead);
  ASSERT_TRUE(p.device->alloc_buffer(who.cmd));
  p.device->submit(who.cmd);
  ASSERT_TRUE(who.wait());
  EXPECT_EQ(std::string(static_cast<char*>(who.cmd.buffer[0].iov_base), who.cmd.transferred),
            s.initiator_name);
  p.device->release_buffer(who.cmd);

  // Restart the handler: the live session is announced again before commands.
  EXPECT_EQ(t->stop(), 0);
  for (int i = 0; i < 500 && p.device->ready(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto h2 = std::make_unique<PatternHandler>();
  auto t2 = std::make_unique<HandlerThread>(p.options(), *h2);
  ASSERT_TRUE(p.device->wait_ready(10000));
  {
    std::lock_guard lock(h2->mu);
    ASSERT_EQ(h2->attached.size(), 1u);
    EXPECT_EQ(h2->attached[0], s.initiator_name);
  }
  p.device->session_detached(s);
  {
    std::lock_guard lock(h2->mu);
    ASSERT_EQ(h2->detached.size(), 1u);
  }
  EXPECT_EQ(t2->stop(), 0);
}

TEST(RingTransport, AbortTaskReachesTheHandlerAndTheAbortedReplyIsDiscarded) {
  Producer p;
  PatternHandler h;
  HandlerThread t(p.options(), h);
  ASSERT_TRUE(p.device->wait_ready(10000));
  TestCommand c(kOpHold, 4096, DataDirection::kRead);
  ASSERT_TRUE(p.device->alloc_buffer(c.cmd));
  p.device->submit(c.cmd);
  ASSERT_TRUE(h.wait([&] { return h.held.size() == 1; }));

  std::mutex mu;
  std::condition_variable cv;
  std::optional<scstu_tmf_response> resp;
  core::TargetTmf tmf;
  tmf.function = SCSTU_TMF_ABORT_TASK;
  tmf.ref = &c.cmd;
  tmf.done = [&](scstu_tmf_response r) {
    std::lock_guard lock(mu);
    resp = r;
    cv.notify_all();
  };
  p.device->task_management(tmf);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return resp.has_value(); }));
  }
  EXPECT_EQ(*resp, SCSTU_TMF_COMPLETE);
  {
    std::lock_guard lock(h.mu);
    ASSERT_EQ(h.tmfs.size(), 1u);
    EXPECT_EQ(h.tmfs[0], SCSTU_TMF_ABORT_TASK);
  }
  // The handler still completes the command it holds; the producer sees TASK ABORTED.
  CommandHandle held;
  {
    std::lock_guard lock(h.mu);
    held = std::move(h.held.front());
    h.held.pop_front();
  }
  std::move(held).complete_good(4096);
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.cmd.status, status::kTaskAborted);
  EXPECT_EQ(c.cmd.transferred, 0u);
  p.device->release_buffer(c.cmd);

  // ABORT TASK for a command that already completed: function complete, and
  // the handler is not bothered.
  resp.reset();
  p.device->task_management(tmf);
  EXPECT_EQ(resp, SCSTU_TMF_COMPLETE);
  EXPECT_EQ(t.stop(), 0);
}

TEST(RingTransport, HandlerMayCompleteAfterServeReturned) {
  Producer p;
  PatternHandler h;
  HandlerThread t(p.options(), h);
  ASSERT_TRUE(p.device->wait_ready(10000));
  TestCommand c(kOpHold, 4096, DataDirection::kRead);
  ASSERT_TRUE(p.device->alloc_buffer(c.cmd));
  p.device->submit(c.cmd);
  ASSERT_TRUE(h.wait([&] { return h.held.size() == 1; }));
  EXPECT_EQ(t.stop(), 0);
  // The producer saw the hang-up and failed the command.
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(sense_code(c.cmd), kLuCommFailure);
  // The handler's late reply (and its write to the buffer) must be harmless.
  CommandHandle held = std::move(h.held.front());
  h.held.pop_front();
  fill_pattern(held.request().data, 1);
  std::move(held).complete_good(4096);
  p.device->release_buffer(c.cmd);
}

}  // namespace
}  // namespace scstu::ring_test
