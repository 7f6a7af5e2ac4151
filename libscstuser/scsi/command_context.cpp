#include "scsi/command_context.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"

namespace scstu::scsi {

CommandContext::CommandContext(LogicalUnit* unit) : unit_(unit) {
  for (Slot& s : slots_) s.iov.reserve(8);
}

BlockDevice* CommandContext::device() const { return unit_->block_device(); }
uint32_t CommandContext::block_size() const { return unit_->block_size(); }
uint64_t CommandContext::capacity() const { return unit_->capacity_blocks(); }
SenseFormat CommandContext::sense_format() const { return unit_->sense_format(); }

void CommandContext::start(CommandHandle handle) {
  handle_ = std::move(handle);
  decode_ = CdbDecode{};
  data_length_ = 0;
  state = {};
  in_task_set = false;
  task = core::TaskSet::Task{};
  // Keep a small bounce buffer for the next command, not a VERIFY-sized one.
  if (bounce_.capacity() > kKeptBounceBytes) std::vector<uint8_t>().swap(bounce_);
}

bool CommandContext::check_writable() {
  if (request().read_only || unit_->software_write_protect() || unit_->capabilities().read_only) {
    complete_check(kWriteProtected);
    return false;
  }
  return true;
}

bool CommandContext::check_lba_range(uint64_t lba, uint64_t blocks) {
  const uint64_t cap = capacity();
  if (lba > cap || blocks > cap - lba) {
    complete_check(kLbaOutOfRange);
    return false;
  }
  return true;
}

size_t CommandContext::read_parameters(std::span<uint8_t> dst) const {
  const size_t n = std::min<size_t>(dst.size(), data_length_);
  return data().copy_to(0, dst.first(n));
}

void CommandContext::complete_data_in(std::span<const uint8_t> bytes) {
  const size_t n = std::min<size_t>(bytes.size(), data_length_);
  const size_t copied = data().copy_from(0, bytes.first(n));
  complete_good(static_cast<uint32_t>(copied));
}

std::span<const iovec> CommandContext::data_iov(unsigned slot, size_t offset, size_t len) {
  std::vector<iovec>& out = slots_[slot].iov;
  out.clear();
  for (const iovec& seg : data().segments()) {
    if (len == 0) break;
    if (offset >= seg.iov_len) {
      offset -= seg.iov_len;
      continue;
    }
    const size_t n = std::min(seg.iov_len - offset, len);
    out.push_back({static_cast<uint8_t*>(seg.iov_base) + offset, n});
    len -= n;
    offset = 0;
  }
  return out;
}

std::span<const iovec> CommandContext::bounce_iov(unsigned slot, size_t len) {
  std::vector<iovec>& out = slots_[slot].iov;
  out.clear();
  out.push_back({bounce_.data(), std::min(len, bounce_.size())});
  return out;
}

std::span<uint8_t> CommandContext::bounce(size_t bytes) {
  if (bounce_.size() < bytes) bounce_.resize(bytes);
  return {bounce_.data(), bytes};
}

void CommandContext::submit_block(unsigned slot, BlockOp op, uint64_t lba, uint64_t blocks,
                                  std::span<const iovec> iov, uint32_t flags, BlockDone done) {
  Slot& s = slots_[slot];
  s.req.op = op;
  s.req.flags = flags;
  s.req.lba = lba;
  s.req.blocks = blocks;
  s.req.iov = iov;
  s.req.done = &CommandContext::on_block_done;
  s.req.context = this;
  s.done = done;
  device()->submit(s.req);
}

void CommandContext::on_block_done(BlockRequest* req, int error) {
  auto* ctx = static_cast<CommandContext*>(req->context);
  for (unsigned i = 0; i < kBlockSlots; ++i) {
    if (&ctx->slots_[i].req == req) {
      ctx->slots_[i].done(*ctx, i, error);
      return;
    }
  }
}

void CommandContext::complete_good(uint32_t transferred) {
  reply(CommandReply{status::kGood, transferred, {}});
}

void CommandContext::complete_check(SenseCode code) { complete_check(sense(code).build()); }

void CommandContext::complete_check(SenseCode code, FieldPointer fp) {
  complete_check(sense(code).field_pointer(fp).build());
}

void CommandContext::complete_check(const SenseData& s) {
  sense_ = s;
  reply(CommandReply{status::kCheckCondition, 0, sense_.span()});
}

void CommandContext::complete_status(uint8_t scsi_status) {
  reply(CommandReply{scsi_status, 0, {}});
}

void CommandContext::complete_outcome(const core::Outcome& outcome) {
  if (outcome.status == status::kCheckCondition) {
    SenseBuilder b = sense(outcome.sense);
    if (outcome.field) b.field_pointer(*outcome.field);
    complete_check(b.build());
  } else if (outcome.status == status::kGood) {
    complete_good(0);
  } else {
    complete_status(outcome.status);
  }
}

void CommandContext::complete_block_error(int error, uint64_t lba) {
  const bool writing = decode_.op && (decode_.op->flags & opflag::kWritesMedium);
  switch (-error) {
    case EIO:
      complete_check(sense(writing ? kWriteError : kUnrecoveredReadError).information(lba));
      return;
    case ENOSPC:
      complete_check(kSpaceAllocationFailedWriteProtect);
      return;
    case EROFS:
      complete_check(kWriteProtected);
      return;
    case EOPNOTSUPP:
      complete_check(kInvalidCommandOperationCode);
      return;
    case ENOMEDIUM:
      complete_check(kMediumNotPresent);
      return;
    default:
      complete_check(kInternalTargetFailure);
      return;
  }
}

// The context goes back to the pool before the reply leaves: once the
// initiator sees the reply, nothing here touches the LogicalUnit any more
// (its owner may then destroy it).
void CommandContext::reply(const CommandReply& r) {
  core::TaskDisposition disposition = core::TaskDisposition::kDeliver;
  if (in_task_set) disposition = unit_->runtime().tasks.finish(task);
  CommandHandle handle = std::move(handle_);
  SenseData sense_copy;
  CommandReply out = r;
  if (!r.sense.empty()) {
    const size_t n = std::min(r.sense.size(), sense_copy.bytes.size());
    std::copy_n(r.sense.begin(), n, sense_copy.bytes.begin());
    sense_copy.length = static_cast<uint8_t>(n);
    out.sense = sense_copy.span();
  }
  if (disposition != core::TaskDisposition::kDeliver) {
    // Aborted: the reply is discarded by the producer, or TASK ABORTED (TAS).
    out = CommandReply{status::kTaskAborted, 0, {}};
  }
  unit_->finish(*this);
  std::move(handle).complete(out);
}

void CommandContext::complete_aborted(core::TaskDisposition) {
  in_task_set = false;  // it already left the task set
  CommandHandle handle = std::move(handle_);
  unit_->finish(*this);
  std::move(handle).complete_status(status::kTaskAborted);
}

}  // namespace scstu::scsi
