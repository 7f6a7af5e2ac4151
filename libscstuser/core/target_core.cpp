#include "core/target_core.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <set>

#include "core/copy_manager.h"
#include "core/lun.h"
#include "scsi/cdb.h"
#include "scsi/sense.h"

namespace scstu::core {

namespace {

// TargetCommand::core_state. Read by task_management() on another thread
// while the device completes the command, hence accessed through atomic_ref.
enum CoreState : uint8_t {
  kIdle = 0,
  kPrepared,   // admitted under the flow limits, buffer allocated, not yet executed
  kExecuting,  // with the device
  kCompleted,  // the device completed it; counters given back, buffer still held
  kAnswered,   // answered by the core (response in the route), or refused
};

uint8_t load_state(TargetCommand& cmd) {
  return std::atomic_ref<uint8_t>(cmd.core_state).load(std::memory_order_acquire);
}
void store_state(TargetCommand& cmd, uint8_t state) {
  std::atomic_ref<uint8_t>(cmd.core_state).store(state, std::memory_order_release);
}

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

namespace opcode {
inline constexpr uint8_t kRequestSense = 0x03;
inline constexpr uint8_t kInquiry = 0x12;
inline constexpr uint8_t kReportLuns = 0xA0;
}  // namespace opcode

// SPC-4 Annex D: 0Eh/03h. Refusing a write whose CDB asks for more data
// than the initiator said it would send (see target_core.h).
using scsi::kInvalidFieldInCommandIu;

}  // namespace

// The device's done hook while it has the command; a named type so prepare()
// can tell it from a transport's own function.
struct TargetCore::DoneHook {
  TargetCore* core;
  void operator()(TargetCommand& cmd) const { core->on_device_done(cmd); }
};

// A TMF sent to several devices (TARGET RESET) or on behalf of the core
// (I_T NEXUS LOSS at close_session): the per-device TargetTmf objects must
// outlive the devices' answers, which may come later from other threads.
// Kept in fanouts_ and reaped once finished; `finished` is the last thing the
// final callback writes.
struct TargetCore::TmfFanout {
  std::vector<TargetTmf> tmfs;
  std::atomic<size_t> remaining{0};
  std::atomic<uint8_t> result{SCSTU_TMF_COMPLETE};
  std::atomic<bool> finished{false};
  std::function<void(scstu_tmf_response)> done;
};

void TargetCore::reap_fanouts() {
  std::lock_guard lock(fanouts_mutex_);
  std::erase_if(fanouts_,
                [](const auto& x) { return x->finished.load(std::memory_order_acquire); });
}

// ---- lifetime ---------------------------------------------------------------

TargetCore::TargetCore(TargetCoreOptions options)
    : options_(options), copies_(std::make_unique<CopyManager>(*this, options.copies)) {
  access_.set_change_listener([this] { refresh_sessions(); });
}

TargetCore::~TargetCore() {
  access_.set_change_listener(nullptr);
  // Sessions a transport left open still end properly for the handlers.
  for (const auto& session : sessions()) close_session(*session);
}

// ---- sessions ---------------------------------------------------------------

std::shared_ptr<const LunTable> TargetCore::build_table(const Session& session,
                                                        const LunTable* previous) const {
  auto table = std::make_shared<LunTable>();
  auto view = access_.resolve(session.target_name(), session.initiator_name());
  if (!view) return table;  // the target went away: nothing visible
  table->group = view->group;
  for (const LunMapping& m : view->luns) {
    // Keep the route (and its outstanding count) of an unchanged mapping.
    const std::shared_ptr<CommandRoute>* old = previous ? previous->find(m.lun) : nullptr;
    if (old && (*old)->exported() == m.device.get() && (*old)->read_only() == m.read_only) {
      table->routes.push_back(*old);
    } else {
      table->routes.push_back(std::make_shared<CommandRoute>(m.lun, m.device, m.read_only));
    }
  }
  return table;
}

std::shared_ptr<Session> TargetCore::open_session(const SessionParams& params, std::string* why) {
  auto fail = [&](std::string message) -> std::shared_ptr<Session> {
    if (why) *why = std::move(message);
    return nullptr;
  };
  if (params.initiator_name.empty()) return fail("session refused: empty initiator name");
  if (!access_.has_target(params.target_name)) {
    return fail("session of initiator '" + params.initiator_name + "' refused: target '" +
                params.target_name + "' does not exist");
  }
  std::lock_guard refresh(refresh_mutex_);
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(sessions_mutex_);
    session = std::make_shared<Session>(next_session_id_++, params);
  }
  auto table = build_table(*session, nullptr);
  session->set_table(table);
  for (const auto& route : table->routes)
    route->exported()->device().session_attached(session->info());
  {
    std::lock_guard lock(sessions_mutex_);
    sessions_.emplace(session->id(), session);
  }
  if (why)
    *why = "initiator '" + params.initiator_name + "' on target '" + params.target_name +
           "' assigned to security group '" + table->group + "'";
  return session;
}

void TargetCore::close_session(Session& session) {
  std::lock_guard refresh(refresh_mutex_);
  {
    std::lock_guard lock(sessions_mutex_);
    if (sessions_.erase(session.id()) == 0) return;  // already closed
  }
  session.mark_closed();
  auto table = session.table();
  session.set_table(std::make_shared<const LunTable>());
  // SAM-5 6.3.4: I_T NEXUS LOSS to every logical unit of the nexus, then the
  // handler hears the session go away.
  auto fanout = std::make_shared<TmfFanout>();
  fanout->tmfs.resize(table->routes.size());
  fanout->remaining = table->routes.size();
  TmfFanout* f = fanout.get();
  reap_fanouts();
  {
    std::lock_guard lock(fanouts_mutex_);
    fanouts_.push_back(fanout);
  }
  for (size_t i = 0; i < table->routes.size(); ++i) {
    TargetTmf& tmf = f->tmfs[i];
    tmf.function = SCSTU_TMF_I_T_NEXUS_LOSS;
    tmf.lun = encode_lun(table->routes[i]->lun());
    tmf.session = &session;
    tmf.done = [f](scstu_tmf_response) {
      if (f->remaining.fetch_sub(1) == 1) f->finished.store(true, std::memory_order_release);
    };
  }
  if (table->routes.empty()) f->finished.store(true);
  for (size_t i = 0; i < table->routes.size(); ++i) {
    table->routes[i]->exported()->device().task_management(f->tmfs[i]);
  }
  for (const auto& route : table->routes)
    route->exported()->device().session_detached(session.info());
}

std::vector<std::shared_ptr<Session>> TargetCore::sessions() const {
  std::lock_guard lock(sessions_mutex_);
  std::vector<std::shared_ptr<Session>> out;
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

void TargetCore::refresh_sessions() {
  std::lock_guard refresh(refresh_mutex_);
  for (const auto& session : sessions()) refresh_session(*session);
}

void TargetCore::refresh_session(Session& session) {
  auto old_table = session.table();
  auto new_table = build_table(session, old_table.get());
  auto same = [](const LunTable& a, const LunTable& b) {
    if (a.routes.size() != b.routes.size()) return false;
    for (size_t i = 0; i < a.routes.size(); ++i) {
      if (a.routes[i] != b.routes[i]) return false;  // routes are reused when unchanged
    }
    return true;
  };
  if (same(*old_table, *new_table)) {
    if (old_table->group != new_table->group) session.set_table(new_table);
    return;
  }
  std::set<ExportedDevice*> before, after;
  for (const auto& r : old_table->routes) before.insert(r->exported());
  for (const auto& r : new_table->routes) after.insert(r->exported());
  for (const auto& r : new_table->routes) {
    if (!before.count(r->exported())) r->exported()->device().session_attached(session.info());
  }
  session.set_table(new_table);
  for (const auto& r : old_table->routes) {
    if (!after.count(r->exported())) r->exported()->device().session_detached(session.info());
  }
  // SPC-4 6.33 / SAM-5 5.14: the LUN inventory of this I_T nexus changed:
  // REPORTED LUNS DATA HAS CHANGED on each logical unit it can address. A
  // device that keeps unit attentions queues it with its own (one reported
  // per command, in precedence); for the others the session keeps it.
  std::vector<uint64_t> luns;
  for (const auto& r : new_table->routes) {
    if (!r->exported()->device().reported_luns_changed(session.info())) luns.push_back(r->lun());
  }
  session.raise_luns_changed(luns);
}

// ---- completions ------------------------------------------------------------

// SAM-5 5.4.3 / RFC 7143 11.4.5.2; the rules are spelled out in target_core.h.
void TargetCore::settle(TargetCommand& cmd) {
  const uint32_t expected = cmd.expected_length;
  // A write truncated to the expected length in prepare() keeps the overflow
  // it recorded there.
  const bool truncated_write = cmd.direction == DataDirection::kWrite &&
                               cmd.residual == Residual::kOverflow && expected == cmd.data_length;
  if (!truncated_write) {
    cmd.residual = Residual::kNone;
    cmd.residual_count = 0;
  }
  switch (cmd.direction) {
    case DataDirection::kRead:
    case DataDirection::kBidi: {
      const uint32_t read_part =
          cmd.direction == DataDirection::kRead ? cmd.data_length : cmd.bidi_read_length;
      uint32_t t = std::min(cmd.transferred, read_part);
      if (cmd.direction == DataDirection::kRead) {
        if (t > expected) {
          cmd.residual = Residual::kOverflow;
          cmd.residual_count = t - expected;
          t = expected;
        } else if (t < expected) {
          cmd.residual = Residual::kUnderflow;
          cmd.residual_count = expected - t;
        }
      } else {
        // Bidi: the residual describes the write part (RFC 7143 11.4.5.2);
        // the read part is sent up to the decoded read length.
        const uint32_t write_part = cmd.data_length - cmd.bidi_read_length;
        if (expected > write_part) {
          cmd.residual = Residual::kUnderflow;
          cmd.residual_count = expected - write_part;
        } else if (expected < write_part) {
          cmd.residual = Residual::kOverflow;
          cmd.residual_count = write_part - expected;
        }
      }
      cmd.transferred = t;
      break;
    }
    case DataDirection::kWrite:
      cmd.transferred = std::min(cmd.transferred, cmd.data_length);
      if (expected > cmd.data_length) {
        cmd.residual = Residual::kUnderflow;
        cmd.residual_count = expected - cmd.data_length;
      } else if (expected < cmd.data_length) {
        // Only reached by a write refused in prepare() (FCP-4 9.4.2 b: no
        // data, INVALID FIELD IN COMMAND INFORMATION UNIT); the overflow is
        // still reported, as initiators (libiscsi's residual tests) check.
        cmd.residual = Residual::kOverflow;
        cmd.residual_count = cmd.data_length - expected;
      }
      break;
    case DataDirection::kNone:
      cmd.transferred = 0;
      if (expected > 0) {
        cmd.residual = Residual::kUnderflow;
        cmd.residual_count = expected;
      }
      break;
  }
  if (cmd.sense_len > SCSTU_SENSE_MAX) cmd.sense_len = SCSTU_SENSE_MAX;
}

void TargetCore::complete_now(TargetCommand& cmd) {
  store_state(cmd, kAnswered);
  settle(cmd);
  if (cmd.done) cmd.done(cmd);
}

void TargetCore::complete_status(TargetCommand& cmd, uint8_t scsi_status) {
  cmd.status = scsi_status;
  cmd.sense_len = 0;
  cmd.transferred = 0;
  complete_now(cmd);
}

// SPC-4 4.5.1: sense the core builds for a logical unit is in the format the
// unit uses (D_SENSE): asked of the device when it can tell at once (a
// LocalDevice asks its handler), else the format of the last sense data the
// device returned on this route. Only on the error path: no cost per command.
scsi::SenseFormat TargetCore::sense_format(const CommandRoute* route) {
  if (route == nullptr) return scsi::SenseFormat::kFixed;
  const std::optional<bool> descriptor = route->exported()->device().descriptor_sense();
  const bool d = descriptor ? *descriptor : route->descriptor_sense_seen();
  return d ? scsi::SenseFormat::kDescriptor : scsi::SenseFormat::kFixed;
}

void TargetCore::complete_check_condition(TargetCommand& cmd, uint8_t key, uint8_t asc,
                                          uint8_t ascq, int field_byte, int field_bit,
                                          const CommandRoute* route) {
  scsi::SenseBuilder builder(sense_format(route), scsi::SenseCode{key, asc, ascq});
  if (field_byte >= 0) {
    builder.cdb_field(static_cast<uint16_t>(field_byte),
                      field_bit >= 0 ? static_cast<uint8_t>(field_bit) : scsi::kNoBit);
  }
  const scsi::SenseData sense = builder.build();
  cmd.status = status::kCheckCondition;
  cmd.sense_len = sense.length;
  std::memcpy(cmd.sense.data(), sense.bytes.data(), sense.length);
  cmd.transferred = 0;
  complete_now(cmd);
}

void TargetCore::on_device_done(TargetCommand& cmd) {
  const uint64_t latency = now_ns() - cmd.submit_ns;
  CommandRoute* route = cmd.route.get();
  ExportedDevice* device = route->exported();
  Session* session = cmd.session;
  const uint32_t reported = std::min(cmd.transferred, cmd.data_length);
  device->counters().record(command_class(cmd.direction), reported, cmd.status, latency);
  finish(
      FlowCounters{&device->outstanding(), &session->outstanding_counter(), &route->outstanding()});
  if (cmd.status == status::kCheckCondition && cmd.sense_len > 0) {
    route->note_sense_format((cmd.sense[0] & 0x7F) >= 0x72);  // 72h/73h: descriptor
  }
  store_state(cmd, kCompleted);
  settle(cmd);
  // The transport's function stays in transport_done (moved back by the next
  // prepare()): replacing cmd.done here would destroy the function running us.
  if (cmd.transport_done) cmd.transport_done(cmd);
}

// ---- answers of the core's own ---------------------------------------------

void TargetCore::answer_with(TargetCommand& cmd, std::vector<uint8_t> data,
                             uint32_t allocation_length) {
  if (data.size() > allocation_length) data.resize(allocation_length);
  auto holder = std::make_shared<CommandRoute>();
  holder->response() = std::move(data);
  cmd.route = holder;
  auto& bytes = holder->response();
  cmd.direction = DataDirection::kRead;
  cmd.data_length = static_cast<uint32_t>(bytes.size());
  cmd.buffer.clear();
  if (!bytes.empty()) cmd.buffer.push_back(iovec{bytes.data(), bytes.size()});
  cmd.status = status::kGood;
  cmd.sense_len = 0;
  cmd.transferred = cmd.data_length;
  complete_now(cmd);
}

// SPC-4 6.33 REPORT LUNS, for the LUNs this session's group maps.
void TargetCore::answer_report_luns(TargetCommand& cmd, const LunTable& table,
                                    const CommandRoute* route) {
  const uint8_t* cdb = cmd.cdb.data();
  const uint8_t select_report = cdb[2];
  const uint32_t allocation_length = scsi::get_be32(cdb + 6);
  // SPC-4 6.33: an allocation length below 16 is INVALID FIELD IN CDB.
  if (allocation_length < 16) {
    return complete_check_condition(cmd, 0x05, 0x24, 0x00, 6, -1, route);
  }
  std::vector<uint64_t> luns;
  switch (select_report) {
    case 0x00:  // logical units, no well-known ones
    case 0x02:  // all: this target has no well-known logical units
      for (const auto& r : table.routes) luns.push_back(r->lun());
      // SAM-5: LUN 0 (or the REPORT LUNS well-known LU) must be addressable; with nothing mapped it
      // is reported and answers INQUIRY with peripheral qualifier 011b.
      if (luns.empty()) luns.push_back(0);
      break;
    case 0x01:  // well-known logical units only: none
      break;
    default:
      return complete_check_condition(cmd, 0x05, 0x24, 0x00, 2, -1, route);
  }
  std::vector<uint8_t> data(8 + 8 * luns.size(), 0);
  scsi::put_be32(data.data(), static_cast<uint32_t>(8 * luns.size()));
  for (size_t i = 0; i < luns.size(); ++i)
    scsi::put_be64(data.data() + 8 + 8 * i, encode_lun(luns[i]));
  // SPC-4 6.33: REPORT LUNS clears 3F/0Eh, wherever it is kept.
  cmd.session->clear_luns_changed();
  for (const auto& r : table.routes) {
    r->exported()->device().reported_luns_read(cmd.session->info());
  }
  answer_with(cmd, std::move(data), allocation_length);
}

// SPC-4 6.39 REQUEST SENSE: the sense data as parameter data, GOOD status.
void TargetCore::answer_request_sense(TargetCommand& cmd, uint8_t key, uint8_t asc, uint8_t ascq) {
  const bool descriptor = cmd.cdb[1] & 0x01;
  const uint8_t allocation_length = cmd.cdb[4];
  const scsi::SenseData sense =
      scsi::make_sense(descriptor ? scsi::SenseFormat::kDescriptor : scsi::SenseFormat::kFixed,
                       scsi::SenseCode{key, asc, ascq});
  answer_with(cmd, std::vector<uint8_t>(sense.bytes.begin(), sense.bytes.begin() + sense.length),
              allocation_length);
}

// A LUN the session's group does not map (SAM-5, incorrect logical unit selection): INQUIRY
// says nothing is there, REQUEST SENSE says why, the rest fails.
bool TargetCore::answer_unmapped(TargetCommand& cmd, const LunTable& /*table*/) {
  const uint8_t* cdb = cmd.cdb.data();
  switch (cdb[0]) {
    case opcode::kInquiry: {
      if (cmd.cdb_len < 6) break;
      const bool evpd = cdb[1] & 0x01;
      const uint8_t page = cdb[2];
      const uint16_t allocation_length = scsi::get_be16(cdb + 3);
      // SPC-4 6.6.2: peripheral qualifier 011b, device type 1Fh: the target
      // cannot support a logical unit at this LUN.
      constexpr uint8_t kNoLogicalUnit = 0x7F;
      if (!evpd) {
        if (page != 0) return complete_check_condition(cmd, 0x05, 0x24, 0x00, 2, -1), false;
        std::vector<uint8_t> data(36, 0);
        data[0] = kNoLogicalUnit;
        data[2] = 0x06;  // SPC-4
        data[3] = 0x02;  // response data format 2
        data[4] = 36 - 5;
        std::memcpy(&data[8], "SCSTU   ", 8);
        std::memcpy(&data[16], "NO LUN MAPPED   ", 16);
        std::memcpy(&data[32], "0001", 4);
        answer_with(cmd, std::move(data), allocation_length);
        return false;
      }
      if (page != 0x00) return complete_check_condition(cmd, 0x05, 0x24, 0x00, 2, -1), false;
      // Supported VPD pages: just this one.
      answer_with(cmd, {kNoLogicalUnit, 0x00, 0x00, 0x01, 0x00}, allocation_length);
      return false;
    }
    case opcode::kRequestSense:
      if (cmd.cdb_len < 6) break;
      answer_request_sense(cmd, 0x05, 0x25, 0x00);
      return false;
    default:
      break;
  }
  complete_check_condition(cmd, 0x05, 0x25, 0x00);  // LOGICAL UNIT NOT SUPPORTED
  return false;
}

// ---- the command path -------------------------------------------------------

// FCP-4 9.4.2 a) for a block write (READ/WRITE-style transfer length in
// logical blocks): rewrites the CDB's TRANSFER LENGTH to the whole blocks in
// the expected length. False when the command cannot be cut that way.
bool TargetCore::truncate_write(TargetCommand& cmd, const scsi::CdbDecode& d, uint32_t block_size) {
  if (!d.op || d.op->unit != scsi::LengthUnit::kBlocks || block_size == 0) return false;
  if (cmd.direction != DataDirection::kWrite || cmd.expected_length % block_size != 0) return false;
  const uint32_t blocks = cmd.expected_length / block_size;
  const uint8_t offset = d.op->length_offset;
  const uint8_t size = d.op->length_size;
  if (size == 0 || size > 4 || offset + size > cmd.cdb_len) return false;
  for (uint8_t i = 0; i < size; ++i) {
    cmd.cdb[offset + size - 1 - i] = static_cast<uint8_t>(blocks >> (8 * i));
  }
  return true;
}

bool TargetCore::prepare(TargetCommand& cmd) {
  // A reused command: give the transport its own done back (see on_device_done).
  if (cmd.done.target<DoneHook>() != nullptr) cmd.done = std::move(cmd.transport_done);
  cmd.transport_done = nullptr;
  cmd.device = nullptr;
  cmd.read_only = false;
  cmd.direction = DataDirection::kNone;
  cmd.data_length = 0;
  cmd.bidi_read_length = 0;
  cmd.buffer.clear();
  cmd.status = status::kGood;
  cmd.transferred = 0;
  cmd.sense_len = 0;
  cmd.residual = Residual::kNone;
  cmd.residual_count = 0;
  cmd.route.reset();
  store_state(cmd, kIdle);

  Session* session = cmd.session;
  if (cmd.cdb_len > cmd.cdb.size()) cmd.cdb_len = static_cast<uint16_t>(cmd.cdb.size());
  if (!session || session->closed()) {
    complete_check_condition(cmd, 0x05, 0x25, 0x00);
    return false;
  }
  if (cmd.cdb_len == 0) {
    complete_check_condition(cmd, 0x05, 0x20, 0x00);  // INVALID COMMAND OPERATION CODE
    return false;
  }
  const Session::TableView table(*session);
  const auto lun = decode_lun(cmd.lun);
  const std::shared_ptr<CommandRoute>* found = lun ? table->find(*lun) : nullptr;
  const std::span<const uint8_t> cdb(cmd.cdb.data(), cmd.cdb_len);

  if (cdb[0] == opcode::kReportLuns) {
    // Answered here for any LUN (SPC-4 6.33: also an unmapped one).
    const CommandRoute* route = found ? found->get() : nullptr;
    const uint8_t type = route ? route->exported()->device().info().device_type : 0;
    const scsi::CdbDecode d = scsi::decode_cdb(cdb, type, 0);
    if (!d.ok) {
      return complete_check_condition(cmd, d.error.key, d.error.asc, d.error.ascq,
                                      d.has_field_pointer() ? d.error_field : -1,
                                      d.error_bit == scsi::kNoBit ? -1 : d.error_bit, route),
             false;
    }
    answer_report_luns(cmd, *table, route);
    return false;
  }
  if (!found) return answer_unmapped(cmd, *table);

  CommandRoute& route = **found;
  ExportedDevice& exported = *route.exported();
  const DeviceInfo& info = exported.device().info();
  const scsi::CdbDecode d = scsi::decode_cdb(cdb, info.device_type, info.block_size);

  // REPORTED LUNS DATA HAS CHANGED, kept here for devices that keep no unit
  // attentions of their own (see refresh_session()). SAM-5 5.14: INQUIRY /
  // REPORT LUNS neither report nor clear it; REQUEST SENSE returns it as its
  // parameter data.
  const bool request_sense = d.ok && cdb[0] == opcode::kRequestSense;
  const bool ua_exempt = d.op && (d.op->flags & scsi::opflag::kNoUnitAttention);
  if ((request_sense || !ua_exempt) && session->take_luns_changed(route.lun())) {
    if (request_sense) {
      answer_request_sense(cmd, 0x06, 0x3F, 0x0E);
    } else {
      complete_check_condition(cmd, 0x06, 0x3F, 0x0E, -1, -1, &route);
    }
    return false;
  }

  if (!d.ok) {
    const scsi::SenseData sense = scsi::decode_error_sense(d, sense_format(&route));
    cmd.status = status::kCheckCondition;
    cmd.sense_len = sense.length;
    std::memcpy(cmd.sense.data(), sense.bytes.data(), sense.length);
    complete_now(cmd);
    return false;
  }
  uint32_t write_part = 0;
  cmd.direction = d.direction;
  if (d.direction == DataDirection::kBidi) {
    write_part = d.transfer_length;
    cmd.bidi_read_length = d.bidi_read_length;
    if (uint64_t{write_part} + d.bidi_read_length > UINT32_MAX) {
      complete_check_condition(cmd, 0x05, 0x24, 0x00, d.op ? d.op->length_offset : -1, -1, &route);
      return false;
    }
    cmd.data_length = write_part + d.bidi_read_length;
  } else {
    cmd.data_length = d.transfer_length;
    if (d.direction == DataDirection::kWrite) write_part = d.transfer_length;
  }
  const uint32_t limit =
      info.max_transfer_bytes ? info.max_transfer_bytes : options_.max_transfer_bytes;
  if (cmd.data_length > limit) {
    // SBC-3 6.5.3: beyond the Block Limits VPD MAXIMUM TRANSFER LENGTH.
    complete_check_condition(cmd, 0x05, 0x24, 0x00, d.op ? d.op->length_offset : -1, -1, &route);
    return false;
  }
  // A READ_ONLY mapping (the seed's "add V_NAME lun READ_ONLY") is enforced
  // here as well as flagged to the device, so no handler can be talked into
  // modifying the medium through it: DATA PROTECT, WRITE PROTECTED (SBC-3
  // write protection). Checked before the Data-Out length below: the
  // protection of the logical unit answers a medium write whatever data
  // came with it (libiscsi ReadOnly.ReadOnlySBC: WRITE SAME with no data).
  const bool writes_medium = d.op && (d.op->flags & scsi::opflag::kWritesMedium);
  if (route.read_only() && writes_medium) {
    complete_check_condition(cmd, 0x07, 0x27, 0x00, -1, -1, &route);
    return false;
  }
  if (cmd.expected_direction != DataDirection::kNone && cmd.direction != DataDirection::kNone &&
      cmd.expected_direction != cmd.direction) {
    // The transport's direction (iSCSI R/W bits) contradicts the CDB's. The
    // CDB wins; the initiator neither sends nor accepts data in the CDB's
    // direction, so its expected length for it is 0 (libiscsi's
    // Read10Invalid: READ flagged as a write gets GOOD, and no Data-In). A
    // bidirectional mismatch cannot be mapped that way: refused.
    if (cmd.direction == DataDirection::kBidi || cmd.expected_direction == DataDirection::kBidi) {
      const scsi::SenseCode c = kInvalidFieldInCommandIu;
      complete_check_condition(cmd, c.key, c.asc, c.ascq, -1, -1, &route);
      return false;
    }
    cmd.expected_length = 0;
  }
  if (cmd.expected_length < write_part) {
    // The CDB asks for more Data-Out than the initiator will send. FCP-4
    // 9.4.2: either a) process it without the data beyond the expected length
    // (a block write is cut to the blocks sent: the CDB's transfer length is
    // rewritten, so the device sees a consistent command), or b) refuse it
    // with INVALID FIELD IN COMMAND INFORMATION UNIT; both report the overflow.
    const uint32_t overflow = cmd.data_length - cmd.expected_length;
    if (!truncate_write(cmd, d, info.block_size) &&
        (!writes_medium || cmd.direction == DataDirection::kBidi)) {
      const scsi::SenseCode c = kInvalidFieldInCommandIu;
      complete_check_condition(cmd, c.key, c.asc, c.ascq, -1, -1, &route);
      return false;
    }
    // A medium write that cannot be cut goes to the device with only the
    // bytes the initiator sends (data_length < the CDB's): the device server
    // knows whether the unit is write protected (DATA PROTECT first) and
    // otherwise refuses it with the same 0E/03 (scsi::LogicalUnit).
    cmd.data_length = cmd.expected_length;
    cmd.residual = Residual::kOverflow;
    cmd.residual_count = overflow;
  }
  const FlowCounters counters{&exported.outstanding(), &session->outstanding_counter(),
                              &route.outstanding()};
  const Admission admission = admit(options_.limits, counters);
  if (admission != Admission::kAdmitted) {
    if (admission == Admission::kBusy)
      exported.counters().record_busy();
    else
      exported.counters().record_task_set_full();
    complete_status(cmd, refusal_status(admission));
    return false;
  }
  cmd.device = &exported.device();
  cmd.read_only = route.read_only();
  cmd.route = *found;
  store_state(cmd, kPrepared);
  if (!cmd.device->alloc_buffer(cmd)) {
    finish(counters);
    const uint8_t st = no_resources_status(route.outstanding().load(std::memory_order_relaxed));
    if (st == status::kBusy)
      exported.counters().record_busy();
    else
      exported.counters().record_task_set_full();
    cmd.device = nullptr;
    cmd.buffer.clear();
    complete_status(cmd, st);
    return false;
  }
  return true;
}

void TargetCore::execute(TargetCommand& cmd) {
  if (load_state(cmd) != kPrepared) return;  // not prepared, or answered already
  cmd.transport_done = std::move(cmd.done);
  cmd.done = DoneHook{this};
  cmd.submit_ns = now_ns();
  store_state(cmd, kExecuting);
  if (CopyManager::handles(cmd)) return copies_->submit(cmd);  // run here, not by the device
  cmd.device->submit(cmd);
}

void TargetCore::release(TargetCommand& cmd) {
  switch (load_state(cmd)) {
    case kPrepared: {  // never executed (connection lost during Data-Out)
      CommandRoute* route = cmd.route.get();
      finish(FlowCounters{&route->exported()->outstanding(), &cmd.session->outstanding_counter(),
                          &route->outstanding()});
      cmd.device->release_buffer(cmd);
      break;
    }
    case kCompleted:
      cmd.device->release_buffer(cmd);
      break;
    case kExecuting:
      // The device still has it: releasing now would free its buffer under it.
      return;
    default:
      break;
  }
  cmd.buffer.clear();
  cmd.route.reset();
  cmd.device = nullptr;
  store_state(cmd, kIdle);
}

// ---- task management --------------------------------------------------------

void TargetCore::task_management(TargetTmf& tmf) {
  reap_fanouts();
  Session* session = tmf.session;
  if (!session || session->closed()) {
    if (tmf.done) tmf.done(SCSTU_TMF_REJECTED);
    return;
  }
  switch (tmf.function) {
    case SCSTU_TMF_ABORT_TASK:
    case SCSTU_TMF_QUERY_TASK: {
      TargetCommand* ref = tmf.ref;
      const uint8_t state = ref && ref->session == session ? load_state(*ref) : uint8_t{kIdle};
      if (state == kExecuting) {
        tmf.lun = encode_lun(ref->route->lun());
        if (CopyManager::handles(*ref)) return copies_->task_management(tmf);
        ref->device->task_management(tmf);
        return;
      }
      // SAM-5 7.2 / 7.9: a command not (or no longer) in the task set:
      // FUNCTION COMPLETE. One still receiving Data-Out is in the task set:
      // the transport drops it (release() without execute()).
      const bool in_task_set = state == kPrepared;
      if (tmf.done) {
        tmf.done(tmf.function == SCSTU_TMF_QUERY_TASK && in_task_set ? SCSTU_TMF_SUCCEEDED
                                                                     : SCSTU_TMF_COMPLETE);
      }
      return;
    }
    case SCSTU_TMF_ABORT_TASK_SET:
    case SCSTU_TMF_CLEAR_TASK_SET:
    case SCSTU_TMF_LUN_RESET:
    case SCSTU_TMF_CLEAR_ACA:
    case SCSTU_TMF_QUERY_TASK_SET:
    case SCSTU_TMF_QUERY_ASYNC_EVENT: {
      const auto table = session->table();
      const auto lun = decode_lun(tmf.lun);
      const std::shared_ptr<CommandRoute>* found = lun ? table->find(*lun) : nullptr;
      if (!found) {
        if (tmf.done) tmf.done(SCSTU_TMF_INCORRECT_LUN);
        return;
      }
      copies_->abort_reached(tmf, (*found)->exported());
      (*found)->exported()->device().task_management(tmf);
      return;
    }
    case SCSTU_TMF_TARGET_RESET:
      copies_->abort_reached(tmf, nullptr);
      target_reset(tmf);
      return;
    default:
      if (tmf.done) tmf.done(SCSTU_TMF_NOT_SUPPORTED);
      return;
  }
}

// SAM-5 7.12 TARGET RESET: a LUN reset of every logical unit of the target,
// i.e. every device any session of this target can address.
void TargetCore::target_reset(TargetTmf& tmf) {
  Session& session = *tmf.session;
  std::vector<std::pair<ExportedDevice*, uint64_t>> devices;  // device, LUN as this session sees it
  std::set<ExportedDevice*> seen;
  const auto own = session.table();
  for (const auto& r : own->routes) {
    if (seen.insert(r->exported()).second) devices.emplace_back(r->exported(), r->lun());
  }
  for (const auto& other : sessions()) {
    if (other->target_name() != session.target_name()) continue;
    for (const auto& r : other->table()->routes) {
      if (seen.insert(r->exported()).second) devices.emplace_back(r->exported(), 0);
    }
  }
  if (devices.empty()) {
    if (tmf.done) tmf.done(SCSTU_TMF_COMPLETE);
    return;
  }
  auto fanout = std::make_shared<TmfFanout>();
  TmfFanout* f = fanout.get();
  f->tmfs.resize(devices.size());
  f->remaining = devices.size();
  f->done = tmf.done;
  {
    std::lock_guard lock(fanouts_mutex_);
    fanouts_.push_back(fanout);
  }
  for (size_t i = 0; i < devices.size(); ++i) {
    TargetTmf& t = f->tmfs[i];
    t.function = SCSTU_TMF_TARGET_RESET;
    t.lun = encode_lun(devices[i].second);
    t.session = &session;
    t.done = [f](scstu_tmf_response r) {
      if (r != SCSTU_TMF_COMPLETE && r != SCSTU_TMF_SUCCEEDED) f->result.store(SCSTU_TMF_FAILED);
      if (f->remaining.fetch_sub(1) == 1) {
        auto done = std::move(f->done);
        if (done) done(static_cast<scstu_tmf_response>(f->result.load()));
        f->finished.store(true, std::memory_order_release);  // last: reaped after this
      }
    };
  }
  for (size_t i = 0; i < devices.size(); ++i)
    devices[i].first->device().task_management(f->tmfs[i]);
}

// ---- statistics -------------------------------------------------------------

std::optional<DeviceStatistics> TargetCore::statistics(std::string_view device) const {
  auto d = access_.device(device);
  if (!d) return std::nullopt;
  return d->statistics();
}

std::vector<DeviceStatistics> TargetCore::all_statistics() const {
  std::vector<DeviceStatistics> out;
  for (const auto& d : access_.devices()) out.push_back(d->statistics());
  return out;
}

void TargetCore::reset_statistics(std::string_view device) {
  if (auto d = access_.device(device)) d->counters().reset();
}

}  // namespace scstu::core
