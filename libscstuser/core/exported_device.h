// exported_device.h - a device as the target core keeps it once registered:
// the Device, its statistics and its count of outstanding commands (for the
// per-device flow-control limit). Shared by every group that maps it and held
// by every command routed to it, so it outlives its last command.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/device.h"
#include "core/statistics.h"

namespace scstu::core {

class ExportedDevice {
 public:
  explicit ExportedDevice(std::shared_ptr<Device> device)
      : device_(std::move(device)), name_(device_->info().name) {}

  Device& device() const { return *device_; }
  const std::shared_ptr<Device>& shared_device() const { return device_; }
  const std::string& name() const { return name_; }
  StatisticsCounters& counters() { return counters_; }
  DeviceStatistics statistics() const { return counters_.snapshot(name_); }
  std::atomic<uint32_t>& outstanding() { return outstanding_; }

 private:
  std::shared_ptr<Device> device_;
  std::string name_;
  StatisticsCounters counters_;
  std::atomic<uint32_t> outstanding_{0};
};

}  // namespace scstu::core
