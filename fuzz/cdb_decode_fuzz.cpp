// Fuzz target: decode_cdb() for every device type, then the whole
// LogicalUnit with the same CDB and the rest of the input as data-out.
// Invariants: a decode is self-consistent, its error sense parses back, and
// the LogicalUnit completes every command exactly once, never crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "handler/command.h"
#include "ram_disk_unit.h"
#include "scsi/cdb.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

using namespace scstu;

namespace {

struct Unit {
  fuzz::RamDisk disk{64};
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
  fuzz::CheckingSink sink;
  unit->lu->command(CommandHandle(&sink, 1, &req));
  sink.expect_one_completion();
  return 0;
}
