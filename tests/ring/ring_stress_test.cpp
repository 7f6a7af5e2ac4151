// Multi-process stress: a forked handler process, SCSTU_STRESS_COMMANDS
// commands (default 200000; the "stress" ctest entry runs 10 million) with
// random sizes, directions, queue counts and queue depths, every byte of
// data verified end to end (pattern derived from a per-command seed carried
// in the CDB: the handler checks writes, the producer checks reads).
#include <cstdlib>

#include "ring_test_support.h"

namespace scstu::ring_test {
namespace {

uint64_t stress_commands() {
  const char* env = std::getenv("SCSTU_STRESS_COMMANDS");
  return env ? std::strtoull(env, nullptr, 10) : 200000;
}

// One submitting thread (so one queue) and its command slots. Completions
// (on the device's event thread) hand slots back through the mailbox.
struct Submitter {
  struct Slot {
    core::TargetCommand cmd;
    uint64_t seed = 0;
    Submitter* owner = nullptr;
  };
  std::vector<std::unique_ptr<Slot>> slots;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Slot*> mailbox;
};

struct Totals {
  std::atomic<uint64_t> issued{0}, completed{0}, bytes{0}, retries{0}, errors{0};
  std::mutex mu;
  std::string first_error;
  void error(const std::string& e) {
    if (errors.fetch_add(1) == 0) {
      std::lock_guard lock(mu);
      first_error = e;
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

  Totals totals;
  std::vector<std::unique_ptr<Submitter>> subs;
  std::vector<Submitter*> all_subs;
  for (uint32_t s = 0; s < nr_queues; ++s) {
    auto sub = std::make_unique<Submitter>();
    for (uint32_t i = 0; i < qd; ++i) {
      auto slot = std::make_unique<Submitter::Slot>();
      slot->owner = sub.get();
      Submitter::Slot* raw = slot.get();
      slot->cmd.done = [raw, &totals, &p, &all_subs, n](core::TargetCommand& c) {
        const bool is_read = c.direction == DataDirection::kRead;
        if (c.status == status::kTaskSetFull) {
          totals.retries.fetch_add(1);
        } else if (c.status != status::kGood) {
          totals.error("status " + std::to_string(c.status) + " sense key " +
                       std::to_string(c.sense[2] & 0xf) + " asc " + std::to_string(c.sense[12]));
        } else if (c.transferred != c.data_length) {
          totals.error("transferred " + std::to_string(c.transferred) + " of " +
                       std::to_string(c.data_length));
        } else if (is_read && !check_pattern(DataBuffer(c.buffer), raw->seed)) {
          totals.error("read data mismatch, seed " + std::to_string(raw->seed));
        } else {
          totals.completed.fetch_add(1, std::memory_order_relaxed);
          totals.bytes.fetch_add(c.data_length, std::memory_order_relaxed);
        }
        p.device->release_buffer(c);
        Submitter* o = raw->owner;
        {
          std::lock_guard lock(o->mu);
          o->mailbox.push_back(raw);
          o->cv.notify_one();
        }
        if (totals.completed.load() + totals.errors.load() >= n)
          for (Submitter* s : all_subs) {
            std::lock_guard lock(s->mu);
            s->cv.notify_one();
          }
      };
      sub->mailbox.push_back(slot.get());
      sub->slots.push_back(std::move(slot));
    }
    all_subs.push_back(sub.get());
    subs.push_back(std::move(sub));
  }

  std::vector<std::thread> threads;
  for (auto& sp : subs) {
    threads.emplace_back([&, sub = sp.get()] {
      std::vector<Submitter::Slot*> ready;
      for (;;) {
        {
          std::unique_lock lock(sub->mu);
          if (!sub->cv.wait_for(lock, std::chrono::seconds(20),
                                [&] {
                                  return !sub->mailbox.empty() ||
                                         totals.completed.load() + totals.errors.load() >= n;
                                })) {
            totals.error("no completion within 20 s");
            return;
          }
          ready.swap(sub->mailbox);
        }
        for (Submitter::Slot* s : ready) {
          if (totals.errors.load() != 0) return;
          uint64_t k = totals.issued.fetch_add(1);
          if (k >= n) {
            // Wait for the rest in flight to finish (counted by completed).
            continue;
          }
          core::TargetCommand& c = s->cmd;
          s->seed = mix(seed_base + k);
          const uint64_t r = mix(s->seed);
          // Mostly small (like real I/O), one in eight up to max_len.
          const uint32_t cap = (r >> 40) % 8 == 0 ? max_len : std::min(max_len, 8192u);
          c.data_length = static_cast<uint32_t>((r % (cap / 512 + 1)) * 512);
          if (r % 17 == 0) c.data_length = 1 + r % 4000;  // odd sizes too
          const bool write = (r >> 32) & 1;
          c.direction = c.data_length == 0
                            ? DataDirection::kNone
                            : (write ? DataDirection::kWrite : DataDirection::kRead);
          c.cdb.fill(0);
          c.cdb[0] = write ? kOpWrite : kOpRead;
          std::memcpy(c.cdb.data() + 2, &s->seed, 8);
          c.cdb_len = 10;
          c.expected_length = c.data_length;
          if (!p.device->alloc_buffer(c)) {
            totals.retries.fetch_add(1);
            totals.issued.fetch_sub(1);
            std::lock_guard lock(sub->mu);
            sub->mailbox.push_back(s);
            continue;
          }
          if (write) fill_pattern(DataBuffer(c.buffer), s->seed);
          p.device->submit(c);
        }
        ready.clear();
        if (totals.completed.load() + totals.errors.load() >= n) return;
        if (totals.issued.load() >= n) {
          // Everything issued: wait for the stragglers without spinning.
          bool all_home;
          {
            std::lock_guard lock(sub->mu);
            all_home = sub->mailbox.size() == sub->slots.size();
          }
          if (all_home && totals.completed.load() + totals.errors.load() + totals.retries.load() >= n)
            return;
        }
      }
    });
  }
  // Bounded: every thread gives up after 20 s without a completion.
  for (auto& t : threads) t.join();
  EXPECT_EQ(totals.errors.load(), 0u) << totals.first_error;
  EXPECT_GE(totals.completed.load() + totals.retries.load(), n);
  p.listener.reset();
  p.device.reset();
  EXPECT_EQ(wait_exit(child), 0);
  std::printf("stress: %u queues, depth %u, qd/queue %u: %llu commands, %llu MiB verified, %llu "
              "retries\n",
              nr_queues, depth, qd, static_cast<unsigned long long>(totals.completed.load()),
              static_cast<unsigned long long>(totals.bytes.load() >> 20),
              static_cast<unsigned long long>(totals.retries.load()));
}

TEST(RingStress, RandomTrafficVerifiedEndToEnd) {
  const uint64_t total = stress_commands();
  std::mt19937 rng(static_cast<unsigned>(total));
  struct Config {
    uint32_t queues, depth, qd, max_len;
  } configs[] = {{1, 1, 1, 4096}, {1, 128, 128, 65536}, {2, 32, 17, 131072}, {4, 256, 200, 16384}};
  // Plus two random ones.
  std::vector<Config> all(std::begin(configs), std::end(configs));
  for (int i = 0; i < 2; ++i) {
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
