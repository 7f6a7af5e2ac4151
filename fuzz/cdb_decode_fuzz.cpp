// Fuzz target: decode_cdb() for every device type, then the whole
// LogicalUnit with the same CDB and the rest of the input as data-out.
// Invariants: a decode is self-consistent, its error sense parses back, and
// the LogicalUnit completes every command exactly once, never crashing.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "handler/block_device.h"
#include "handler/command.h"
#include "scsi/cdb.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

using namespace scstu;

namespace {

class RamDisk : public SimpleBlockDevice {
 public:
  RamDisk() : data_(64 * 512) {}
  BlockGeometry geometry() const override { return {512, 64}; }
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

class Sink : public CommandSink {
 public:
  void complete(uint32_t, const CommandReply& reply) override {
    completions.fetch_add(1, std::memory_order_release);
    if (reply.sense.size() > scsi::kSenseBufferSize) std::abort();
    if (reply.status == status::kCheckCondition && !scsi::parse_sense(reply.sense).valid) {
      std::abort();
    }
  }
  std::atomic<int> completions{0};
};

struct Unit {
  RamDisk disk;
  std::unique_ptr<scsi::LogicalUnit> lu;
  SessionInfo session;
  explicit Unit(uint8_t type) {
    scsi::LogicalUnitConfig cfg;
    cfg.device_type = type;
    cfg.thin = true;
    cfg.serial = "fuzz";
    cfg.max_transfer_bytes = 1u << 20;
    lu = std::make_unique<scsi::LogicalUnit>(cfg, &disk);
    session.id = 7;
    session.protocol_id = 5;
    session.initiator_name = "iqn.2026-11.fuzz:ini";
    lu->session_attached(session);
  }
};

constexpr uint8_t kTypes[] = {0x00, 0x01, 0x03, 0x05, 0x08};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t type = kTypes[data[0] % sizeof(kTypes)];
  const size_t cdb_len = std::min<size_t>(data[1] % (SCSTU_CDB_LONG_MAX + 1), size - 2);
  const std::span<const uint8_t> cdb(data + 2, cdb_len);
  const std::span<const uint8_t> rest(data + 2 + cdb_len, size - 2 - cdb_len);

  for (uint32_t bs : {0u, 512u, 4096u}) {
    const scsi::CdbDecode d = scsi::decode_cdb(cdb, type, bs);
    if (d.ok) {
      if (d.op == nullptr || d.cdb_length > cdb.size()) std::abort();
      if (d.direction == DataDirection::kNone && d.transfer_length != 0) std::abort();
      if (d.direction != DataDirection::kNone && d.transfer_length == 0) std::abort();
    } else {
      for (auto f : {scsi::SenseFormat::kFixed, scsi::SenseFormat::kDescriptor}) {
        const scsi::SenseData s = scsi::decode_error_sense(d, f);
        if (!scsi::parse_sense(s.span()).valid) std::abort();
      }
    }
  }

  // The device server, one LU per device type, kept across inputs so state
  // (mode pages, reservations, unit attentions) accumulates.
  static Unit* units[sizeof(kTypes)] = {};
  Unit*& unit = units[data[0] % sizeof(kTypes)];
  if (unit == nullptr) unit = new Unit(type);
  const scsi::CdbDecode d = scsi::decode_cdb(cdb, type, unit->lu->block_size());
  if (d.ok && d.transfer_length > (1u << 20)) return 0;  // the producer's max_io_bytes
  std::vector<uint8_t> buffer(d.ok ? d.transfer_length : 0);
  const size_t n = std::min(buffer.size(), rest.size());
  if (n != 0) std::memcpy(buffer.data(), rest.data(), n);
  iovec iov{buffer.data(), buffer.size()};
  CommandRequest req;
  req.cdb = cdb;
  req.session = &unit->session;
  req.direction = d.ok ? d.direction : DataDirection::kNone;
  req.data_length = static_cast<uint32_t>(buffer.size());
  req.expected_length = req.data_length;
  req.read_only = (data[0] & 0x80) != 0;
  req.data = DataBuffer(std::span<const iovec>(&iov, 1));
  Sink sink;
  unit->lu->command(CommandHandle(&sink, 1, &req));
  // The RAM disk is synchronous, but a SANITIZE without IMMED completes from
  // the unit's background thread when the erase ends: wait for it, bounded
  // (a command that never completes is a bug).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sink.completions.load(std::memory_order_acquire) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  if (sink.completions.load(std::memory_order_acquire) != 1) std::abort();
  return 0;
}
