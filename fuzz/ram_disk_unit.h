// ram_disk_unit.h - what the fuzz targets run a scsi::LogicalUnit over: a
// block device in memory, and a completion sink that checks what every
// completion must hold (sense that fits, CHECK CONDITION sense that parses).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <thread>
#include <vector>

#include "handler/block_device.h"
#include "handler/command.h"
#include "scsi/sense.h"

namespace scstu::fuzz {

// 512-byte blocks, thin (UNMAP zeroes); an access beyond the end fails EIO.
class RamDisk final : public SimpleBlockDevice {
 public:
  explicit RamDisk(uint64_t blocks) : data_(blocks * 512) {}
  BlockGeometry geometry() const override { return {512, data_.size() / 512}; }
  BlockCapabilities capabilities() const override {
    BlockCapabilities c;
    c.unmap = true;
    return c;
  }
  int read(uint64_t off, std::span<const iovec> iov) override {
    for (const iovec& v : iov) {
      if (off + v.iov_len > data_.size()) return -EIO;
      std::memcpy(v.iov_base, &data_[off], v.iov_len);
      off += v.iov_len;
    }
    return 0;
  }
  int write(uint64_t off, std::span<const iovec> iov, bool) override {
    for (const iovec& v : iov) {
      if (off + v.iov_len > data_.size()) return -EIO;
      std::memcpy(&data_[off], v.iov_base, v.iov_len);
      off += v.iov_len;
    }
    return 0;
  }
  int unmap(uint64_t off, uint64_t len) override {
    if (off + len > data_.size()) return -EIO;
    std::memset(&data_[off], 0, len);
    return 0;
  }

 private:
  std::vector<uint8_t> data_;
};

// Counts completions (from any thread); aborts on sense longer than the
// sense buffer or CHECK CONDITION sense that does not parse.
class CheckingSink : public CommandSink {
 public:
  // After one command: aborts unless it completed exactly once. The RAM disk
  // is synchronous, but SANITIZE without IMMED (and FORMAT UNIT) completes
  // from the unit's background thread when the erase ends: waited for,
  // bounded (a command that never completes is a bug).
  void expect_one_completion() const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (completions.load(std::memory_order_acquire) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (completions.load(std::memory_order_acquire) != 1) std::abort();
  }

  void complete(uint32_t, const CommandReply& reply) override {
    if (reply.sense.size() > scsi::kSenseBufferSize) std::abort();
    if (reply.status == status::kCheckCondition && !scsi::parse_sense(reply.sense).valid) {
      std::abort();
    }
    completions.fetch_add(1, std::memory_order_release);
  }
  std::atomic<int> completions{0};
};

}  // namespace scstu::fuzz
