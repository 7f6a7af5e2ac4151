// core_test_util.h - CDB builders and a synchronous "initiator" for the
// target core tests.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/lun.h"
#include "core/target_core.h"

namespace scstu::core::test {

inline std::vector<uint8_t> cdb(std::initializer_list<uint8_t> bytes) { return bytes; }

inline std::vector<uint8_t> read10(uint32_t lba, uint16_t blocks) {
  return {0x28,         0, uint8_t(lba >> 24),   uint8_t(lba >> 16), uint8_t(lba >> 8),
          uint8_t(lba), 0, uint8_t(blocks >> 8), uint8_t(blocks),    0};
}
inline std::vector<uint8_t> write10(uint32_t lba, uint16_t blocks) {
  auto c = read10(lba, blocks);
  c[0] = 0x2A;
  return c;
}
inline std::vector<uint8_t> test_unit_ready() { return {0, 0, 0, 0, 0, 0}; }
inline std::vector<uint8_t> inquiry(bool evpd, uint8_t page, uint16_t alloc) {
  return {0x12, uint8_t(evpd ? 1 : 0), page, uint8_t(alloc >> 8), uint8_t(alloc), 0};
}
inline std::vector<uint8_t> request_sense(bool desc, uint8_t alloc) {
  return {0x03, uint8_t(desc ? 1 : 0), 0, 0, alloc, 0};
}
inline std::vector<uint8_t> report_luns(uint8_t select, uint32_t alloc) {
  return {0xA0,
          0,
          select,
          0,
          0,
          0,
          uint8_t(alloc >> 24),
          uint8_t(alloc >> 16),
          uint8_t(alloc >> 8),
          uint8_t(alloc),
          0,
          0};
}

// One command as a transport would hold it, with what done() delivered.
struct Exchange {
  TargetCommand cmd;
  int done_calls = 0;
  std::vector<uint8_t> data_in;  // the `transferred` bytes of the buffer at done()

  Exchange(Session* s, uint64_t lun, const std::vector<uint8_t>& c, uint32_t expected,
           DataDirection dir) {
    cmd.session = s;
    cmd.lun = encode_lun(lun);
    std::memcpy(cmd.cdb.data(), c.data(), c.size());
    cmd.cdb_len = static_cast<uint16_t>(c.size());
    cmd.expected_length = expected;
    cmd.expected_direction = dir;
    cmd.done = [this](TargetCommand& t) {
      ++done_calls;
      data_in.clear();
      size_t left = t.transferred;
      for (const iovec& v : t.buffer) {
        const size_t n = std::min(left, v.iov_len);
        auto* p = static_cast<const uint8_t*>(v.iov_base);
        data_in.insert(data_in.end(), p, p + n);
        left -= n;
      }
    };
  }
  Exchange(const Exchange&) = delete;

  // prepare + (Data-Out fill) + execute; returns prepare()'s result.
  bool run(TargetCore& core, uint8_t fill = 0) {
    const bool routed = core.prepare(cmd);
    if (routed) {
      if (cmd.direction == DataDirection::kWrite) {
        for (const iovec& v : cmd.buffer) std::memset(v.iov_base, fill, v.iov_len);
      }
      core.execute(cmd);
    }
    return routed;
  }
  // prepare + Data-Out from `out` (the rest of the buffer zero) + execute.
  bool run(TargetCore& core, const std::vector<uint8_t>& out) {
    const bool routed = core.prepare(cmd);
    if (routed) {
      size_t at = 0;
      for (const iovec& v : cmd.buffer) {
        const size_t n = std::min(v.iov_len, out.size() - std::min(out.size(), at));
        std::memset(v.iov_base, 0, v.iov_len);
        if (n) std::memcpy(v.iov_base, out.data() + at, n);
        at += n;
      }
      core.execute(cmd);
    }
    return routed;
  }
  uint8_t sense_key() const { return cmd.sense_len > 2 ? cmd.sense[2] & 0x0F : 0xFF; }
  uint8_t asc() const { return cmd.sense_len > 12 ? cmd.sense[12] : 0xFF; }
  uint8_t ascq() const { return cmd.sense_len > 13 ? cmd.sense[13] : 0xFF; }
};

// The setup of tests over one target: a TargetCore, devices registered and
// mapped into the Default group, one session of an initiator. Declare it
// after the devices (it goes first: the session is closed, then the core).
struct OneTarget {
  explicit OneTarget(const char* target) : target_name(target) {
    EXPECT_TRUE(core->access().add_target(target));
  }
  ~OneTarget() {
    if (session) core->close_session(*session);
  }
  // Registers `device`; maps it as `lun` of the Default group if lun >= 0.
  void add(std::shared_ptr<Device> device, int lun = -1, bool read_only = false) {
    const std::string name = device->info().name;
    ASSERT_TRUE(core->access().add_device(std::move(device)));
    if (lun >= 0) {
      ASSERT_TRUE(core->access().add_lun("Default", uint64_t(lun), name, read_only));
    }
  }
  void open(const char* initiator) {
    SessionParams p;
    p.target_name = target_name;
    p.initiator_name = initiator;
    session = core->open_session(p);
    ASSERT_TRUE(session);
  }

  std::string target_name;
  std::unique_ptr<TargetCore> core = std::make_unique<TargetCore>();
  std::shared_ptr<Session> session;
};

}  // namespace scstu::core::test
