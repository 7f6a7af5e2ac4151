#include "scsi/logical_unit.h"

#include <algorithm>
#include <cstdio>

#include "scsi/cdb.h"
#include "scsi/command_context.h"
#include "scsi/context_pool.h"
#include "scsi/lu_runtime.h"
#include "scsi/mode_file.h"
#include "scsi/mode_pages.h"
#include "scsi/sanitize.h"
#include "scsi/sbc_advanced_job.h"

namespace scstu::scsi {

namespace {

ModePagesConfig mode_config(const LogicalUnitConfig& config) {
  ModePagesConfig mc;
  mc.device_type = config.device_type;
  switch (config.write_cache) {
    case WriteCacheMode::kWriteBack:
      mc.write_cache = true;
      mc.wce_changeable = true;
      break;
    case WriteCacheMode::kWriteThrough:
      mc.write_cache = false;
      mc.wce_changeable = true;
      break;
    case WriteCacheMode::kNvCache:
      // Seed, NV_CACHE: report a write-through cache so initiators drop
      // their flush workarounds; not changeable.
      mc.write_cache = false;
      mc.wce_changeable = false;
      break;
  }
  return mc;
}

// Reservation commands apply their own rules (SPC-4 5.13.3, 6.16).
bool is_reservation_command(uint8_t opcode) {
  return opcode == 0x16 || opcode == 0x17 || opcode == 0x56 || opcode == 0x57 || opcode == 0x5F;
}

bool block_counted(LengthUnit unit) {
  switch (unit) {
    case LengthUnit::kBlocks:
    case LengthUnit::kBlocks6:
    case LengthUnit::kVerify:
    case LengthUnit::kWriteSame:
    case LengthUnit::kCompareWrite:
    case LengthUnit::kTapeFixed:
    case LengthUnit::kTapeVerify:
      return true;
    default:
      return false;
  }
}

}  // namespace

LogicalUnit::LogicalUnit(LogicalUnitConfig config, BlockDevice* device)
    : config_(std::move(config)), device_(device) {
  if (device_ != nullptr) {
    caps_ = device_->capabilities();
    const BlockGeometry g = device_->geometry();
    block_size_ = g.block_size;
    capacity_.store(g.blocks, std::memory_order_relaxed);
  }
  // VPD 0xB0: WRITE SAME's data-bearing forms are sized by initiators from
  // MAXIMUM WRITE SAME LENGTH (libiscsi writes that many blocks with WRITE(16)),
  // so it never exceeds MAXIMUM TRANSFER LENGTH.
  if (block_size_ != 0) {
    config_.max_write_same_blocks =
        std::min<uint64_t>(config_.max_write_same_blocks, config_.max_transfer_bytes / block_size_);
  }
  pool_ = std::make_unique<ContextPool>(this);
  mode_pages_ = std::make_unique<ModePages>(mode_config(config_));
  if (!config_.mode_file.empty()) {
    const std::string err = load_mode_file(*mode_pages_, config_.mode_file);
    if (!err.empty()) std::fprintf(stderr, "scstu: %s\n", err.c_str());
  }
  nexuses_ = std::make_unique<NexusTable>();
  core::TaskSet::Hooks hooks;
  hooks.start = [this](core::TaskSet::Task& t) { run(*static_cast<CommandContext*>(t.context)); };
  hooks.aborted = [](core::TaskSet::Task& t, core::TaskDisposition d) {
    static_cast<CommandContext*>(t.context)->complete_aborted(d);
  };
  runtime_ = std::make_unique<LuRuntime>(core::PersistentReservations::Options{config_.aptpl_file},
                                         std::move(hooks));
  runtime_->sbc = &sbc_advanced_state(*this);
  runtime_->sanitize = std::make_unique<SanitizeOperation>(*this, config_.sanitize_state_file);
  if (!config_.aptpl_file.empty()) {
    const std::string err = runtime_->persistent.load();
    if (!err.empty())
      std::fprintf(stderr, "scstu: logical unit %s: %s\n", config_.serial.c_str(), err.c_str());
  }
  // Last: an interrupted sanitize resumes on its own thread, which may use
  // everything above.
  if (const std::string err = runtime_->sanitize->restore(); !err.empty()) {
    std::fprintf(stderr, "scstu: logical unit %s: %s\n", config_.serial.c_str(), err.c_str());
  }
}

LogicalUnit::~LogicalUnit() {
  // Work that outlived its command still uses the device and this unit.
  runtime_->sanitize->shutdown();
  runtime_->background.wait_idle();
}

SenseFormat LogicalUnit::sense_format() const {
  return mode_pages_->d_sense() ? SenseFormat::kDescriptor : SenseFormat::kFixed;
}

bool LogicalUnit::write_cache_enabled() const {
  return config_.write_cache != WriteCacheMode::kNvCache && mode_pages_->wce();
}

bool LogicalUnit::software_write_protect() const { return config_.read_only || mode_pages_->swp(); }

void LogicalUnit::command(CommandHandle cmd) {
  const CommandRequest& req = cmd.request();
  if (config_.passthrough != nullptr && !req.cdb.empty() &&
      config_.passthrough_opcodes.test(req.cdb[0])) {
    config_.passthrough->command(std::move(cmd));
    return;
  }
  CommandContext* ctx = pool_->acquire();
  if (ctx == nullptr) {
    std::move(cmd).complete_status(status::kTaskSetFull);
    return;
  }
  ctx->start(std::move(cmd));
  const CommandRequest& r = ctx->request();
  ctx->task.nexus = r.session ? r.session->id : 0;
  ctx->task.queue = r.queue;
  ctx->task.tag = r.tag;
  ctx->task.attribute = r.task_attr;
  ctx->task.context = ctx;
  ctx->in_task_set = true;  // before enter(): Hooks::start may run at once on another thread
  core::Outcome rejection;
  switch (runtime_->tasks.enter(ctx->task, &rejection)) {
    case core::TaskSet::Admission::kRun:
      run(*ctx);
      break;
    case core::TaskSet::Admission::kQueued:
      break;  // Hooks::start runs it when its turn comes
    case core::TaskSet::Admission::kRejected:
      ctx->in_task_set = false;
      ctx->complete_outcome(rejection);
      break;
  }
}

// The device side trusts nothing: the buffer must match what the CDB says.
bool LogicalUnit::check_data_length(CommandContext& ctx) {
  const CdbDecode& d = ctx.decoded();
  const CommandRequest& req = ctx.request();
  uint32_t usable = 0;
  if (d.direction != DataDirection::kNone && req.direction == d.direction) {
    usable = std::min<uint32_t>(
        {req.data_length, d.transfer_length, static_cast<uint32_t>(req.data.size())});
  }
  ctx.set_data_length(usable);
  // Data-Out shorter than the CDB says: the initiator sent less than the
  // command needs (the core forwards such medium writes so that write
  // protection is answered first; see core/target_core.h). FCP-4 9.4.2 b).
  if (d.direction == DataDirection::kWrite && usable < d.transfer_length) {
    ctx.complete_check(kInvalidFieldInCommandIu);
    return false;
  }
  // WRITE SAME's one block and COMPARE AND WRITE's two instances are
  // structures, not a stream of blocks: Data-Out longer than the CDB says
  // means the initiator and the CDB disagree on the command, and FCP-4 9.4.2
  // b) lets the device server refuse it (libiscsi *.InvalidDataOutSize).
  const bool structured =
      d.op->unit == LengthUnit::kWriteSame || d.op->unit == LengthUnit::kCompareWrite;
  if (structured && d.direction == DataDirection::kWrite &&
      req.expected_length > d.transfer_length) {
    ctx.complete_check(kInvalidFieldInCommandIu);
    return false;
  }
  // Block data must be whole: never a partial write or a read into too little.
  if (usable < d.transfer_length && block_counted(d.op->unit)) {
    ctx.complete_check(kInvalidFieldInCdb, {true, d.op->length_offset, kNoBit});
    return false;
  }
  return true;
}

void LogicalUnit::run(CommandContext& ctx) {
  const CommandRequest& req = ctx.request();
  const std::span<const uint8_t> cdb = req.cdb;
  const uint64_t nexus = ctx.task.nexus;
  core::UnitAttentions& uas = runtime_->unit_attentions;

  // SAM-5 5.14: a pending unit attention ends any command but INQUIRY,
  // REPORT LUNS and REQUEST SENSE, and is cleared by being reported.
  if (core::unit_attention_handling(cdb) == core::UnitAttentionHandling::kReport &&
      uas.pending(nexus)) {
    if (auto ua = uas.take(nexus)) {
      ctx.complete_check(core::sense_code(*ua));
      return;
    }
  }

  // SPC-4 4.5.1: the failure of work a command of this nexus left running.
  if (core::unit_attention_handling(cdb) == core::UnitAttentionHandling::kReport) {
    if (auto deferred = runtime_->deferred.take(nexus)) {
      ctx.complete_check(ctx.sense(*deferred).deferred());
      return;
    }
  }

  CdbDecode& d = ctx.mutable_decode();
  d = decode_cdb(cdb, config_.device_type, block_size_);
  // SBC-4 4.11.2: a sanitize in progress answers (almost) every command.
  if (!runtime_->sanitize->admit(ctx)) return;
  if (!d.ok) {
    ctx.complete_check(decode_error_sense(d, sense_format()));
    return;
  }
  const OpcodeInfo& op = *d.op;

  // SPC-2 5.5.1 and SPC-4 5.13.1 table 65.
  if (!is_reservation_command(op.opcode)) {
    if (runtime_->reservations.conflicts(nexus, cdb) ||
        (req.session != nullptr && runtime_->persistent.conflicts(*req.session, cdb))) {
      ctx.complete_status(status::kReservationConflict);
      return;
    }
  } else if (op.opcode == 0x5F && runtime_->reservations.conflicts(nexus, cdb)) {
    ctx.complete_status(status::kReservationConflict);
    return;
  }

  if (op.flags & opflag::kNeedsMedium) {
    if (!medium_present()) {
      ctx.complete_check(kMediumNotPresent);
      return;
    }
    if (!medium_loaded()) {
      ctx.complete_check(kMediumNotPresentTrayOpen);
      return;
    }
    if (!started()) {
      ctx.complete_check(kNotReadyInitializingCommandRequired);
      return;
    }
  }
  // Write protection before the data length: a protected unit answers DATA
  // PROTECT to a medium write whatever Data-Out came with it.
  if ((op.flags & opflag::kWritesMedium) && !ctx.check_writable()) return;
  if (!check_data_length(ctx)) return;
  if ((op.flags & opflag::kLbaRange) && !ctx.check_lba_range(d.lba, d.blocks)) return;
  if (op.emulate == nullptr) {
    ctx.complete_check(kInvalidCommandOperationCode);
    return;
  }
  op.emulate(ctx);
}

void LogicalUnit::finish(CommandContext& ctx) { pool_->release(&ctx); }

scstu_tmf_response LogicalUnit::task_management(const TaskManagementRequest& req) {
  core::LogicalUnitState state{runtime_->tasks, runtime_->unit_attentions, runtime_->reservations};
  const scstu_tmf_response response = core::apply_task_management(state, req, mode_pages_->tas());
  // SBC-4 4.11.1: the sanitize operation goes on; an aborted IMMED = 0
  // SANITIZE command is let go now.
  runtime_->sanitize->release_aborted_waiter();
  switch (req.function) {
    case SCSTU_TMF_LUN_RESET:
    case SCSTU_TMF_TARGET_RESET:
      // SPC-4 / SBC-3: a logical unit reset clears PREVENT holds and brings
      // the mode parameters back to their saved values.
      nexuses_->clear_prevent();
      mode_pages_->reset_to_saved();
      break;
    case SCSTU_TMF_I_T_NEXUS_LOSS:
      if (req.session != nullptr) nexuses_->set_prevent(req.session->id, false);
      break;
    default:
      break;
  }
  return response;
}

void LogicalUnit::session_attached(const SessionInfo& session) {
  runtime_->unit_attentions.attach(session.id);
  nexuses_->attach(session.id);
  runtime_->persistent.session_attached(session);
}

void LogicalUnit::session_detached(const SessionInfo& session) {
  runtime_->deferred.drop(session.id);
  runtime_->unit_attentions.detach(session.id);
  runtime_->reservations.nexus_lost(session.id);
  runtime_->persistent.session_detached(session.id);
  nexuses_->detach(session.id);
}

// REPORTED LUNS DATA HAS CHANGED joins this unit's own conditions for the
// nexus, so one is reported per command in SAM-5 precedence (a reset or
// power on before it).
bool LogicalUnit::reported_luns_changed(const SessionInfo& session) {
  runtime_->unit_attentions.raise(session.id, core::UnitAttention::kReportedLunsDataHasChanged);
  return true;
}

// SPC-4 6.33: REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED.
void LogicalUnit::reported_luns_read(const SessionInfo& session) {
  runtime_->unit_attentions.clear(session.id, core::UnitAttention::kReportedLunsDataHasChanged);
}

bool LogicalUnit::descriptor_sense() const { return mode_pages_->d_sense(); }

void LogicalUnit::capacity_changed() {
  if (device_ == nullptr) return;
  const uint64_t blocks = device_->geometry().blocks;
  if (capacity_.exchange(blocks, std::memory_order_relaxed) != blocks) {
    runtime_->unit_attentions.raise_all(core::UnitAttention::kCapacityDataHasChanged);
  }
}

void LogicalUnit::medium_changed(bool present) {
  if (device_ == nullptr) return;
  if (!present) {
    medium_present_.store(false, std::memory_order_release);
    return;
  }
  capacity_.store(device_->geometry().blocks, std::memory_order_relaxed);
  medium_loaded_.store(true, std::memory_order_relaxed);
  // Raised before the medium shows as present: no nexus sees the new medium
  // without the condition pending.
  runtime_->unit_attentions.raise_all(core::UnitAttention::kMediumMayHaveChanged);
  medium_present_.store(true, std::memory_order_release);
}

}  // namespace scstu::scsi
