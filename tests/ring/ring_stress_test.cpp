// Multi-process stress: a forked handler process, SCSTU_STRESS_COMMANDS
// commands (default 200000; the "stress" ctest entry runs 10 million) with
// random sizes, directions, queue counts and queue depths, every byte of
// data verified end to end (pattern derived from a per-command seed carried
// in the CDB: the handler checks writes, the producer checks reads).
//
// Each command slot sticks to one queue; its completion callback (on the
// device's event thread) verifies it and issues the slot's next command
// right there, as a transport answering from its completion path would.
#include <cstdlib>

#include "ring_test_support.h"

namespace scstu::ring_test {
namespace {

uint64_t stress_commands() {
  const char* env = std::getenv("SCSTU_STRESS_COMMANDS");
  return env ? std::strtoull(env, nullptr, 10) : 200000;
}

struct Totals {
  std::atomic<uint64_t> issued{0}, completed{0}, bytes{0}, retries{0}, errors{0};
  std::mutex mu;
  std::condition_variable cv;
  std::string first_error;
  void error(const std::string& e) {
    if (errors.fetch_add(1) == 0) {
      std::lock_guard lock(mu);
      first_error = e;
    }
  }
};

struct Slot {
  core::TargetCommand cmd;
  uint64_t seed = 0;
  uint32_t queue = 0;
};

struct Run {
  transport::RingDevice* device;
  uint32_t max_len;
  uint64_t n;
  uint64_t seed_base;
  Totals totals;

  // Issues the slot's next command; false when all n are issued.
  bool issue(Slot& s) {
    for (;;) {
      if (totals.errors.load() != 0) return false;
      const uint64_t k = totals.issued.fetch_add(1);
      if (k >= n) return false;
      core::TargetCommand& c = s.cmd;
      s.seed = mix(seed_base + k);
      const uint64_t r = mix(s.seed);
      // Mostly small (like real I/O), one in eight up to max_len, some odd.
      const uint32_t cap = (r >> 40) % 8 == 0 ? max_len : std::min(max_len, 8192u);
      c.data_length = static_cast<uint32_t>((r % (cap / 512 + 1)) * 512);
      if (r % 17 == 0) c.data_length = 1 + r % 4000;
      const bool write = (r >> 32) & 1;
      c.direction = c.data_length == 0 ? DataDirection::kNone
                                       : (write ? DataDirection::kWrite : DataDirection::kRead);
      c.cdb.fill(0);
      c.cdb[0] = write ? kOpWrite : kOpRead;
      std::memcpy(c.cdb.data() + 2, &s.seed, 8);
      c.cdb_len = 10;
      c.expected_length = c.data_length;
      if (!device->alloc_buffer_on(c, s.queue)) {
        // Data area momentarily fragmented: count it and try another size.
        totals.retries.fetch_add(1);
        totals.issued.fetch_sub(1);
        continue;
      }
      if (write) fill_pattern(DataBuffer(c.buffer), s.seed);
      device->submit(c);
      return true;
    }
  }

  void done(Slot& s) {
    core::TargetCommand& c = s.cmd;
    if (c.status != status::kGood) {
      totals.error("status " + std::to_string(c.status) + " sense key " +
                   std::to_string(c.sense[2] & 0xf) + " asc " + std::to_string(c.sense[12]));
    } else if (c.transferred != c.data_length) {
      totals.error("transferred " + std::to_string(c.transferred) + " of " +
                   std::to_string(c.data_length));
    } else if (c.direction == DataDirection::kRead &&
               !check_pattern(DataBuffer(c.buffer), s.seed)) {
      totals.error("read data mismatch, seed " + std::to_string(s.seed));
    } else {
      totals.bytes.fetch_add(c.data_length, std::memory_order_relaxed);
    }
    device->release_buffer(c);
    const uint64_t finished = totals.completed.fetch_add(1) + 1;
    if (!issue(s) && (finished >= n || totals.errors.load() != 0)) {
      std::lock_guard lock(totals.mu);
      totals.cv.notify_all();
    }
  }
};

void run_config(uint32_t nr_queues, uint32_t depth, uint32_t qd, uint32_t max_len, uint64_t n,
                uint64_t seed_base) {
  SCOPED_TRACE("queues=" + std::to_string(nr_queues) + " depth=" + std::to_string(depth) +
               " qd/queue=" + std::to_string(qd) + " max_len=" + std::to_string(max_len));
  transport::RingDeviceConfig cfg;
  cfg.name = "stress";
  cfg.nr_queues = nr_queues;
  cfg.queue_depth = depth;
  cfg.max_io_bytes = max_len;
  cfg.data_size = uint64_t{nr_queues} * qd * max_len + uint64_t{nr_queues} * 64 * 4096;
  Producer p(cfg);
  pid_t child = fork_handler(p.options());
  ASSERT_TRUE(p.device->wait_ready(10000));

  Run run{p.device.get(), max_len, n, seed_base, {}};
  std::vector<std::unique_ptr<Slot>> slots;
  for (uint32_t q = 0; q < nr_queues; ++q)
    for (uint32_t i = 0; i < qd; ++i) {
      auto s = std::make_unique<Slot>();
      s->queue = q;
      Slot* raw = s.get();
      s->cmd.done = [&run, raw](core::TargetCommand&) { run.done(*raw); };
      slots.push_back(std::move(s));
    }
  uint64_t started = 0;
  for (auto& s : slots) started += run.issue(*s);
  {
    // Bounded: progress is checked every 20 s.
    std::unique_lock lock(run.totals.mu);
    uint64_t last = 0;
    while (run.totals.completed.load() < std::min(n, run.totals.issued.load()) &&
           run.totals.errors.load() == 0) {
      run.totals.cv.wait_for(lock, std::chrono::seconds(20));
      const uint64_t now = run.totals.completed.load();
      if (now == last) {
        run.totals.error("no progress for 20 s at " + std::to_string(now) + " commands");
        break;
      }
      last = now;
    }
  }
  const bool stuck = run.totals.completed.load() < std::min(n, run.totals.issued.load());
  EXPECT_EQ(run.totals.errors.load(), 0u) << run.totals.first_error;
  EXPECT_EQ(run.totals.completed.load(), n);
  p.listener.reset();
  p.device.reset();  // fails whatever is left in flight, so no callback outlives `run`
  EXPECT_EQ(wait_exit(child), 0);
  std::printf(
      "stress: %u queues, depth %u, qd/queue %u: %llu commands, %llu MiB verified, %llu "
      "allocation retries%s\n",
      nr_queues, depth, qd, static_cast<unsigned long long>(run.totals.completed.load()),
      static_cast<unsigned long long>(run.totals.bytes.load() >> 20),
      static_cast<unsigned long long>(run.totals.retries.load()), stuck ? " (STUCK)" : "");
}

TEST(RingStress, RandomTrafficVerifiedEndToEnd) {
  const uint64_t total = stress_commands();
  std::mt19937 rng(static_cast<unsigned>(total));
  struct Config {
    uint32_t queues, depth, qd, max_len;
  };
  std::vector<Config> all = {
      {1, 1, 1, 4096}, {1, 128, 128, 65536}, {2, 32, 17, 131072}, {4, 256, 200, 16384}};
  for (int i = 0; i < 2; ++i) {  // and two random ones
    uint32_t depth = 1u << (rng() % 9);
    all.push_back({static_cast<uint32_t>(1 + rng() % 4), depth,
                   static_cast<uint32_t>(1 + rng() % depth), 4096u << (rng() % 5)});
  }
  for (size_t i = 0; i < all.size(); ++i) {
    const Config& c = all[i];
    run_config(c.queues, c.depth, c.qd, c.max_len, total / all.size() + 1, i << 40);
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace scstu::ring_test
