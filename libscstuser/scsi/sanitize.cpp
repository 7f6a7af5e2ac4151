#include "scsi/sanitize.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/durable_file.h"
#include "scsi/command_context.h"
#include "scsi/logical_unit.h"
#include "scsi/lu_runtime.h"

namespace scstu::scsi {

namespace {

// SBC-4 4.11.2: the commands a unit processes while a sanitize is in progress.
bool allowed_during_sanitize(uint8_t opcode) {
  switch (opcode) {
    case 0x03:  // REQUEST SENSE: reports the progress
    case 0x12:  // INQUIRY
    case 0x4D:  // LOG SENSE
    case 0xA0:  // REPORT LUNS
      return true;
    default:
      return false;
  }
}

}  // namespace

SanitizeOperation::~SanitizeOperation() { shutdown(); }

bool SanitizeOperation::failed() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

uint16_t SanitizeOperation::progress() const {
  const uint64_t total = total_.load(std::memory_order_relaxed);
  const uint64_t done = std::min(done_.load(std::memory_order_relaxed), total);
  if (total == 0) return 0;
  return static_cast<uint16_t>(static_cast<unsigned __int128>(done) * 65535u / total);
}

std::optional<SenseData> SanitizeOperation::sense(SenseFormat format) const {
  if (in_progress()) {
    return SenseBuilder(format, kNotReadySanitizeInProgress).progress(progress()).build();
  }
  if (failed()) return make_sense(format, kSanitizeCommandFailed);
  return std::nullopt;
}

bool SanitizeOperation::admit_slow(CommandContext& ctx) {
  const uint8_t opcode = ctx.cdb().empty() ? 0 : ctx.cdb()[0];
  if (in_progress()) {
    if (allowed_during_sanitize(opcode)) return true;
    ctx.complete_check(ctx.sense(kNotReadySanitizeInProgress).progress(progress()));
    return false;
  }
  // SBC-4 4.11.4: in sanitize failure mode, medium access fails; SANITIZE
  // itself (a new one, or EXIT FAILURE MODE) is how to leave it.
  const OpcodeInfo* op = ctx.decoded().op;
  if (op != nullptr && op->opcode != 0x48 && (op->flags & opflag::kNeedsMedium) && failed()) {
    ctx.complete_check(kSanitizeCommandFailed);
    return false;
  }
  return true;
}

SanitizeOperation::StartResult SanitizeOperation::start(Plan plan, CommandContext* waiter) {
  // A previous operation's thread has called finished() (nothing is in
  // progress, or SANITIZE would not have been admitted); let it end.
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mutex_);
    if (failed_ && !failed_ause_ && plan.ause) return StartResult::kAuseRefused;
    running_.ause = plan.ause;
    running_.deallocate = plan.deallocate;
    running_.passes = plan.passes;
    running_.done_pass = plan.start_pass;
    running_.done_lba = plan.start_lba;
    // SBC-4 4.11.2: once SANITIZE has completed, a restart must find the
    // operation: durable before the command (IMMED or not) can complete.
    if (const std::string error = record(SanitizeState::Phase::kInProgress); !error.empty()) {
      std::fprintf(stderr, "scstu: SANITIZE not started: %s\n", error.c_str());
      return StartResult::kNotRecorded;
    }
    const uint64_t capacity = lu_.capacity_blocks();
    const uint64_t passes = plan.passes.empty() ? 1 : plan.passes.size();
    total_.store(capacity * passes, std::memory_order_relaxed);
    done_.store(plan.start_pass * capacity + std::min(plan.start_lba, capacity),
                std::memory_order_relaxed);
    running_ause_ = plan.ause;
    waiter_ = waiter;
    stop_.store(false, std::memory_order_relaxed);
    in_progress_.store(true, std::memory_order_release);
    busy_.store(true, std::memory_order_release);
  }
  thread_ = std::thread([this, p = std::move(plan)]() mutable { run(std::move(p)); });
  return StartResult::kStarted;
}

std::string SanitizeOperation::restore() {
  if (state_file_.empty()) return "";
  std::ifstream in(state_file_);
  if (!in && errno == ENOENT) return "";
  std::string error;
  SanitizeState state;
  if (!in) {
    error = std::strerror(errno);
  } else {
    std::stringstream text;
    text << in.rdbuf();
    error = parse_sanitize_state(text.str(), lu_.block_size(), &state);
  }
  if (!error.empty()) {
    // Unknown whether the medium was being erased: keep its data from being
    // used until a sanitize succeeds (SBC-4 4.11.4, restricted mode).
    std::lock_guard lock(mutex_);
    failed_ = true;
    failed_ause_ = false;
    busy_.store(true, std::memory_order_release);
    return "sanitize state " + state_file_ + ": " + error +
           "; the unit stays in sanitize failure mode until a SANITIZE succeeds (or remove the "
           "file if no sanitize was running)";
  }
  if (state.phase == SanitizeState::Phase::kFailed) {
    std::lock_guard lock(mutex_);
    failed_ = true;
    failed_ause_ = state.ause;
    running_ = std::move(state);
    busy_.store(true, std::memory_order_release);
    return "";
  }
  Plan plan;
  plan.passes = std::move(state.passes);
  plan.deallocate = state.deallocate;
  plan.ause = state.ause;
  if (state.done_lba <= lu_.capacity_blocks()) {  // else the medium changed: from the start
    plan.start_pass = state.done_pass;
    plan.start_lba = state.done_lba;
  }
  if (start(std::move(plan), nullptr) != StartResult::kStarted) {
    // Not resumed, and not forgotten either: failure mode (SBC-4 4.11.4).
    std::lock_guard lock(mutex_);
    failed_ = true;
    failed_ause_ = false;
    busy_.store(true, std::memory_order_release);
    return "sanitize state " + state_file_ +
           ": could not resume the interrupted sanitize operation; the unit stays in sanitize "
           "failure mode until a SANITIZE succeeds";
  }
  std::fprintf(stderr, "scstu: sanitize state %s: resuming the interrupted sanitize operation\n",
               state_file_.c_str());
  return "";
}

std::string SanitizeOperation::record(SanitizeState::Phase phase) {
  if (state_file_.empty()) return "";
  running_.phase = phase;
  const std::string error =
      core::replace_file_durably(state_file_, format_sanitize_state(running_));
  return error.empty() ? "" : "sanitize state " + error;
}

std::string SanitizeOperation::forget() {
  if (state_file_.empty()) return "";
  const std::string error = core::remove_file_durably(state_file_);
  return error.empty() ? "" : "sanitize state " + error;
}

bool SanitizeOperation::exit_failure_mode() {
  std::lock_guard lock(mutex_);
  if (!failed_) return true;  // nothing to exit: GOOD
  if (!failed_ause_) return false;
  failed_ = false;
  busy_.store(in_progress_.load(std::memory_order_acquire), std::memory_order_release);
  if (const std::string error = forget(); !error.empty()) {
    std::fprintf(stderr, "scstu: %s\n", error.c_str());
  }
  return true;
}

void SanitizeOperation::release_aborted_waiter() {
  CommandContext* w = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (waiter_ == nullptr || !lu_.runtime().tasks.aborted(waiter_->task)) return;
    w = std::exchange(waiter_, nullptr);
  }
  w->complete_good(0);  // the task set turns it into no reply / TASK ABORTED
}

void SanitizeOperation::shutdown() {
  stop();
  if (thread_.joinable()) thread_.join();
}

int SanitizeOperation::io(BlockOp op, uint64_t lba, uint64_t blocks, std::span<const iovec> iov) {
  {
    std::lock_guard lock(io_mutex_);
    io_done_ = false;
  }
  submit_block_io(
      *lu_.block_device(), request_, BlockIo{op, lba, blocks, iov, 0},
      [](BlockRequest* req, int error) {
        auto* self = static_cast<SanitizeOperation*>(req->context);
        std::lock_guard lock(self->io_mutex_);
        self->io_error_ = error;
        self->io_done_ = true;
        self->io_cv_.notify_all();
      },
      this);
  std::unique_lock lock(io_mutex_);
  io_cv_.wait(lock, [&] { return io_done_; });
  return io_error_;
}

// The operation: hold the whole medium exclusively in the unit's LBA range
// lock (writes that were in flight when SANITIZE arrived finish first, so
// none lands after the pass that covers it), write each pass or deallocate,
// then flush the device's cache: the old data is then gone from the medium.
void SanitizeOperation::run(Plan plan) {
  BlockDevice* device = lu_.block_device();
  const uint64_t capacity = lu_.capacity_blocks();
  const uint32_t bs = lu_.block_size();
  LbaRangeLock& ranges = lu_.runtime().sbc->ranges;
  LbaRangeLock::Holder hold;
  hold.lba = 0;
  hold.blocks = capacity;
  hold.exclusive = true;
  hold.owner = this;
  hold.granted = [](LbaRangeLock::Holder& h) {
    auto* self = static_cast<SanitizeOperation*>(h.owner);
    std::lock_guard lock(self->io_mutex_);
    self->granted_ = true;
    self->io_cv_.notify_all();
  };
  {
    std::lock_guard lock(io_mutex_);
    granted_ = false;
  }
  if (!ranges.acquire(hold)) {
    std::unique_lock lock(io_mutex_);
    io_cv_.wait(lock, [&] { return granted_; });
  }

  int error = 0;
  if (device == nullptr || bs == 0) error = -ENOMEDIUM;
  // A resumed operation begins at its checkpoint (already bounded by restore()).
  const uint32_t first_pass = plan.start_pass;
  const uint64_t first_lba = std::min(plan.start_lba, capacity);
  const uint64_t checkpoint_blocks = bs == 0 ? 1 : std::max<uint64_t>(1, checkpoint_bytes_ / bs);
  uint64_t since_checkpoint = 0;
  // After each request: a checkpoint once enough blocks were done since the last.
  auto advance = [&](uint32_t pass, uint64_t next_lba, uint64_t n) {
    since_checkpoint += n;
    if (error != 0 || since_checkpoint < checkpoint_blocks || next_lba >= capacity) return;
    since_checkpoint = 0;
    checkpoint(pass, next_lba, &error);
  };
  if (error == 0 && plan.deallocate) {
    const uint64_t step = std::max<uint64_t>(1, (64u << 20) / bs);
    for (uint64_t lba = first_lba; lba < capacity && error == 0; lba += step) {
      if (stop_.load(std::memory_order_acquire)) error = -ECANCELED;
      const uint64_t n = std::min(step, capacity - lba);
      if (error == 0) error = io(BlockOp::kUnmap, lba, n, {});
      done_.fetch_add(n, std::memory_order_relaxed);
      advance(0, lba + n, n);
    }
  } else if (error == 0) {
    if (plan.passes.empty()) plan.passes.emplace_back(bs, 0);  // erase by writing zeroes
    const uint64_t step = std::max<uint64_t>(1, kChunkBytes / bs);
    AlignedBuffer chunk(step * bs);
    for (uint32_t pass = first_pass; pass < plan.passes.size() && error == 0; ++pass) {
      const std::vector<uint8_t>& pattern = plan.passes[pass];
      for (uint64_t off = 0; off < chunk.size(); off += bs) {
        std::memcpy(chunk.data() + off, pattern.data(), std::min<size_t>(bs, pattern.size()));
      }
      for (uint64_t lba = pass == first_pass ? first_lba : 0; lba < capacity && error == 0;
           lba += step) {
        if (stop_.load(std::memory_order_acquire)) error = -ECANCELED;
        const uint64_t n = std::min(step, capacity - lba);
        if (error == 0) error = io(BlockOp::kWrite, lba, n, chunk.iov(n * bs));
        done_.fetch_add(n, std::memory_order_relaxed);
        advance(pass, lba + n, n);
      }
    }
  }
  if (error == 0 && lu_.capabilities().volatile_cache) error = io(BlockOp::kFlush, 0, 0, {});
  ranges.release(hold);
  finished(error);
}

// SBC-4 4.11.2: what a resumed operation may skip must be on the medium, so
// the device's cache is flushed before the checkpoint is recorded.
bool SanitizeOperation::checkpoint(uint32_t pass, uint64_t lba, int* error) {
  if (state_file_.empty()) return true;
  if (lu_.capabilities().volatile_cache) {
    *error = io(BlockOp::kFlush, 0, 0, {});
    if (*error != 0) return false;
  }
  std::lock_guard lock(mutex_);
  running_.done_pass = pass;
  running_.done_lba = lba;
  if (const std::string e = record(SanitizeState::Phase::kInProgress); !e.empty()) {
    std::fprintf(stderr, "scstu: sanitize checkpoint not recorded: %s\n", e.c_str());
  }
  return true;
}

void SanitizeOperation::finished(int error) {
  CommandContext* w = nullptr;
  {
    std::lock_guard lock(mutex_);
    // The unit going away (shutdown) suspends the operation: the state file
    // keeps it in progress, so the next start resumes it (SBC-4 4.11.2).
    const bool suspended = error == -ECANCELED && stop_.load(std::memory_order_acquire);
    std::string file_error;
    if (!suspended) file_error = error != 0 ? record(SanitizeState::Phase::kFailed) : forget();
    if (!file_error.empty()) std::fprintf(stderr, "scstu: %s\n", file_error.c_str());
    failed_ = error != 0;
    failed_ause_ = failed_ && running_ause_;
    busy_.store(failed_, std::memory_order_release);
    in_progress_.store(false, std::memory_order_release);
    w = std::exchange(waiter_, nullptr);
  }
  if (w == nullptr) return;
  if (error != 0) return w->complete_check(kSanitizeCommandFailed);
  w->complete_good(w->data_length());
}

}  // namespace scstu::scsi
