// Fuzz target: what a handler reads from a producer besides command entries
// (ring_entry_fuzz covers those): the shared region's header
// (ring/region_layout validate_header, run on attach) and the payload of a
// SESS_ATTACH entry (scstu_session_info: strings that need not be
// terminated), which SessionRegistry turns into a SessionInfo that the
// LogicalUnit and its persistent reservations parse (initiator port from the
// TransportID text). Input: [region header][mapped size (8)][session info]
// [PR OUT service action, type]. Invariants: an accepted header puts every
// queue area and the data area inside the mapping; the session's strings are
// bounded; the TransportID READ FULL STATUS reports for the session's
// registration parses back to its name; PR OUT (service action from the
// input), READ FULL STATUS and INQUIRY complete, with sense that parses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/persistent_reservations.h"
#include "handler/command.h"
#include "handler/session_registry.h"
#include "ring/region_layout.h"
#include "scsi/cdb.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

using namespace scstu;

namespace {

bool within(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

void check_header(const uint8_t* data, size_t size) {
  scstu_region_header h{};
  std::memcpy(&h, data, std::min(size, sizeof h));
  uint64_t mapped = 0;
  if (size > sizeof h) std::memcpy(&mapped, data + sizeof h, std::min<size_t>(8, size - sizeof h));
  std::string error;
  if (!ring::validate_header(h, mapped, &error)) {
    if (error.empty()) std::abort();
    return;
  }
  if (h.region_size > mapped || !within(h.data_offset, h.data_size, h.region_size)) std::abort();
  for (uint32_t q = 0; q < h.nr_queues; ++q) {
    const uint64_t base = h.queues_offset + uint64_t{q} * h.queue_stride;
    if (!within(base, h.queue_stride, h.data_offset)) std::abort();
    for (uint64_t off : {h.sq_ring_offset, h.cq_ring_offset, h.cmd_offset, h.cpl_offset}) {
      if (!within(base + off, 4, base + h.queue_stride)) std::abort();
    }
    if (!within(base + h.cmd_offset, uint64_t{h.queue_depth} * sizeof(scstu_cmd),
                base + h.queue_stride) ||
        !within(base + h.cpl_offset, uint64_t{h.queue_depth} * sizeof(scstu_cpl),
                base + h.queue_stride)) {
      std::abort();
    }
  }
}

class Sink : public CommandSink {
 public:
  void complete(uint32_t, const CommandReply& r) override {
    ++completions;
    status = r.status;
    if (r.status == status::kCheckCondition && !scsi::parse_sense(r.sense).valid) std::abort();
  }
  int completions = 0;
  uint8_t status = 0xFF;
};

// One command without a medium, synchronous (no BlockDevice: SPC only).
uint8_t run(scsi::LogicalUnit& lu, const SessionInfo& s, std::vector<uint8_t> cdb,
            std::vector<uint8_t>& buffer, DataDirection dir) {
  iovec iov{buffer.data(), buffer.size()};
  CommandRequest req;
  req.cdb = cdb;
  req.session = &s;
  req.direction = buffer.empty() ? DataDirection::kNone : dir;
  req.data_length = static_cast<uint32_t>(buffer.size());
  req.expected_length = req.data_length;
  req.data = DataBuffer(std::span<const iovec>(&iov, 1));
  Sink sink;
  lu.command(CommandHandle(&sink, 1, &req));
  if (sink.completions != 1) std::abort();
  return sink.status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_header(data, size);
  const size_t at = sizeof(scstu_region_header) + 8;
  if (size < at + sizeof(scstu_session_info)) return 0;
  scstu_session_info wire;
  std::memcpy(&wire, data + at, sizeof wire);
  const uint8_t sa = size > at + sizeof wire ? data[at + sizeof wire] : 0;
  const uint8_t type = size > at + sizeof wire + 1 ? data[at + sizeof wire + 1] : 1;

  scsi::LogicalUnitConfig cfg;
  cfg.device_type = 0x01;  // no medium needed for what follows
  cfg.serial = "fuzz";
  cfg.relative_ports = {1, 2, wire.relative_port};
  scsi::LogicalUnit lu(cfg, nullptr);
  SessionRegistry sessions(&lu);
  const SessionInfo* s = sessions.attach(wire);
  // Unterminated strings are taken whole, never read past.
  if (s->initiator_name.size() > sizeof wire.initiator_name ||
      s->transport_id.size() > sizeof wire.transport_id ||
      s->target_name.size() > sizeof wire.target_name) {
    std::abort();
  }
  // The first command of a new nexus reports the power on unit attention.
  std::vector<uint8_t> none;
  (void)run(lu, *s, {0x00, 0, 0, 0, 0, 0}, none, DataDirection::kNone);

  std::vector<uint8_t> params(24, 0);
  params[15] = 0x11;  // SERVICE ACTION RESERVATION KEY
  const uint8_t reg = run(lu, *s, {0x5F, 0x06, 0, 0, 0, 0, 0, 0, 24, 0}, params,
                          DataDirection::kWrite);  // REGISTER AND IGNORE EXISTING KEY
  std::vector<uint8_t> status(4096);
  const std::vector<uint8_t> full_status = {0x5E, 0x03, 0, 0, 0, 0, 0, 0x10, 0x00, 0};
  if (run(lu, *s, full_status, status, DataDirection::kRead) != status::kGood) std::abort();
  // READ FULL STATUS: the registration's TransportID parses back.
  if (reg == status::kGood) {
    const uint32_t total = scsi::get_be32(&status[4]);
    if (total < 24 || total > status.size() - 8) std::abort();
    const uint32_t tid_len = scsi::get_be32(&status[8 + 20]);
    if (24 + uint64_t{tid_len} > total) std::abort();
    size_t consumed = 0;
    auto port = core::InitiatorPort::parse_transport_id(
        std::span<const uint8_t>(status).subspan(8 + 24, tid_len), &consumed);
    // An iSCSI initiator port's TransportID reads back as its name.
    const auto self = core::InitiatorPort::from_session(*s);
    if (self.protocol_id == 5 && !self.name.empty() && (!port || port->name != self.name)) {
      std::abort();
    }
  }
  // Then a service action and type from the input, and the status again.
  std::fill(params.begin(), params.end(), 0);
  params[7] = 0x11;  // RESERVATION KEY
  (void)run(
      lu, *s,
      {0x5F, static_cast<uint8_t>(sa & 0x1F), static_cast<uint8_t>(type), 0, 0, 0, 0, 0, 24, 0},
      params, DataDirection::kWrite);
  if (run(lu, *s, full_status, status, DataDirection::kRead) != status::kGood) std::abort();
  std::vector<uint8_t> vpd(1024);
  (void)run(lu, *s, {0x12, 0x01, 0x83, 0x04, 0x00, 0}, vpd, DataDirection::kRead);
  sessions.detach(wire.session_id);
  return 0;
}
