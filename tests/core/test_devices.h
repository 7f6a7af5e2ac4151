// test_devices.h - small core::Device and LowLevelHandler doubles for the
// core tests: they record what they were asked and complete on demand.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "core/device.h"

namespace scstu::core::test {

// A Device that allocates plain heap buffers, records calls, and completes
// each submitted command immediately (auto_complete) or when told.
class RecordingDevice : public Device {
 public:
  explicit RecordingDevice(std::string name, uint8_t type = 0, uint32_t block_size = 512) {
    info_.name = std::move(name);
    info_.device_type = type;
    info_.block_size = block_size;
  }
  const DeviceInfo& info() const override { return info_; }
  bool alloc_buffer(TargetCommand& cmd) override {
    if (fail_alloc) return false;
    auto* mem = new uint8_t[cmd.data_length ? cmd.data_length : 1]();
    cmd.buffer.assign(1, iovec{mem, cmd.data_length});
    allocs.fetch_add(1);
    return true;
  }
  void release_buffer(TargetCommand& cmd) override {
    for (auto& v : cmd.buffer) delete[] static_cast<uint8_t*>(v.iov_base);
    cmd.buffer.clear();
    releases.fetch_add(1);
  }
  void submit(TargetCommand& cmd) override {
    submits.fetch_add(1);
    if (auto_complete) {
      cmd.status = reply_status;
      cmd.transferred = reply_transferred == UINT32_MAX ? cmd.data_length : reply_transferred;
      cmd.done(cmd);
    } else {
      std::lock_guard lock(mutex);
      pending.push_back(&cmd);
    }
  }
  void task_management(TargetTmf& tmf) override {
    {
      std::lock_guard lock(mutex);
      tmfs.push_back({tmf.function, tmf.lun});
    }
    if (tmf.done) tmf.done(tmf_response);
  }
  void session_attached(const SessionInfo& s) override {
    std::lock_guard lock(mutex);
    attached.push_back(s);
  }
  void session_detached(const SessionInfo& s) override {
    std::lock_guard lock(mutex);
    detached.push_back(s);
  }
  void complete_pending(uint8_t status = 0) {
    std::vector<TargetCommand*> p;
    {
      std::lock_guard lock(mutex);
      p.swap(pending);
    }
    for (auto* c : p) {
      c->status = status;
      c->transferred = c->data_length;
      c->done(*c);
    }
  }

  DeviceInfo info_;
  bool auto_complete = true;
  bool fail_alloc = false;
  uint8_t reply_status = 0;
  uint32_t reply_transferred = UINT32_MAX;  // UINT32_MAX: data_length
  scstu_tmf_response tmf_response = SCSTU_TMF_COMPLETE;
  std::atomic<int> allocs{0}, releases{0}, submits{0};
  std::mutex mutex;
  std::vector<TargetCommand*> pending;
  std::vector<std::pair<scstu_tmf_function, uint64_t>> tmfs;
  std::vector<SessionInfo> attached, detached;
};

}  // namespace scstu::core::test
