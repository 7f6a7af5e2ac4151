// statistics.h - per-device command statistics: counts, bytes, errors and a
// latency histogram per command class (the SCST README's MEASURE_LATENCY,
// kept always on because it is cheap: relaxed atomics, no lock).
//
// Latency is measured by the target core from execute() (the command handed
// to the device) to the device's completion: the device's service time, not
// the transport's.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "handler/command.h"

namespace scstu::core {

enum class CommandClass : uint8_t {
  kRead,     // data from the device (READ, INQUIRY, ...)
  kWrite,    // data to the device (WRITE, MODE SELECT, ...)
  kBidi,     // both (XDWRITEREAD, COMPARE AND WRITE is kWrite)
  kNonData,  // no data phase (TEST UNIT READY, SYNCHRONIZE CACHE, ...)
};
inline constexpr size_t kCommandClasses = 4;
CommandClass command_class(DataDirection direction);
const char* command_class_name(CommandClass c);

// Bucket i counts latencies in [2^i, 2^(i+1)) ns; bucket 0 also holds 0 ns,
// the last bucket everything from 2^(kLatencyBuckets-1) ns (~4.6 min) up.
inline constexpr size_t kLatencyBuckets = 39;
size_t latency_bucket(uint64_t ns);

struct ClassStatistics {
  uint64_t commands = 0;
  uint64_t bytes = 0;   // bytes transferred (as the device reported them)
  uint64_t errors = 0;  // completions with a status other than GOOD / CONDITION MET
  uint64_t latency_total_ns = 0;
  std::array<uint64_t, kLatencyBuckets> latency{};

  uint64_t mean_latency_ns() const { return commands ? latency_total_ns / commands : 0; }
  // An upper bound of the latency that `fraction` (0..1) of the commands did
  // not exceed: the top of the histogram bucket holding that rank; 0 if none.
  uint64_t latency_percentile_ns(double fraction) const;
};

// A snapshot, consistent per counter (not across counters).
struct DeviceStatistics {
  std::string device;
  std::array<ClassStatistics, kCommandClasses> classes{};
  uint64_t task_set_full = 0;  // commands refused by flow control
  uint64_t busy = 0;

  const ClassStatistics& of(CommandClass c) const { return classes[static_cast<size_t>(c)]; }
  uint64_t commands() const;
  uint64_t bytes_read() const {
    return of(CommandClass::kRead).bytes + of(CommandClass::kBidi).bytes;
  }
  uint64_t bytes_written() const { return of(CommandClass::kWrite).bytes; }
  uint64_t errors() const;
};

// Human-readable lines for tools and logs (like the seed's
// /proc/scsi_tgt/latency): totals, then one line per command class.
std::string format_statistics(const DeviceStatistics& s);

class StatisticsCounters {
 public:
  void record(CommandClass c, uint64_t bytes, uint8_t scsi_status, uint64_t latency_ns);
  void record_task_set_full() { task_set_full_.fetch_add(1, std::memory_order_relaxed); }
  void record_busy() { busy_.fetch_add(1, std::memory_order_relaxed); }
  DeviceStatistics snapshot(std::string device_name) const;
  // "echo 0 > latency": start measuring afresh.
  void reset();

 private:
  struct alignas(64) PerClass {
    std::atomic<uint64_t> commands{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> latency_total_ns{0};
    std::array<std::atomic<uint64_t>, kLatencyBuckets> latency{};
  };
  std::array<PerClass, kCommandClasses> classes_;
  std::atomic<uint64_t> task_set_full_{0};
  std::atomic<uint64_t> busy_{0};
};

}  // namespace scstu::core
