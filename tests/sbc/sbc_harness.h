// sbc_harness.h - an in-process initiator for one scsi::LogicalUnit over a
// RAM disk: send a CDB (with data-out or a data-in length), get status,
// sense and data back. The RAM disk can hold requests until pump() runs
// them, to test ordering and atomicity.
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "handler/block_device.h"
#include "handler/command.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

namespace scstu::testing {

using Bytes = std::vector<uint8_t>;

class RamDisk : public BlockDevice {
 public:
  RamDisk(uint64_t blocks, uint32_t block_size = 512, BlockCapabilities caps = thin_caps())
      : geometry_{block_size, blocks}, caps_(caps), data_(blocks * block_size, 0) {}

  static BlockCapabilities thin_caps() {
    BlockCapabilities c;
    c.unmap = true;
    c.unmap_zeroes = true;
    return c;
  }

  BlockGeometry geometry() const override { return geometry_; }
  BlockCapabilities capabilities() const override { return caps_; }
  void submit(BlockRequest& req) override {
    {
      std::lock_guard l(mutex_);
      ++submitted[req.op];
      if (hold) {
        pending_.push_back(&req);
        return;
      }
    }
    execute(req);
  }
  // Run the oldest held request; false if none.
  bool pump() {
    BlockRequest* req;
    {
      std::lock_guard l(mutex_);
      if (pending_.empty()) return false;
      req = pending_.front();
      pending_.pop_front();
    }
    execute(*req);
    return true;
  }
  size_t held() {
    std::lock_guard l(mutex_);
    return pending_.size();
  }

  uint8_t* block(uint64_t lba) { return data_.data() + lba * geometry_.block_size; }
  void fill(uint64_t lba, uint64_t blocks, uint8_t v) {
    std::memset(block(lba), v, blocks * geometry_.block_size);
  }
  bool all(uint64_t lba, uint64_t blocks, uint8_t v) {
    for (size_t i = 0; i < blocks * geometry_.block_size; ++i) {
      if (block(lba)[i] != v) return false;
    }
    return true;
  }

  bool hold = false;
  int fail_with = 0;          // every request fails with this errno when set
  bool refuse_unmap = false;  // kUnmap fails EOPNOTSUPP despite the capability
  std::map<BlockOp, int> submitted;

 private:
  void execute(BlockRequest& req) {
    if (fail_with != 0) return req.complete(fail_with);
    const size_t bs = geometry_.block_size;
    if (req.op != BlockOp::kFlush && (req.lba + req.blocks) * bs > data_.size()) {
      return req.complete(-EIO);
    }
    uint8_t* p = data_.data() + req.lba * bs;
    switch (req.op) {
      case BlockOp::kRead:
        for (const iovec& v : req.iov) {
          std::memcpy(v.iov_base, p, v.iov_len);
          p += v.iov_len;
        }
        break;
      case BlockOp::kWrite:
        for (const iovec& v : req.iov) {
          std::memcpy(p, v.iov_base, v.iov_len);
          p += v.iov_len;
        }
        break;
      case BlockOp::kUnmap:
        if (!caps_.unmap || refuse_unmap) return req.complete(-EOPNOTSUPP);
        std::memset(p, 0, req.blocks * bs);
        unmapped_blocks += req.blocks;
        break;
      case BlockOp::kWriteSame:
        if (!caps_.write_same) return req.complete(-EOPNOTSUPP);
        for (uint64_t i = 0; i < req.blocks; ++i) std::memcpy(p + i * bs, req.iov[0].iov_base, bs);
        break;
      case BlockOp::kFlush:
        break;
    }
    req.complete(0);
  }

  BlockGeometry geometry_;
  BlockCapabilities caps_;
  std::vector<uint8_t> data_;
  std::mutex mutex_;
  std::deque<BlockRequest*> pending_;

 public:
  uint64_t unmapped_blocks = 0;
};

struct Result {
  bool done = false;
  uint8_t status = 0xFF;
  uint32_t transferred = 0;
  Bytes sense;
  Bytes data;  // the whole data-in buffer
  scsi::ParsedSense parsed() const { return scsi::parse_sense(sense); }
  scsi::SenseCode code() const { return parsed().code; }
};

// One I_T nexus talking to one LogicalUnit.
class Initiator : public CommandSink {
 public:
  Initiator(scsi::LogicalUnit& lu, uint64_t id = 1, const std::string& name = "iqn.2026-01.test:i1")
      : lu_(lu) {
    session_.id = id;
    session_.protocol_id = 5;
    session_.initiator_name = name;
    session_.transport_id = name + ",i,0x000000000001";
    session_.target_name = "iqn.2026-01.test:t";
    lu_.session_attached(session_);
    // Consume the POWER ON unit attention of the new nexus.
    Result r = run({0x00, 0, 0, 0, 0, 0});
    EXPECT_EQ(r.status, status::kCheckCondition);
  }
  virtual ~Initiator() { lu_.session_detached(session_); }

  // Start a command; returns its token. data_out: the data-out buffer; or
  // data_in: the data-in length.
  uint32_t start(const Bytes& cdb, const Bytes& data_out = {}, uint32_t data_in = 0,
                 TaskAttribute attr = TaskAttribute::kSimple) {
    auto c = std::make_unique<Call>();
    c->cdb = cdb;
    c->buffer = data_out.empty() ? Bytes(data_in, 0xEE) : data_out;
    c->iov = {c->buffer.data(), c->buffer.size()};
    CommandRequest& r = c->request;
    r.cdb = c->cdb;
    r.session = &session_;
    r.task_attr = attr;
    r.direction = data_out.empty() ? (data_in ? DataDirection::kRead : DataDirection::kNone)
                                   : DataDirection::kWrite;
    r.data_length = static_cast<uint32_t>(c->buffer.size());
    r.expected_length = r.data_length;
    if (expected_override_ != 0) {
      r.direction = DataDirection::kWrite;
      r.expected_length = expected_override_;
      expected_override_ = 0;
    }
    r.tag = next_tag_++;
    r.data = c->buffer.empty() ? DataBuffer() : DataBuffer(std::span<const iovec>(&c->iov, 1));
    const uint32_t token = r.tag;
    Call* raw = c.get();
    {
      std::lock_guard l(mutex_);
      calls_[token] = std::move(c);
    }
    lu_.command(CommandHandle(this, token, &raw->request));
    return token;
  }
  Result result(uint32_t token) {
    std::lock_guard l(mutex_);
    Call& c = *calls_.at(token);
    c.result.data = c.buffer;
    return c.result;
  }
  // A write whose CDB transfers nothing while the initiator announced
  // `expected` bytes of Data-Out (what the transport reports as overflow).
  Result run_overflowing(const Bytes& cdb, uint32_t expected) {
    expected_override_ = expected;
    Result r = run(cdb);
    return r;
  }
  // Wait for a command that completes on another thread (e.g. SANITIZE with
  // IMMED = 0, whose operation runs on a thread of its own).
  Result wait(uint32_t token) {
    {
      std::unique_lock l(mutex_);
      done_.wait(l, [&] { return calls_.at(token)->result.done; });
    }
    return result(token);
  }
  Result run_wait(const Bytes& cdb, const Bytes& data_out = {}, uint32_t data_in = 0) {
    return wait(start(cdb, data_out, data_in));
  }
  bool done(uint32_t token) {
    std::lock_guard l(mutex_);
    return calls_.at(token)->result.done;
  }
  Result run(const Bytes& cdb, const Bytes& data_out = {}, uint32_t data_in = 0) {
    Result r = result(start(cdb, data_out, data_in));
    EXPECT_TRUE(r.done) << "command did not complete synchronously";
    return r;
  }
  const SessionInfo& session() const { return session_; }

  void complete(uint32_t token, const CommandReply& reply) override {
    std::lock_guard l(mutex_);
    Result& r = calls_.at(token)->result;
    r.done = true;
    r.status = reply.status;
    r.transferred = reply.transferred;
    r.sense.assign(reply.sense.begin(), reply.sense.end());
    done_.notify_all();
  }

 private:
  struct Call {
    Bytes cdb;
    Bytes buffer;
    iovec iov{};
    CommandRequest request;
    Result result;
  };
  scsi::LogicalUnit& lu_;
  SessionInfo session_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::map<uint32_t, std::unique_ptr<Call>> calls_;
  uint32_t next_tag_ = 1;
  uint32_t expected_override_ = 0;
};

inline void put16(Bytes& v, size_t at, uint16_t x) {
  v[at] = static_cast<uint8_t>(x >> 8);
  v[at + 1] = static_cast<uint8_t>(x);
}
inline void put32(Bytes& v, size_t at, uint32_t x) {
  for (int i = 0; i < 4; ++i) v[at + i] = static_cast<uint8_t>(x >> (24 - 8 * i));
}
inline void put64(Bytes& v, size_t at, uint64_t x) {
  put32(v, at, static_cast<uint32_t>(x >> 32));
  put32(v, at + 4, static_cast<uint32_t>(x));
}

// Expect CHECK CONDITION with this sense code (and field pointer, if given).
inline void expect_check(const Result& r, scsi::SenseCode code,
                         std::optional<scsi::FieldPointer> field = std::nullopt) {
  ASSERT_TRUE(r.done);
  ASSERT_EQ(r.status, status::kCheckCondition);
  scsi::ParsedSense p = r.parsed();
  ASSERT_TRUE(p.valid);
  EXPECT_EQ(p.code, code) << "got " << int(p.code.key) << "/" << int(p.code.asc) << "/"
                          << int(p.code.ascq);
  if (field) {
    ASSERT_TRUE(p.field.has_value());
    EXPECT_EQ(p.field->in_cdb, field->in_cdb);
    EXPECT_EQ(p.field->field, field->field);
    EXPECT_EQ(p.field->bit, field->bit);
  }
}

inline void expect_good(const Result& r) {
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.status, status::kGood) << "sense " << (r.sense.size() > 13 ? int(r.sense[2]) : -1)
                                     << "/" << (r.sense.size() > 13 ? int(r.sense[12]) : -1) << "/"
                                     << (r.sense.size() > 13 ? int(r.sense[13]) : -1);
}

}  // namespace scstu::testing
