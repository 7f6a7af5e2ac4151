#include "core/copy_manager.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>

#include "core/exported_device.h"
#include "core/lun.h"
#include "core/session.h"
#include "core/target_core.h"
#include "scsi/cdb.h"
#include "scsi/sense.h"

namespace scstu::core {

namespace {

constexpr scsi::SenseCode kCopyAbortedInvalidField{0x0A, 0x26, 0x00};
// SPC-4 6.4.3.2 / 5.17.4: a segment whose CSCD descriptor index names no
// descriptor of the list refers to a copy target that cannot be reached.
constexpr scsi::SenseCode kUnreachableCopyTarget{0x0A, 0x08, 0x04};
// Blocks beyond a copy target's capacity: COPY ABORTED, no additional sense
// code, INFORMATION holds the LBA (libiscsi's ValidSegDescr accepts only
// 00/00, 08/04 or 0D/02 here).
constexpr scsi::SenseCode kCopyAbortedNoAdditionalSense{0x0A, 0x00, 0x00};
constexpr scsi::SenseCode kCopyAbortedWriteProtected{0x0A, 0x27, 0x00};
constexpr scsi::SenseCode kCopyAbortedReadError{0x0A, 0x11, 0x00};
constexpr scsi::SenseCode kCopyAbortedWriteError{0x0A, 0x0C, 0x00};
// A copy target answered with an error that is neither of the above
// (RESERVATION CONFLICT, BUSY, TASK ABORTED, NOT READY, ...).
constexpr scsi::SenseCode kThirdPartyDeviceFailure{0x0A, 0x0D, 0x01};
constexpr scsi::SenseCode kIllegalOperationInProgress{0x05, 0x00, 0x16};

constexpr int kUnitAttentionRetries = 8;
constexpr size_t kMaxHeldRecords = 256;
constexpr uint32_t kVpd83Allocation = 1024;
constexpr uint8_t kFixedSenseBytes = 18;

std::vector<uint8_t> gather(const std::vector<iovec>& iov, size_t n) {
  std::vector<uint8_t> out;
  out.reserve(n);
  for (const iovec& v : iov) {
    if (out.size() == n) break;
    const size_t k = std::min(v.iov_len, n - out.size());
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    out.insert(out.end(), p, p + k);
  }
  return out;
}

size_t scatter(std::vector<iovec>& iov, std::span<const uint8_t> in) {
  size_t done = 0;
  for (iovec& v : iov) {
    if (done == in.size()) break;
    const size_t k = std::min(v.iov_len, in.size() - done);
    std::memcpy(v.iov_base, in.data() + done, k);
    done += k;
  }
  return done;
}

// Data-Out of a write from the Data-In of a read (both `n` bytes, each in
// its own device's buffers).
void copy_buffers(const std::vector<iovec>& from, std::vector<iovec>& to, size_t n) {
  size_t fi = 0, fo = 0, ti = 0, to_off = 0;
  while (n > 0 && fi < from.size() && ti < to.size()) {
    const size_t k = std::min({n, from[fi].iov_len - fo, to[ti].iov_len - to_off});
    std::memcpy(static_cast<uint8_t*>(to[ti].iov_base) + to_off,
                static_cast<const uint8_t*>(from[fi].iov_base) + fo, k);
    n -= k;
    fo += k;
    to_off += k;
    if (fo == from[fi].iov_len) ++fi, fo = 0;
    if (to_off == to[ti].iov_len) ++ti, to_off = 0;
  }
}

void complete(TargetCommand& cmd, uint8_t st, std::span<const uint8_t> sense,
              uint32_t transferred) {
  cmd.status = st;
  cmd.sense_len = static_cast<uint8_t>(std::min<size_t>(sense.size(), SCSTU_SENSE_MAX));
  if (cmd.sense_len) std::memcpy(cmd.sense.data(), sense.data(), cmd.sense_len);
  cmd.transferred = transferred;
  cmd.done(cmd);
}

void complete_check(TargetCommand& cmd, scsi::SenseCode code,
                    std::optional<scsi::FieldPointer> field = std::nullopt) {
  scsi::SenseBuilder b(scsi::SenseFormat::kFixed, code);
  if (field) b.field_pointer(*field);
  const scsi::SenseData s = b.build();
  complete(cmd, status::kCheckCondition, s.span(), 0);
}

void complete_data(TargetCommand& cmd, const std::vector<uint8_t>& data) {
  const size_t n = std::min<size_t>(data.size(), cmd.data_length);
  complete(cmd, status::kGood, {}, static_cast<uint32_t>(scatter(cmd.buffer, {data.data(), n})));
}

}  // namespace

// ---- one EXTENDED COPY -------------------------------------------------------

class CopyManager::Job {
 public:
  Job(CopyManager& manager, TargetCommand& cmd, scsi::CopyParameterList list,
      std::optional<RecordKey> key)
      : manager_(manager),
        cmd_(cmd),
        session_(cmd.session),
        device_(cmd.route->exported()),
        own_lun_(cmd.route->lun()),
        list_(std::move(list)),
        key_(key),
        table_(cmd.session->table()) {
    for (TargetCommand* c : {&io_, &wr_}) c->done = [this](TargetCommand&) { kick(); };
  }

  void start() { kick(); }
  void abort() { aborted_.store(true, std::memory_order_release); }
  TargetCommand& command() const { return cmd_; }
  Session* session() const { return session_; }
  const ExportedDevice* device() const { return device_; }

  // Run by the manager after the job ended (TMFs waiting for it).
  std::vector<std::function<void()>> waiters;

 private:
  enum class Phase { kStart, kResolve, kCapacity, kRead, kWrite };

  struct Target {
    const CommandRoute* route = nullptr;
    uint32_t block_size = 0;
    uint64_t blocks = 0;
    uint32_t max_chunk_blocks = 0;
  };

  // One event (the start, or the internal command in flight finished) per
  // call. Completions may come inside prepare()/execute() on this thread or
  // on a device's thread: whoever finds the job idle runs its steps, others
  // only count the event, so steps never nest or overlap.
  void kick() {
    if (events_.fetch_add(1, std::memory_order_acq_rel) != 0) return;
    for (;;) {
      if (step()) return manager_.retire(this);  // deletes this
      if (events_.fetch_sub(1, std::memory_order_acq_rel) == 1) return;
    }
  }

  // Handles one event; true once the EXTENDED COPY has been completed.
  bool step() {
    if (phase_ != Phase::kStart && !consume_unit_attention()) return false;
    if (aborted_.load(std::memory_order_acquire)) return finish_aborted();
    switch (phase_) {
      case Phase::kStart:
        order_candidates();
        phase_ = Phase::kResolve;
        return resolve_next();
      case Phase::kResolve:
        return resolved_candidate();
      case Phase::kCapacity:
        return capacity_known();
      case Phase::kRead:
        return chunk_read();
      case Phase::kWrite:
        return chunk_written();
    }
    return false;
  }

  // ---- internal commands ----

  void issue(TargetCommand& c, const CommandRoute* route, std::span<const uint8_t> cdb,
             uint32_t expected, DataDirection dir, const TargetCommand* data_from = nullptr) {
    last_route_ = route;
    last_cdb_.assign(cdb.begin(), cdb.end());
    last_expected_ = expected;
    last_dir_ = dir;
    c.session = session_;
    c.lun = encode_lun(route->lun());
    c.cdb.fill(0);
    std::memcpy(c.cdb.data(), cdb.data(), cdb.size());
    c.cdb_len = static_cast<uint16_t>(cdb.size());
    c.task_attr = TaskAttribute::kSimple;
    c.expected_length = expected;
    c.expected_direction = dir;
    (&c == &io_ ? io_prepared_ : wr_prepared_) = true;
    if (!manager_.core_.prepare(c)) return;  // done() ran: an answer of the core's
    // The LUN was resolved on an earlier inventory: never write to another
    // device that took its number since.
    if (c.route.get() != route && (!c.route || c.route->exported() != route->exported())) {
      lost_target_ = true;
      manager_.core_.release(c);
      (&c == &io_ ? io_prepared_ : wr_prepared_) = false;
      kick();
      return;
    }
    if (data_from) copy_buffers(data_from->buffer, c.buffer, c.data_length);
    manager_.core_.execute(c);
  }

  void release(TargetCommand& c) {
    bool& prepared = &c == &io_ ? io_prepared_ : wr_prepared_;
    if (!prepared) return;
    manager_.core_.release(c);
    prepared = false;
  }

  TargetCommand& last() { return phase_ == Phase::kWrite ? wr_ : io_; }

  // SAM-5 5.14: a copy target's UNIT ATTENTION is the copy manager's to
  // take; the command is sent again. False when re-issued (an event will
  // follow).
  bool consume_unit_attention() {
    if (lost_target_) return true;
    TargetCommand& c = last();
    if (c.status != status::kCheckCondition || c.sense_len < 3) return true;
    const scsi::ParsedSense s = scsi::parse_sense({c.sense.data(), c.sense_len});
    if (!s.valid || s.code.sense_key() != scsi::SenseKey::kUnitAttention) return true;
    if (++unit_attentions_ > kUnitAttentionRetries) return true;
    release(c);
    const std::vector<uint8_t> cdb = last_cdb_;
    issue(c, last_route_, cdb, last_expected_, last_dir_, &c == &wr_ ? &io_ : nullptr);
    return false;
  }

  bool good(const TargetCommand& c) const { return !lost_target_ && c.status == status::kGood; }

  // ---- CSCD descriptors to LUNs ----

  // The session's LUNs of block devices, the addressed one first.
  void order_candidates() {
    for (const auto& r : table_->routes) {
      if (r->exported()->device().info().device_type != 0x00) continue;
      if (r->lun() == own_lun_) {
        candidates_.insert(candidates_.begin(), r.get());
      } else {
        candidates_.push_back(r.get());
      }
    }
    pages_.resize(candidates_.size());
    asked_.resize(candidates_.size(), false);
  }

  // Looks for the designator of CSCD `targets_.size()` among the candidates
  // whose VPD 83h is known; asks the next unknown one.
  bool resolve_next() {
    while (targets_.size() < list_.targets.size()) {
      const scsi::CopyTargetDescriptor& d = list_.targets[targets_.size()];
      bool found = false;
      for (size_t i = 0; i < candidates_.size() && !found; ++i) {
        if (!asked_[i]) {
          asked_[i] = true;
          candidate_ = i;
          const uint8_t cdb[6] = {0x12, 0x01, 0x83, kVpd83Allocation >> 8, kVpd83Allocation & 0xFF,
                                  0};
          issue(io_, candidates_[i], cdb, kVpd83Allocation, DataDirection::kRead);
          return false;
        }
        if (scsi::designation_matches(d.designation, pages_[i])) {
          Target t;
          t.route = candidates_[i];
          targets_.push_back(t);
          found = true;
        }
      }
      if (!found) {
        return fail(
            scsi::SenseBuilder(scsi::SenseFormat::kFixed, scsi::kCopyTargetDeviceNotReachable)
                .parameter_field(d.offset));
      }
    }
    phase_ = Phase::kCapacity;
    capacity_of_ = 0;
    return ask_capacity();
  }

  bool resolved_candidate() {
    if (good(io_)) pages_[candidate_] = gather(io_.buffer, io_.transferred);
    release(io_);
    lost_target_ = false;  // a device that went away designates nothing
    return resolve_next();
  }

  // ---- READ CAPACITY(16) of each target ----

  bool ask_capacity() {
    if (capacity_of_ == targets_.size()) return start_segment();
    const uint8_t cdb[16] = {0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0};
    issue(io_, targets_[capacity_of_].route, cdb, 32, DataDirection::kRead);
    return false;
  }

  bool capacity_known() {
    if (!good(io_) || io_.transferred < 12) return fail_from(io_, true);
    const std::vector<uint8_t> d = gather(io_.buffer, 12);
    release(io_);
    Target& t = targets_[capacity_of_];
    const scsi::CopyTargetDescriptor& desc = list_.targets[capacity_of_];
    t.blocks = scsi::get_be64(&d[0]) + 1;
    t.block_size = scsi::get_be32(&d[8]);
    if (t.block_size == 0 || t.block_size != desc.block_size) {
      return fail(scsi::SenseBuilder(scsi::SenseFormat::kFixed, kCopyAbortedInvalidField)
                      .parameter_field(static_cast<uint16_t>(desc.offset + 29)));
    }
    const uint32_t max = t.route->exported()->device().info().max_transfer_bytes;
    const uint32_t chunk = std::min(kChunkBytes, max ? max : kChunkBytes);
    t.max_chunk_blocks = std::max<uint32_t>(1, chunk / t.block_size);
    ++capacity_of_;
    return ask_capacity();
  }

  // ---- segments ----

  // Checks a segment against its targets before the first byte moves.
  bool start_segment() {
    while (segment_ < list_.segments.size() && list_.segments[segment_].blocks == 0) {
      if (!segment_valid(list_.segments[segment_])) return true;
      ++segment_;  // an empty segment: nothing to move
    }
    if (segment_ == list_.segments.size()) return finish_good();
    const scsi::CopySegment& s = list_.segments[segment_];
    if (!segment_valid(s)) return true;
    const Target& src = targets_[s.source];
    const Target& dst = targets_[s.destination];
    chunk_blocks_ = std::min(src.max_chunk_blocks, dst.max_chunk_blocks);
    done_ = 0;
    // Same unit, overlapping, destination after source: copy from the end
    // so no block is read after it was overwritten.
    backwards_ = src.route->exported() == dst.route->exported() &&
                 s.destination_lba > s.source_lba && s.destination_lba < s.source_lba + s.blocks;
    return read_chunk();
  }

  // False after failing the copy.
  bool segment_valid(const scsi::CopySegment& s) {
    if (s.source >= targets_.size()) {
      fail(scsi::SenseBuilder(scsi::SenseFormat::kFixed, kUnreachableCopyTarget)
               .parameter_field(static_cast<uint16_t>(s.offset + 4)));
      return false;
    }
    if (s.destination >= targets_.size()) {
      fail(scsi::SenseBuilder(scsi::SenseFormat::kFixed, kUnreachableCopyTarget)
               .parameter_field(static_cast<uint16_t>(s.offset + 6)));
      return false;
    }
    const Target& src = targets_[s.source];
    const Target& dst = targets_[s.destination];
    if (src.block_size != dst.block_size) {
      fail(scsi::SenseBuilder(scsi::SenseFormat::kFixed, kCopyAbortedInvalidField)
               .parameter_field(s.offset));
      return false;
    }
    if (s.source_lba > src.blocks || s.blocks > src.blocks - s.source_lba) {
      fail(scsi::SenseBuilder(scsi::SenseFormat::kFixed, kCopyAbortedNoAdditionalSense)
               .information(s.source_lba));
      return false;
    }
    if (s.destination_lba > dst.blocks || s.blocks > dst.blocks - s.destination_lba) {
      fail(scsi::SenseBuilder(scsi::SenseFormat::kFixed, kCopyAbortedNoAdditionalSense)
               .information(s.destination_lba));
      return false;
    }
    return true;
  }

  static void rw16(uint8_t* cdb, uint8_t opcode, uint64_t lba, uint32_t blocks) {
    std::memset(cdb, 0, 16);
    cdb[0] = opcode;
    scsi::put_be64(&cdb[2], lba);
    scsi::put_be32(&cdb[10], blocks);
  }

  bool read_chunk() {
    const scsi::CopySegment& s = list_.segments[segment_];
    in_flight_ = std::min(chunk_blocks_, s.blocks - done_);
    offset_ = backwards_ ? s.blocks - done_ - in_flight_ : done_;
    const Target& src = targets_[s.source];
    uint8_t cdb[16];
    rw16(cdb, 0x88, s.source_lba + offset_, in_flight_);
    unit_attentions_ = 0;
    phase_ = Phase::kRead;
    issue(io_, src.route, cdb, in_flight_ * src.block_size, DataDirection::kRead);
    return false;
  }

  bool chunk_read() {
    const scsi::CopySegment& s = list_.segments[segment_];
    const Target& dst = targets_[s.destination];
    if (!good(io_) || io_.transferred < in_flight_ * dst.block_size) return fail_from(io_, true);
    uint8_t cdb[16];
    rw16(cdb, 0x8A, s.destination_lba + offset_, in_flight_);
    unit_attentions_ = 0;
    phase_ = Phase::kWrite;
    issue(wr_, dst.route, cdb, in_flight_ * dst.block_size, DataDirection::kWrite, &io_);
    return false;
  }

  bool chunk_written() {
    if (!good(wr_)) return fail_from(wr_, false);
    release(wr_);
    release(io_);
    const scsi::CopySegment& s = list_.segments[segment_];
    done_ += in_flight_;
    bytes_ += uint64_t{in_flight_} * targets_[s.destination].block_size;
    if (done_ < s.blocks) return read_chunk();
    ++segment_;
    return start_segment();
  }

  // ---- the end ----

  bool finish_good() {
    release(io_);
    release(wr_);
    end(status::kGood, {});
    return true;
  }

  bool finish_aborted() {
    release(io_);
    release(wr_);
    // SAM-5 5.6: the task was aborted; the transport answers it (or not).
    end(status::kTaskAborted, {});
    return true;
  }

  bool fail(const scsi::SenseBuilder& b) {
    // SPC-4 6.4.3: COMMAND-SPECIFIC INFORMATION names the failed segment.
    const scsi::SenseData sense = scsi::SenseBuilder(b).command_specific(segment_).build();
    release(io_);
    release(wr_);
    end(status::kCheckCondition, sense.span());
    return true;
  }

  // A copy target's failure: COPY ABORTED with its status and sense data at
  // the SOURCE / DESTINATION SENSE DATA OFFSET (COMMAND-SPECIFIC INFORMATION
  // bytes 0 and 1, SPC-4 6.4.3).
  bool fail_from(const TargetCommand& c, bool source) {
    scsi::SenseCode code = kThirdPartyDeviceFailure;
    std::optional<uint64_t> information;
    if (lost_target_) {
      code = scsi::kCopyTargetDeviceNotReachable;
    } else if (c.status == status::kCheckCondition) {
      const scsi::ParsedSense t = scsi::parse_sense({c.sense.data(), c.sense_len});
      if (t.code.sense_key() == scsi::SenseKey::kDataProtect) {
        code = kCopyAbortedWriteProtected;
      } else if (t.code.sense_key() == scsi::SenseKey::kMediumError ||
                 t.code.sense_key() == scsi::SenseKey::kHardwareError) {
        code = source ? kCopyAbortedReadError : kCopyAbortedWriteError;
      } else if (t.code == scsi::kLbaOutOfRange) {
        code = kCopyAbortedNoAdditionalSense;
      }
      information = t.information;
    }
    const uint8_t offset = lost_target_ ? 0 : kFixedSenseBytes;
    const uint32_t csi = (uint32_t{source ? offset : uint8_t{0}} << 24) |
                         (uint32_t{source ? uint8_t{0} : offset} << 16) |
                         static_cast<uint16_t>(segment_);
    scsi::SenseBuilder b(scsi::SenseFormat::kFixed, code);
    b.command_specific(csi);
    if (information) b.information(*information);
    scsi::SenseData sense = b.build();
    if (!lost_target_) {
      // Status byte, then as much of the target's sense as fits.
      sense.bytes[sense.length++] = c.status;
      const size_t room = sense.bytes.size() - sense.length;
      const size_t n = std::min<size_t>(room, c.sense_len);
      std::memcpy(&sense.bytes[sense.length], c.sense.data(), n);
      sense.length = static_cast<uint8_t>(sense.length + n);
      sense.bytes[7] = static_cast<uint8_t>(sense.length - 8);  // ADDITIONAL SENSE LENGTH
    }
    release(io_);
    release(wr_);
    end(status::kCheckCondition, sense.span());
    return true;
  }

  void end(uint8_t st, std::span<const uint8_t> sense) {
    if (key_) {
      scsi::CopyResult r;
      r.done = true;
      r.status = st;
      r.segments_processed = static_cast<uint16_t>(segment_);
      r.bytes = bytes_;
      r.sense.assign(sense.begin(), sense.end());
      manager_.record(*key_, r);
    }
    complete(cmd_, st, sense, 0);
  }

  CopyManager& manager_;
  TargetCommand& cmd_;
  Session* session_;
  const ExportedDevice* device_;
  uint64_t own_lun_;
  scsi::CopyParameterList list_;
  std::optional<RecordKey> key_;
  std::shared_ptr<const LunTable> table_;  // keeps the resolved routes alive
  std::atomic<uint32_t> events_{0};
  std::atomic<bool> aborted_{false};
  Phase phase_ = Phase::kStart;

  // The internal commands (READ or INQUIRY / READ CAPACITY, and WRITE) and
  // what is needed to send the last one again.
  TargetCommand io_, wr_;
  bool io_prepared_ = false, wr_prepared_ = false;
  bool lost_target_ = false;
  const CommandRoute* last_route_ = nullptr;
  std::vector<uint8_t> last_cdb_;
  uint32_t last_expected_ = 0;
  DataDirection last_dir_ = DataDirection::kNone;
  int unit_attentions_ = 0;

  std::vector<const CommandRoute*> candidates_;
  std::vector<std::vector<uint8_t>> pages_;  // VPD 83h per candidate, empty: none
  std::vector<bool> asked_;
  size_t candidate_ = 0;
  std::vector<Target> targets_;
  size_t capacity_of_ = 0;

  size_t segment_ = 0;
  uint32_t done_ = 0;       // blocks of the current segment copied
  uint32_t in_flight_ = 0;  // blocks of the chunk being moved
  uint32_t offset_ = 0;     // of that chunk within the segment
  uint32_t chunk_blocks_ = 0;
  bool backwards_ = false;
  uint64_t bytes_ = 0;
};

// ---- the manager -------------------------------------------------------------

CopyManager::CopyManager(TargetCore& core) : core_(core) {}

CopyManager::~CopyManager() {
  for (;;) {
    std::unique_lock lock(mutex_);
    for (Job* j : jobs_) j->abort();
    if (idle_.wait_for(lock, std::chrono::milliseconds(100), [&] { return jobs_.empty(); })) {
      return;
    }
  }
}

size_t CopyManager::running() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

void CopyManager::submit(TargetCommand& cmd) {
  if (cmd.cdb[0] == 0x83) return extended_copy(cmd);
  receive_copy_results(cmd);
}

// SPC-4 6.4.1 EXTENDED COPY (LID1).
void CopyManager::extended_copy(TargetCommand& cmd) {
  const uint32_t length = scsi::get_be32(&cmd.cdb[10]);
  if (length == 0) return complete(cmd, status::kGood, {}, 0);  // 6.4.1: not an error
  if (cmd.data_length < length) return complete_check(cmd, scsi::kParameterListLengthError);
  auto parsed = scsi::parse_copy_parameter_list(gather(cmd.buffer, length));
  if (auto* e = std::get_if<scsi::CopyListError>(&parsed)) {
    return complete_check(cmd, e->code, e->has_field ? std::optional(e->field) : std::nullopt);
  }
  scsi::CopyParameterList& list = std::get<scsi::CopyParameterList>(parsed);
  std::optional<RecordKey> key;
  if (list.list_id_usage == 0x00) key = RecordKey{cmd.session->id(), list.list_id};
  Job* job = nullptr;
  std::optional<scsi::SenseCode> refused;  // answered outside the lock
  {
    std::lock_guard lock(mutex_);
    if (jobs_.size() >= scsi::kMaxConcurrentCopies) refused = scsi::kInsufficientResources;
    // LIST ID USAGE 00b: results are held for RECEIVE COPY RESULTS; the list
    // identifier must not be in use by a copy still running (6.4.3.2).
    auto it = key ? records_.find(*key) : records_.end();
    if (!refused && it != records_.end() && !it->second.done) {
      refused = kIllegalOperationInProgress;
    }
    if (!refused && key) {
      if (records_.size() >= kMaxHeldRecords) {
        for (auto r = records_.begin(); r != records_.end(); ++r) {
          if (r->second.done) {
            records_.erase(r);
            break;
          }
        }
      }
      records_[*key] = scsi::CopyResult{};
    }
    if (!refused) {
      job = new Job(*this, cmd, std::move(list), key);
      jobs_.push_back(job);
    }
  }
  if (refused) return complete_check(cmd, *refused);
  job->start();
}

void CopyManager::record(const RecordKey& key, const scsi::CopyResult& result) {
  std::lock_guard lock(mutex_);
  records_[key] = result;
}

void CopyManager::retire(Job* job) {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mutex_);
    std::erase(jobs_, job);
    waiters = std::move(job->waiters);
  }
  delete job;
  for (auto& w : waiters) w();
  std::lock_guard lock(mutex_);
  if (jobs_.empty()) idle_.notify_all();
}

// SPC-4 6.18: service action in byte 1; LIST IDENTIFIER byte 2; ALLOCATION
// LENGTH bytes 10-13 (the decoded data_length: the data-in is cut to it).
void CopyManager::receive_copy_results(TargetCommand& cmd) {
  const uint8_t action = cmd.cdb[1] & 0x1F;
  if (action == 0x03) {
    return complete_data(cmd, scsi::copy_operating_parameters_data(
                                  cmd.route->exported()->device().info().block_size));
  }
  scsi::CopyResult r;
  {
    std::lock_guard lock(mutex_);
    auto it = records_.find({cmd.session->id(), cmd.cdb[2]});
    if (it == records_.end()) {
      return complete_check(cmd, scsi::kInvalidFieldInCdb,
                            scsi::FieldPointer{true, 2, scsi::kNoBit});
    }
    r = it->second;
  }
  complete_data(cmd,
                action == 0x00 ? scsi::copy_status_data(r) : scsi::failed_segment_details_data(r));
}

// ---- task management -----------------------------------------------------------

namespace {

// A TMF's answer joined with the end of the copies it aborted: the
// transport's done runs once, after all of them.
struct TmfJoin {
  std::function<void(scstu_tmf_response)> done;
  std::atomic<size_t> remaining{0};
  std::atomic<uint8_t> response{SCSTU_TMF_COMPLETE};
  void arrive() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 && done) {
      done(static_cast<scstu_tmf_response>(response.load()));
    }
  }
};

}  // namespace

void CopyManager::task_management(TargetTmf& tmf) {
  std::unique_lock lock(mutex_);
  auto it =
      std::find_if(jobs_.begin(), jobs_.end(), [&](Job* j) { return &j->command() == tmf.ref; });
  if (it == jobs_.end()) {  // finished already (or a RECEIVE COPY RESULTS)
    lock.unlock();
    if (tmf.done) tmf.done(SCSTU_TMF_COMPLETE);
    return;
  }
  if (tmf.function == SCSTU_TMF_QUERY_TASK) {
    lock.unlock();
    if (tmf.done) tmf.done(SCSTU_TMF_SUCCEEDED);
    return;
  }
  (*it)->abort();
  (*it)->waiters.push_back([done = tmf.done] {
    if (done) done(SCSTU_TMF_COMPLETE);
  });
}

void CopyManager::abort_reached(TargetTmf& tmf, const ExportedDevice* device) {
  Session* session = tmf.session;
  const bool all_sessions =
      tmf.function != SCSTU_TMF_ABORT_TASK_SET && tmf.function != SCSTU_TMF_QUERY_TASK_SET &&
      tmf.function != SCSTU_TMF_QUERY_ASYNC_EVENT && tmf.function != SCSTU_TMF_CLEAR_ACA;
  const bool aborts = tmf.function == SCSTU_TMF_ABORT_TASK_SET ||
                      tmf.function == SCSTU_TMF_CLEAR_TASK_SET ||
                      tmf.function == SCSTU_TMF_LUN_RESET || tmf.function == SCSTU_TMF_TARGET_RESET;
  if (!aborts || session == nullptr) return;
  std::lock_guard lock(mutex_);
  std::vector<Job*> reached;
  for (Job* j : jobs_) {
    if (!all_sessions && j->session() != session) continue;
    if (device != nullptr && j->device() != device) continue;
    if (device == nullptr && j->session()->target_name() != session->target_name()) continue;
    reached.push_back(j);
  }
  if (reached.empty()) return;
  auto join = std::make_shared<TmfJoin>();
  join->done = std::move(tmf.done);
  join->remaining = reached.size() + 1;
  tmf.done = [join](scstu_tmf_response r) {
    join->response.store(r);
    join->arrive();
  };
  for (Job* j : reached) {
    j->abort();
    j->waiters.push_back([join] { join->arrive(); });
  }
}

}  // namespace scstu::core
