// initiator.h - an in-process initiator for LogicalUnit tests: a RAM
// BlockDevice (synchronous, or completing on another thread), a CommandSink
// that records replies, and run() that sends one CDB and waits for its reply.
#pragma once

#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "handler/block_device.h"
#include "handler/command.h"
#include "scsi/cdb.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

namespace scstu::scsi::testing {

// RAM disk. With `async`, requests complete on a worker thread.
class RamDisk : public BlockDevice {
 public:
  RamDisk(uint64_t blocks, uint32_t block_size = 512, bool async = false)
      : data_(blocks * block_size), geometry_{block_size, blocks}, async_(async) {
    if (async_) worker_ = std::thread([this] { work(); });
  }
  ~RamDisk() override {
    if (async_) {
      {
        std::lock_guard lock(mutex_);
        stop_ = true;
      }
      cv_.notify_all();
      worker_.join();
    }
  }
  BlockGeometry geometry() const override { return geometry_; }
  BlockCapabilities capabilities() const override { return caps; }
  void submit(BlockRequest& req) override {
    if (!async_) return execute(req);
    std::lock_guard lock(mutex_);
    queue_.push_back(&req);
    cv_.notify_one();
  }
  void resize(uint64_t blocks) {
    geometry_.blocks = blocks;
    data_.resize(blocks * geometry_.block_size);
  }

  std::vector<uint8_t>& bytes() { return data_; }
  BlockCapabilities caps{};
  int fail_with = 0;              // next request fails with this errno (negative)
  std::vector<BlockRequest> log;  // every request seen (op, flags, lba, blocks)

 private:
  void execute(BlockRequest& req) {
    log.push_back(req);
    if (fail_with != 0) {
      const int e = fail_with;
      fail_with = 0;
      return req.complete(e);
    }
    const size_t bs = geometry_.block_size;
    size_t off = req.lba * bs;
    if (req.op == BlockOp::kRead || req.op == BlockOp::kWrite) {
      for (const iovec& v : req.iov) {
        if (off + v.iov_len > data_.size()) return req.complete(-EIO);
        if (req.op == BlockOp::kRead)
          std::memcpy(v.iov_base, &data_[off], v.iov_len);
        else
          std::memcpy(&data_[off], v.iov_base, v.iov_len);
        off += v.iov_len;
      }
    }
    req.complete(0);
  }
  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_ && queue_.empty()) return;
      BlockRequest* r = queue_.front();
      queue_.pop_front();
      lock.unlock();
      execute(*r);
      lock.lock();
    }
  }

  std::vector<uint8_t> data_;
  BlockGeometry geometry_;
  bool async_;
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<BlockRequest*> queue_;
  bool stop_ = false;
};

struct Reply {
  bool done = false;
  uint8_t status = 0xFF;
  uint32_t transferred = 0;
  std::vector<uint8_t> sense;
  std::vector<uint8_t> data;  // the first `transferred` bytes (reads)

  ParsedSense parsed() const { return parse_sense(sense); }
  SenseCode code() const { return parsed().code; }
};

class Initiator : public CommandSink {
 public:
  explicit Initiator(LowLevelHandler& lu, uint64_t session_id = 1,
                     std::string name = "iqn.2026-11.test:ini1")
      : lu_(lu) {
    session_.id = session_id;
    session_.protocol_id = 5;
    session_.initiator_name = name;
    session_.transport_id = name + ",i,0x000000000001";
    session_.target_name = "iqn.2026-11.test:tgt";
  }
  void attach() { lu_.session_attached(session_); }
  void detach() { lu_.session_detached(session_); }
  const SessionInfo& session() const { return session_; }

  // Send one command. data_out: the data-out buffer (writes); the buffer size
  // otherwise comes from decode_cdb (as the producer would size it), or
  // `buffer_override` when >= 0.
  Reply run(std::vector<uint8_t> cdb, std::vector<uint8_t> data_out = {},
            TaskAttribute attr = TaskAttribute::kSimple, bool read_only = false,
            long buffer_override = -1) {
    auto token = start(std::move(cdb), std::move(data_out), attr, read_only, buffer_override);
    return wait(token);
  }

  uint32_t start(std::vector<uint8_t> cdb, std::vector<uint8_t> data_out = {},
                 TaskAttribute attr = TaskAttribute::kSimple, bool read_only = false,
                 long buffer_override = -1) {
    auto* lu = dynamic_cast<LogicalUnit*>(&lu_);
    const CdbDecode d = decode_cdb(cdb, lu ? lu->device_type() : 0, lu ? lu->block_size() : 512);
    std::lock_guard lock(mutex_);
    const uint32_t token = next_token_++;
    Slot& s = slots_[token];
    s.cdb = std::move(cdb);
    size_t size = d.ok ? d.transfer_length : 0;
    if (buffer_override >= 0) size = static_cast<size_t>(buffer_override);
    s.buffer = data_out.empty() ? std::vector<uint8_t>(size, 0xCC) : std::move(data_out);
    s.iov = {s.buffer.data(), s.buffer.size()};
    s.req.cdb = s.cdb;
    s.req.lun = 0;
    s.req.session = &session_;
    s.req.task_attr = attr;
    s.req.direction = d.ok ? d.direction : DataDirection::kNone;
    s.req.data_length = static_cast<uint32_t>(s.buffer.size());
    s.req.expected_length = s.req.data_length;
    s.req.read_only = read_only;
    s.req.tag = token;
    s.req.data = DataBuffer(std::span<const iovec>(&s.iov, 1));
    pending_.push_back(token);
    return token;
  }
  // Hand every started command to the LU (in start order).
  void submit_started() {
    std::vector<uint32_t> tokens;
    {
      std::lock_guard lock(mutex_);
      tokens.swap(pending_);
    }
    for (uint32_t t : tokens) lu_.command(CommandHandle(this, t, &slots_[t].req));
  }
  Reply wait(uint32_t token) {
    submit_started();
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return slots_[token].reply.done; });
    Reply r = std::move(slots_[token].reply);
    slots_.erase(token);
    return r;
  }
  bool done(uint32_t token) {
    std::lock_guard lock(mutex_);
    return slots_[token].reply.done;
  }

  void complete(uint32_t token, const CommandReply& reply) override {
    std::lock_guard lock(mutex_);
    Slot& s = slots_[token];
    s.reply.status = reply.status;
    s.reply.transferred = reply.transferred;
    s.reply.sense.assign(reply.sense.begin(), reply.sense.end());
    if (s.req.direction == DataDirection::kRead) {
      s.reply.data.assign(s.buffer.begin(),
                          s.buffer.begin() + std::min<size_t>(reply.transferred, s.buffer.size()));
    }
    s.reply.done = true;
    cv_.notify_all();
  }

 private:
  struct Slot {
    std::vector<uint8_t> cdb;
    std::vector<uint8_t> buffer;
    iovec iov{};
    CommandRequest req;
    Reply reply;
  };
  LowLevelHandler& lu_;
  SessionInfo session_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<uint32_t, Slot> slots_;
  std::vector<uint32_t> pending_;
  uint32_t next_token_ = 1;
};

// CDB builders.
inline std::vector<uint8_t> cdb10(uint8_t op, uint32_t lba, uint16_t len, uint8_t byte1 = 0) {
  std::vector<uint8_t> c(10, 0);
  c[0] = op;
  c[1] = byte1;
  put_be32(&c[2], lba);
  put_be16(&c[7], len);
  return c;
}
inline std::vector<uint8_t> cdb16(uint8_t op, uint64_t lba, uint32_t len, uint8_t byte1 = 0) {
  std::vector<uint8_t> c(16, 0);
  c[0] = op;
  c[1] = byte1;
  put_be64(&c[2], lba);
  put_be32(&c[10], len);
  return c;
}
inline std::vector<uint8_t> cdb12(uint8_t op, uint32_t lba, uint32_t len, uint8_t byte1 = 0) {
  std::vector<uint8_t> c(12, 0);
  c[0] = op;
  c[1] = byte1;
  put_be32(&c[2], lba);
  put_be32(&c[6], len);
  return c;
}
inline std::vector<uint8_t> inquiry(uint8_t page, uint16_t alloc, bool evpd) {
  return {0x12,
          static_cast<uint8_t>(evpd ? 1 : 0),
          page,
          static_cast<uint8_t>(alloc >> 8),
          static_cast<uint8_t>(alloc),
          0};
}

}  // namespace scstu::scsi::testing
