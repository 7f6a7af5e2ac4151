// Fuzz target: every parameter list (data-out) the device server parses, with
// the opcode fixed so no input is spent finding it: UNMAP, WRITE SAME
// (10/16/32), COMPARE AND WRITE, ORWRITE, WRITE ATOMIC, FORMAT UNIT, SANITIZE,
// LOG SELECT, SEND DIAGNOSTIC, MODE SELECT (6/10, SP writes the mode file),
// RESERVE(10), PERSISTENT RESERVE OUT/IN (APTPL writes the state file, TransportIDs
// of REGISTER AND MOVE), from three I_T nexuses on two target ports.
// Input layout: [command][session|flags][CDB bytes (the command's length)][data-out].
// Every other CDB byte comes from the input; the opcode (and service action
// of 32-byte CDBs) is forced. Invariants: every command completes exactly
// once, CHECK CONDITION sense parses back, a PR OUT TransportID parse stays
// inside its list. The unit is kept across inputs (state accumulates).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/persistent_reservations.h"
#include "handler/command.h"
#include "ram_disk_unit.h"
#include "scsi/cdb.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

using namespace scstu;

namespace {

constexpr uint64_t kBlocks = 64;

struct Command {
  uint8_t opcode;
  uint8_t length;
  uint16_t service_action;  // 32-byte CDBs only (bytes 8-9)
};

constexpr Command kCommands[] = {
    {0x42, 10, 0},       // UNMAP
    {0x41, 10, 0},       // WRITE SAME(10)
    {0x93, 16, 0},       // WRITE SAME(16)
    {0x7F, 32, 0x000D},  // WRITE SAME(32)
    {0x89, 16, 0},       // COMPARE AND WRITE
    {0x8B, 16, 0},       // ORWRITE(16)
    {0x9C, 16, 0},       // WRITE ATOMIC(16)
    {0x04, 6, 0},        // FORMAT UNIT
    {0x48, 10, 0},       // SANITIZE
    {0x4C, 10, 0},       // LOG SELECT
    {0x1D, 6, 0},        // SEND DIAGNOSTIC
    {0x15, 6, 0},        // MODE SELECT(6)
    {0x55, 10, 0},       // MODE SELECT(10)
    {0x56, 10, 0},       // RESERVE(10)
    {0x5F, 10, 0},       // PERSISTENT RESERVE OUT
    {0x5F, 10, 0},       // (twice: the richest parser)
    {0x5E, 10, 0},       // PERSISTENT RESERVE IN
    {0x12, 6, 0},        // INQUIRY (reads back what the others changed)
    {0x5A, 10, 0},       // MODE SENSE(10)
};

std::string scratch_path(const char* what) {
  return "/dev/shm/scstu-fuzz-" + std::to_string(getpid()) + "-" + what;
}

struct Unit {
  fuzz::RamDisk disk{kBlocks};
  std::unique_ptr<scsi::LogicalUnit> lu;
  SessionInfo sessions[3];
  std::string aptpl = scratch_path("aptpl");
  std::string mode = scratch_path("mode");
  Unit() {
    scsi::LogicalUnitConfig cfg;
    cfg.thin = true;
    cfg.serial = "fuzz";
    cfg.max_transfer_bytes = 1u << 16;
    cfg.relative_ports = {1, 2};
    cfg.max_unmap_descriptors = 8;
    cfg.aptpl_file = aptpl;
    cfg.mode_file = mode;
    lu = std::make_unique<scsi::LogicalUnit>(cfg, &disk);
    const char* names[3] = {"iqn.2026-11.fuzz:a", "iqn.2026-11.fuzz:b", "iqn.2026-11.fuzz:a"};
    for (int i = 0; i < 3; ++i) {
      SessionInfo& s = sessions[i];
      s.id = 10 + i;
      s.relative_port = static_cast<uint16_t>(1 + (i & 1));
      s.protocol_id = 5;
      s.initiator_name = names[i];
      s.transport_id = std::string(names[i]) + ",i,0x40000000000" + std::to_string(i);
      s.target_name = "iqn.2026-11.fuzz:t";
      lu->session_attached(s);
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Command& c = kCommands[data[0] % std::size(kCommands)];
  if (size < 2 + size_t{c.length}) return 0;
  uint8_t cdb[32];
  std::memcpy(cdb, data + 2, c.length);
  cdb[0] = c.opcode;
  if (c.length == 32) {
    cdb[7] = 0x18;  // ADDITIONAL CDB LENGTH
    scsi::put_be16(&cdb[8], c.service_action);
  }
  const std::span<const uint8_t> rest(data + 2 + c.length, size - 2 - c.length);

  // Never destroyed (a SANITIZE with IMMED may still run at exit); its
  // scratch files go at exit.
  static Unit& unit = *[] {
    std::atexit([] {
      std::remove(scratch_path("aptpl").c_str());
      std::remove(scratch_path("mode").c_str());
    });
    return new Unit;
  }();
  const scsi::CdbDecode d = scsi::decode_cdb({cdb, c.length}, 0x00, 512);
  if (d.ok && d.transfer_length > (1u << 16)) return 0;  // the ring's max_io_bytes
  std::vector<uint8_t> buffer(d.ok ? d.transfer_length : 0);
  const size_t n = std::min(buffer.size(), rest.size());
  if (n != 0) std::memcpy(buffer.data(), rest.data(), n);

  if (c.opcode == 0x5F && buffer.size() >= 24) {
    // REGISTER AND MOVE's TransportID, as out() slices it.
    size_t consumed = 0;
    const std::span<const uint8_t> tid = std::span<const uint8_t>(buffer).subspan(24);
    if (core::InitiatorPort::parse_transport_id(tid, &consumed) && consumed > tid.size()) {
      std::abort();
    }
  }

  iovec iov{buffer.data(), buffer.size()};
  CommandRequest req;
  req.cdb = {cdb, c.length};
  req.session = &unit.sessions[data[1] % 3];
  req.direction = d.ok ? d.direction : DataDirection::kNone;
  req.data_length = static_cast<uint32_t>(buffer.size());
  req.expected_length = req.data_length;
  req.read_only = (data[1] & 0x80) != 0;
  req.data = DataBuffer(std::span<const iovec>(&iov, 1));
  fuzz::CheckingSink sink;
  unit.lu->command(CommandHandle(&sink, 1, &req));
  sink.expect_one_completion();
  return 0;
}
