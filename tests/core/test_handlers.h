// test_handlers.h - tiny LowLevelHandlers for LocalDevice tests: one that
// answers inline, and one that completes from worker threads.
#pragma once

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "handler/command.h"

namespace scstu::core::test {

// READ: writes `read_fill_bytes` bytes of `read_pattern` and reports the
// whole buffer as transferred (a careless handler; with report_filled only
// what it wrote); WRITE: keeps the data;
// anything else GOOD. Records what it saw.
class InlineHandler : public LowLevelHandler {
 public:
  void command(CommandHandle h) override {
    const CommandRequest& r = h.request();
    {
      std::lock_guard lock(mutex);
      seen.push_back(Seen{r.cdb[0], r.lun, r.direction, r.data_length, r.read_only, r.tag,
                          r.session ? r.session->initiator_name : "",
                          r.data.segments().empty() ? nullptr : r.data.segments()[0].iov_base});
    }
    if (fail_with_sense) {
      static constexpr uint8_t kSense[18] = {0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0};
      std::move(h).complete_check_condition(kSense);
      return;
    }
    if (r.direction == DataDirection::kRead) {
      std::vector<uint8_t> fill(std::min<size_t>(read_fill_bytes, r.data_length), read_pattern);
      r.data.copy_from(0, fill);
      std::move(h).complete_good(report_filled ? static_cast<uint32_t>(fill.size())
                                               : r.data_length);
    } else if (r.direction == DataDirection::kWrite) {
      std::lock_guard lock(mutex);
      written.resize(r.data_length);
      r.data.copy_to(0, written);
      std::move(h).complete_good(r.data_length);
    } else {
      std::move(h).complete_good(0);
    }
  }
  scstu_tmf_response task_management(const TaskManagementRequest& req) override {
    std::lock_guard lock(mutex);
    tmfs.push_back(req);
    return SCSTU_TMF_SUCCEEDED;
  }
  void session_attached(const SessionInfo& s) override {
    std::lock_guard lock(mutex);
    attached.push_back(s.initiator_name);
  }
  void session_detached(const SessionInfo& s) override {
    std::lock_guard lock(mutex);
    detached.push_back(s.initiator_name);
  }

  struct Seen {
    uint8_t opcode;
    uint64_t lun;
    DataDirection direction;
    uint32_t data_length;
    bool read_only;
    uint32_t tag;
    std::string initiator;
    void* buffer;
  };
  size_t read_fill_bytes = SIZE_MAX;
  uint8_t read_pattern = 0xAB;
  bool report_filled = false;
  bool fail_with_sense = false;
  std::mutex mutex;
  std::vector<Seen> seen;
  std::vector<uint8_t> written;
  std::vector<TaskManagementRequest> tmfs;
  std::vector<std::string> attached, detached;
};

// Queues every command and completes it from `threads` workers (reads get
// the byte pattern 0xC3 in every byte). Or holds them until release_all().
class ThreadedHandler : public LowLevelHandler {
 public:
  explicit ThreadedHandler(int threads, bool hold = false) : hold_(hold) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
  }
  ~ThreadedHandler() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      hold_ = false;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  void command(CommandHandle h) override {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(h));
    }
    cv_.notify_one();
  }
  void release_all() {
    {
      std::lock_guard lock(mutex_);
      hold_ = false;
    }
    cv_.notify_all();
  }
  size_t queued() {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

 private:
  void run() {
    for (;;) {
      CommandHandle h;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || (!hold_ && !queue_.empty()); });
        if (queue_.empty()) return;
        h = std::move(queue_.front());
        queue_.pop_front();
      }
      const CommandRequest& r = h.request();
      if (r.direction == DataDirection::kRead) {
        for (const iovec& v : r.data.segments()) std::memset(v.iov_base, 0xC3, v.iov_len);
        std::move(h).complete_good(r.data_length);
      } else {
        std::move(h).complete_good(r.direction == DataDirection::kWrite ? r.data_length : 0);
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<CommandHandle> queue_;
  bool stop_ = false;
  bool hold_;
  std::vector<std::thread> workers_;
};

}  // namespace scstu::core::test
