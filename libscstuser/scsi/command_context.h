// command_context.h - one command inside scsi::LogicalUnit: what an emulation
// entry sees and how it completes (see the comment block in logical_unit.h).
//
// Contexts come from a per-LU pool (no allocation per command) and go back
// to it on completion.
#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/task_set.h"
#include "handler/block_device.h"
#include "handler/command.h"
#include "scsi/cdb.h"
#include "scsi/sense.h"

namespace scstu::scsi {

class LogicalUnit;

class CommandContext {
 public:
  static constexpr unsigned kBlockSlots = 4;
  static constexpr size_t kKeptBounceBytes = 1u << 20;
  using BlockDone = void (*)(CommandContext& ctx, unsigned slot, int error);

  explicit CommandContext(LogicalUnit* unit);
  CommandContext(const CommandContext&) = delete;
  CommandContext& operator=(const CommandContext&) = delete;

  // ---- what -----------------------------------------------------------
  const CommandRequest& request() const { return handle_.request(); }
  std::span<const uint8_t> cdb() const { return request().cdb; }
  const CdbDecode& decoded() const { return decode_; }
  const OpcodeInfo& op() const { return *decode_.op; }
  LogicalUnit& unit() const { return *unit_; }
  BlockDevice* device() const;
  uint32_t block_size() const;
  uint64_t capacity() const;
  SenseFormat sense_format() const;
  // The command's data buffer (in place). For data-out its first
  // data_length() bytes are the parameter list / the blocks.
  const DataBuffer& data() const { return request().data; }
  // Usable bytes: min(buffer size, decoded transfer length).
  uint32_t data_length() const { return data_length_; }

  // ---- checks: true = go on; false = the command is already completed ----
  bool check_writable();
  bool check_lba_range(uint64_t lba, uint64_t blocks);

  // ---- data -----------------------------------------------------------
  // Copy the parameter list (data-out) into dst; returns the bytes copied
  // (min of dst, data_length()).
  size_t read_parameters(std::span<uint8_t> dst) const;
  // Copy data-in (truncated to the allocation length / buffer) and complete
  // GOOD. `bytes` is what the full response would be.
  void complete_data_in(std::span<const uint8_t> bytes);
  // An iovec list over [offset, offset + len) of the data buffer, for a
  // BlockRequest in `slot`. Valid until the slot is reused.
  std::span<const iovec> data_iov(unsigned slot, size_t offset, size_t len);
  // A scratch buffer of at least `bytes`, kept by the context across commands
  // (a large one is released when the next command starts). Its contents
  // survive until the command completes.
  std::span<uint8_t> bounce(size_t bytes);
  // An iovec list over the first `len` bytes of the bounce buffer, for `slot`.
  std::span<const iovec> bounce_iov(unsigned slot, size_t len);

  // ---- block I/O ------------------------------------------------------
  void submit_block(unsigned slot, BlockOp op, uint64_t lba, uint64_t blocks,
                    std::span<const iovec> iov, uint32_t flags, BlockDone done);
  BlockRequest& block_request(unsigned slot) { return slots_[slot].req; }

  // ---- completion: exactly one, then the context is recycled ---------
  void complete_good(uint32_t transferred = 0);
  void complete_check(SenseCode code);
  void complete_check(SenseCode code, FieldPointer fp);
  void complete_check(const SenseBuilder& builder) { complete_check(builder.build()); }
  void complete_check(const SenseData& sense);
  void complete_status(uint8_t scsi_status);
  // BlockDevice errno -> sense (block_device.h); `lba` is the INFORMATION field.
  void complete_block_error(int error, uint64_t lba);
  // A core/ Outcome (reservations, task management): GOOD, a status, or sense.
  void complete_outcome(const core::Outcome& outcome);
  // A builder already in the LU's sense format.
  SenseBuilder sense(SenseCode code) const { return SenseBuilder(sense_format(), code); }

  // Scratch state for multi-step entries (cleared for each command).
  std::array<uint64_t, 8> state{};
  // Room for one small per-command object of an entry (placement new; the
  // entry destroys it before completing), e.g. an LbaRangeLock::Holder.
  static constexpr size_t kObjectBytes = 64;
  void* object_storage() { return object_storage_.data(); }

  // ---- framework (LogicalUnit, ContextPool) ----------------------------
  void start(CommandHandle handle);
  CdbDecode& mutable_decode() { return decode_; }
  void set_data_length(uint32_t n) { data_length_ = n; }
  bool in_use() const { return static_cast<bool>(handle_); }
  // Complete a command that never ran (aborted while queued in the task set).
  void complete_aborted(core::TaskDisposition disposition);
  core::TaskSet::Task task;  // this command in the LU's task set
  bool in_task_set = false;
  std::atomic<uint32_t> pool_next{0};  // ContextPool free-list link
  uint32_t pool_index = 0;

 private:
  struct Slot {
    BlockRequest req;
    BlockDone done = nullptr;
    std::vector<iovec> iov;
  };
  static void on_block_done(BlockRequest* req, int error);
  void reply(const CommandReply& r);

  LogicalUnit* unit_;
  CommandHandle handle_;
  CdbDecode decode_{};
  uint32_t data_length_ = 0;
  std::array<Slot, kBlockSlots> slots_{};
  std::vector<uint8_t> bounce_;
  SenseData sense_{};
  alignas(std::max_align_t) std::array<std::byte, kObjectBytes> object_storage_{};
};

}  // namespace scstu::scsi
