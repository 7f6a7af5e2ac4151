#include "core/statistics.h"

#include <bit>
#include <cstdio>

namespace scstu::core {

CommandClass command_class(DataDirection direction) {
  switch (direction) {
    case DataDirection::kRead:
      return CommandClass::kRead;
    case DataDirection::kWrite:
      return CommandClass::kWrite;
    case DataDirection::kBidi:
      return CommandClass::kBidi;
    case DataDirection::kNone:
      break;
  }
  return CommandClass::kNonData;
}

const char* command_class_name(CommandClass c) {
  switch (c) {
    case CommandClass::kRead:
      return "read";
    case CommandClass::kWrite:
      return "write";
    case CommandClass::kBidi:
      return "bidi";
    case CommandClass::kNonData:
      return "non-data";
  }
  return "?";
}

size_t latency_bucket(uint64_t ns) {
  if (ns == 0) return 0;
  const size_t b = static_cast<size_t>(std::bit_width(ns)) - 1;  // floor(log2(ns))
  return b < kLatencyBuckets ? b : kLatencyBuckets - 1;
}

void StatisticsCounters::record(CommandClass c, uint64_t bytes, uint8_t scsi_status,
                                uint64_t latency_ns) {
  PerClass& pc = classes_[static_cast<size_t>(c)];
  pc.commands.fetch_add(1, std::memory_order_relaxed);
  if (bytes) pc.bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (scsi_status != status::kGood && scsi_status != status::kConditionMet) {
    pc.errors.fetch_add(1, std::memory_order_relaxed);
  }
  pc.latency_total_ns.fetch_add(latency_ns, std::memory_order_relaxed);
  pc.latency[latency_bucket(latency_ns)].fetch_add(1, std::memory_order_relaxed);
}

DeviceStatistics StatisticsCounters::snapshot(std::string device_name) const {
  DeviceStatistics s;
  s.device = std::move(device_name);
  for (size_t i = 0; i < kCommandClasses; ++i) {
    const PerClass& pc = classes_[i];
    ClassStatistics& out = s.classes[i];
    out.commands = pc.commands.load(std::memory_order_relaxed);
    out.bytes = pc.bytes.load(std::memory_order_relaxed);
    out.errors = pc.errors.load(std::memory_order_relaxed);
    out.latency_total_ns = pc.latency_total_ns.load(std::memory_order_relaxed);
    for (size_t b = 0; b < kLatencyBuckets; ++b) {
      out.latency[b] = pc.latency[b].load(std::memory_order_relaxed);
    }
  }
  s.task_set_full = task_set_full_.load(std::memory_order_relaxed);
  s.busy = busy_.load(std::memory_order_relaxed);
  return s;
}

void StatisticsCounters::reset() {
  for (PerClass& pc : classes_) {
    pc.commands.store(0, std::memory_order_relaxed);
    pc.bytes.store(0, std::memory_order_relaxed);
    pc.errors.store(0, std::memory_order_relaxed);
    pc.latency_total_ns.store(0, std::memory_order_relaxed);
    for (auto& b : pc.latency) b.store(0, std::memory_order_relaxed);
  }
  task_set_full_.store(0, std::memory_order_relaxed);
  busy_.store(0, std::memory_order_relaxed);
}

uint64_t ClassStatistics::latency_percentile_ns(double fraction) const {
  uint64_t total = 0;
  for (uint64_t n : latency) total += n;
  if (total == 0) return 0;
  fraction = fraction < 0 ? 0 : (fraction > 1 ? 1 : fraction);
  const auto rank = static_cast<uint64_t>(fraction * static_cast<double>(total - 1)) + 1;
  uint64_t seen = 0;
  for (size_t b = 0; b < kLatencyBuckets; ++b) {
    seen += latency[b];
    if (seen >= rank) return b + 1 < kLatencyBuckets ? (uint64_t{2} << b) - 1 : UINT64_MAX;
  }
  return UINT64_MAX;
}

std::string format_statistics(const DeviceStatistics& s) {
  char line[256];
  std::snprintf(
      line, sizeof line,
      "device %s: %llu commands, %llu errors, %llu bytes read, %llu bytes written, "
      "%llu task set full, %llu busy\n",
      s.device.c_str(), static_cast<unsigned long long>(s.commands()),
      static_cast<unsigned long long>(s.errors()), static_cast<unsigned long long>(s.bytes_read()),
      static_cast<unsigned long long>(s.bytes_written()),
      static_cast<unsigned long long>(s.task_set_full), static_cast<unsigned long long>(s.busy));
  std::string out = line;
  for (size_t i = 0; i < kCommandClasses; ++i) {
    const ClassStatistics& c = s.classes[i];
    if (c.commands == 0) continue;
    std::snprintf(line, sizeof line,
                  "  %-8s %llu commands, %llu errors, mean %llu ns, p50 <= %llu ns, "
                  "p99 <= %llu ns\n",
                  command_class_name(static_cast<CommandClass>(i)),
                  static_cast<unsigned long long>(c.commands),
                  static_cast<unsigned long long>(c.errors),
                  static_cast<unsigned long long>(c.mean_latency_ns()),
                  static_cast<unsigned long long>(c.latency_percentile_ns(0.5)),
                  static_cast<unsigned long long>(c.latency_percentile_ns(0.99)));
    out += line;
  }
  return out;
}

uint64_t DeviceStatistics::commands() const {
  uint64_t n = 0;
  for (const auto& c : classes) n += c.commands;
  return n;
}

uint64_t DeviceStatistics::errors() const {
  uint64_t n = 0;
  for (const auto& c : classes) n += c.errors;
  return n;
}

}  // namespace scstu::core
