// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4, 6.18): the copy
// manager of a logical unit, block device to block device.
//
// Supported: identification descriptor target descriptors (E4h) naming a
// unit of this process by designator (scsi/xcopy_targets.h), and
// block-to-block segment descriptors (02h). A copy runs as one chain of
// block requests: read a chunk from the source device, write it to the
// destination device, until every segment is done.
#include "scsi/xcopy.h"

#include <algorithm>
#include <cstring>

#include "scsi/cdb.h"
#include "scsi/command_context.h"
#include "scsi/emulation.h"
#include "scsi/logical_unit.h"
#include "scsi/sbc_advanced_job.h"
#include "scsi/xcopy_targets.h"

namespace scstu::scsi {

namespace {

// RECEIVE COPY OPERATING PARAMETERS (SPC-4 6.18.4), also what EXTENDED COPY
// enforces.
constexpr uint16_t kMaxTargetDescriptors = 4;
constexpr uint16_t kMaxSegmentDescriptors = 16;
constexpr uint32_t kTargetDescriptorBytes = 32;
constexpr uint32_t kBlockSegmentBytes = 28;
constexpr uint32_t kMaxDescriptorListBytes =
    kMaxTargetDescriptors * kTargetDescriptorBytes + kMaxSegmentDescriptors * kBlockSegmentBytes;
constexpr uint16_t kMaxConcurrentCopies = 16;
constexpr size_t kMaxHeldRecords = 256;
constexpr uint8_t kHeaderBytes = 16;

constexpr SenseCode kCopyAbortedInvalidField{0x0A, 0x26, 0x00};
// SPC-4 6.4.3.2 / 5.17.4: a segment whose CSCD descriptor index names no
// descriptor of the list refers to a copy target that cannot be reached.
constexpr SenseCode kUnreachableCopyTarget{0x0A, 0x08, 0x04};
// SPC-4 5.17.4: an error the copy target would report (here: blocks beyond
// its capacity) ends the copy with COPY ABORTED; the additional sense code
// says nothing more, INFORMATION holds the LBA and COMMAND-SPECIFIC
// INFORMATION the segment (libiscsi's ValidSegDescr accepts only 00/00,
// 08/04 or 0D/02 here).
constexpr SenseCode kCopyAbortedNoAdditionalSense{0x0A, 0x00, 0x00};
constexpr SenseCode kCopyAbortedWriteProtected{0x0A, 0x27, 0x00};
constexpr SenseCode kCopyAbortedReadError{0x0A, 0x11, 0x00};
constexpr SenseCode kCopyAbortedWriteError{0x0A, 0x0C, 0x00};
constexpr SenseCode kCopyAbortedTargetFailure{0x0A, 0x44, 0x00};
constexpr SenseCode kIllegalOperationInProgress{0x05, 0x00, 0x16};

struct Target {
  CopyTargets::Lease lease;
  uint32_t block_size = 0;
};

struct Segment {
  uint16_t source = 0;
  uint16_t destination = 0;
  uint32_t blocks = 0;
  uint64_t source_lba = 0;
  uint64_t destination_lba = 0;
  uint16_t offset = 0;  // of the descriptor in the parameter list (field pointers)
};

using RecordKey = std::pair<uint64_t, uint8_t>;

class CopyJob : public BlockJob {
 public:
  CopyJob(CommandContext& ctx, std::vector<Target> targets, std::vector<Segment> segments,
          std::optional<RecordKey> record)
      : BlockJob(ctx),
        targets_(std::move(targets)),
        segments_(std::move(segments)),
        record_(record) {
    hold_.owner = this;
    hold_.granted = [](LbaRangeLock::Holder& h) { static_cast<CopyJob*>(h.owner)->resume(); };
  }
  ~CopyJob() override { release_destination(); }

 protected:
  bool next(int error) override {
    if (error != 0) {
      return fail(ctx()
                      .sense(reading_ ? kCopyAbortedReadError : kCopyAbortedWriteError)
                      .command_specific(segment_));
    }
    if (reading_ || waiting_) return write_chunk();
    release_destination();
    if (in_flight_ != 0) {
      done_ += in_flight_;
      bytes_ += uint64_t{in_flight_} * block_size_;
      in_flight_ = 0;
    }
    while (segment_ < segments_.size() && done_ == segments_[segment_].blocks && started_) {
      ++segment_;
      done_ = 0;
      started_ = false;
    }
    if (segment_ == segments_.size()) return finish_good();
    if (!started_ && !start_segment()) return false;
    return read_chunk();
  }

 private:
  LogicalUnit& unit(uint16_t index) const { return *targets_[index].lease.unit(); }

  // Checks a segment against its targets before the first byte moves.
  bool start_segment() {
    const Segment& s = segments_[segment_];
    if (s.source >= targets_.size()) {
      return fail(ctx().sense(kUnreachableCopyTarget).parameter_field(s.offset + 4));
    }
    if (s.destination >= targets_.size()) {
      return fail(ctx().sense(kUnreachableCopyTarget).parameter_field(s.offset + 6));
    }
    LogicalUnit& src = unit(s.source);
    LogicalUnit& dst = unit(s.destination);
    if (src.block_device() == nullptr || dst.block_device() == nullptr ||
        src.block_size() != dst.block_size()) {
      return fail(ctx().sense(kCopyAbortedInvalidField).parameter_field(s.offset));
    }
    if (s.source_lba > src.capacity_blocks() || s.blocks > src.capacity_blocks() - s.source_lba) {
      return fail(ctx().sense(kCopyAbortedNoAdditionalSense).information(s.source_lba));
    }
    if (s.destination_lba > dst.capacity_blocks() ||
        s.blocks > dst.capacity_blocks() - s.destination_lba) {
      return fail(ctx().sense(kCopyAbortedNoAdditionalSense).information(s.destination_lba));
    }
    if (dst.software_write_protect() || dst.capabilities().read_only ||
        (&dst == &ctx().unit() && ctx().request().read_only)) {
      return fail(ctx().sense(kCopyAbortedWriteProtected));
    }
    block_size_ = src.block_size();
    chunk_blocks_ = static_cast<uint32_t>(std::max<size_t>(1, kChunkBytes / block_size_));
    if (buffer_.size() < size_t{chunk_blocks_} * block_size_) {
      buffer_ = AlignedBuffer(size_t{chunk_blocks_} * block_size_);
    }
    // Same unit, overlapping, destination after source: copy from the end
    // so no block is read after it was overwritten.
    backwards_ = &src == &dst && s.destination_lba > s.source_lba &&
                 s.destination_lba < s.source_lba + s.blocks;
    const WriteCacheMode mode = dst.config().write_cache;
    write_flags_ = (mode != WriteCacheMode::kNvCache && !dst.write_cache_enabled()) ? kBlockFua : 0;
    started_ = true;
    if (s.blocks == 0) return true;
    return true;
  }

  bool read_chunk() {
    const Segment& s = segments_[segment_];
    if (s.blocks == 0) {  // an empty segment: nothing to move
      in_flight_ = 0;
      return next(0);
    }
    in_flight_ = std::min(chunk_blocks_, s.blocks - done_);
    offset_ = backwards_ ? s.blocks - done_ - in_flight_ : done_;
    reading_ = true;
    submit(unit(s.source).block_device(), BlockOp::kRead, s.source_lba + offset_, in_flight_,
           buffer_.iov(size_t{in_flight_} * block_size_), 0);
    return true;
  }

  // The destination blocks of a chunk are held shared in the destination
  // unit's LbaRangeLock while written: no COMPARE AND WRITE interleaves.
  bool write_chunk() {
    const Segment& s = segments_[segment_];
    reading_ = false;
    if (!waiting_) {
      lock_ = &sbc_advanced_state(unit(s.destination)).ranges;
      hold_.lba = s.destination_lba + offset_;
      hold_.blocks = in_flight_;
      hold_.exclusive = false;
      holding_ = true;
      if (!lock_->acquire(hold_)) {
        waiting_ = true;  // granted() resumes us into write_chunk()
        return true;
      }
    }
    waiting_ = false;
    submit(unit(s.destination).block_device(), BlockOp::kWrite, s.destination_lba + offset_,
           in_flight_, buffer_.iov(size_t{in_flight_} * block_size_), write_flags_);
    return true;
  }

  void release_destination() {
    if (!holding_) return;
    holding_ = false;
    lock_->release(hold_);
  }

  void record(uint8_t status, const SenseData* sense) {
    if (!record_) return;
    SbcAdvancedState& st = sbc_advanced_state(ctx().unit());
    std::lock_guard lock(st.copies_mutex);
    CopyRecord& r = st.copies[*record_];
    r.done = true;
    r.status = status;
    r.segments_processed = static_cast<uint16_t>(segment_);
    r.bytes = bytes_;
    if (sense != nullptr) r.sense.assign(sense->span().begin(), sense->span().end());
  }

  bool fail(const SenseBuilder& b) {
    // SPC-4 6.4.3: COMMAND-SPECIFIC INFORMATION names the failed segment.
    const SenseData sense = SenseBuilder(b).command_specific(segment_).build();
    record(status::kCheckCondition, &sense);
    ctx().complete_check(sense);
    return false;
  }

  bool finish_good() {
    record(status::kGood, nullptr);
    ctx().complete_good(ctx().data_length());
    return false;
  }

  std::vector<Target> targets_;
  std::vector<Segment> segments_;
  std::optional<RecordKey> record_;
  size_t segment_ = 0;
  uint32_t done_ = 0;       // blocks of the current segment copied
  uint32_t in_flight_ = 0;  // blocks of the chunk being moved
  uint32_t offset_ = 0;     // of that chunk within the segment
  bool started_ = false;
  bool reading_ = false;
  bool backwards_ = false;
  uint32_t block_size_ = 0;
  uint32_t chunk_blocks_ = 0;
  uint32_t write_flags_ = 0;
  uint64_t bytes_ = 0;
  AlignedBuffer buffer_;
  LbaRangeLock* lock_ = nullptr;
  LbaRangeLock::Holder hold_;
  bool holding_ = false;
  bool waiting_ = false;
};

}  // namespace

// SPC-4 6.4.1 EXTENDED COPY (LID1). Parameter list header: LIST IDENTIFIER
// (0), STR (1 bit 5), LIST ID USAGE (1 bits 4:3), PRIORITY (1 bits 2:0),
// CSCD DESCRIPTOR LIST LENGTH (2-3), SEGMENT DESCRIPTOR LIST LENGTH (8-11),
// INLINE DATA LENGTH (12-15); then the target and segment descriptors.
void sbc_extended_copy(CommandContext& ctx) {
  const uint32_t length = get_be32(&ctx.cdb()[10]);
  if (length == 0) return ctx.complete_good(0);  // 6.4.1: not an error
  if (length < kHeaderBytes || ctx.data_length() < length) {
    return ctx.complete_check(kParameterListLengthError);
  }
  std::vector<uint8_t> p(length);
  ctx.read_parameters(p);
  const uint8_t list_id = p[0];
  const uint8_t usage = (p[1] >> 3) & 0x03;
  if (usage == 0x01) return ctx.complete_check(kInvalidFieldInParameterList, {false, 1, 4});
  const uint32_t target_bytes = get_be16(&p[2]);
  const uint32_t segment_bytes = get_be32(&p[8]);
  const uint32_t inline_bytes = get_be32(&p[12]);
  if (uint64_t{kHeaderBytes} + target_bytes + segment_bytes + inline_bytes > length) {
    return ctx.complete_check(kParameterListLengthError);
  }
  if (uint64_t{target_bytes} + segment_bytes > kMaxDescriptorListBytes) {
    return ctx.complete_check(kParameterListLengthError);
  }
  if (inline_bytes != 0) {  // RECEIVE COPY OPERATING PARAMETERS: no inline data
    return ctx.complete_check(kInvalidFieldInParameterList, {false, 12, kNoBit});
  }
  if (target_bytes % kTargetDescriptorBytes != 0) {
    return ctx.complete_check(kInvalidFieldInParameterList, {false, 2, kNoBit});
  }
  const size_t target_count = target_bytes / kTargetDescriptorBytes;
  if (target_count > kMaxTargetDescriptors) {
    return ctx.complete_check(kTooManyTargetDescriptors, {false, 2, kNoBit});
  }

  // Segment descriptors first (counted and typed), so their errors are
  // reported before any target is looked up.
  std::vector<Segment> segments;
  for (uint32_t at = 0; at < segment_bytes;) {
    const uint16_t off = static_cast<uint16_t>(kHeaderBytes + target_bytes + at);
    if (segment_bytes - at < 4) return ctx.complete_check(kParameterListLengthError);
    const uint8_t* d = &p[off];
    const uint32_t desc_length = 4u + get_be16(&d[2]);
    if (d[0] != 0x02) {
      return ctx.complete_check(kUnsupportedSegmentDescriptorType, {false, off, kNoBit});
    }
    if (segments.size() == kMaxSegmentDescriptors) {
      return ctx.complete_check(kTooManySegmentDescriptors, {false, 8, kNoBit});
    }
    if (desc_length != kBlockSegmentBytes) {
      return ctx.complete_check(kInvalidFieldInParameterList,
                                {false, static_cast<uint16_t>(off + 2), kNoBit});
    }
    if (segment_bytes - at < desc_length) return ctx.complete_check(kParameterListLengthError);
    Segment s;
    s.source = get_be16(&d[4]);
    s.destination = get_be16(&d[6]);
    s.blocks = get_be16(&d[10]);
    s.source_lba = get_be64(&d[12]);
    s.destination_lba = get_be64(&d[20]);
    s.offset = off;
    segments.push_back(s);
    at += desc_length;
  }

  std::vector<Target> targets;
  for (size_t i = 0; i < target_count; ++i) {
    const uint16_t off = static_cast<uint16_t>(kHeaderBytes + i * kTargetDescriptorBytes);
    const uint8_t* d = &p[off];
    if (d[0] != 0xE4) {
      return ctx.complete_check(kUnsupportedTargetDescriptorType, {false, off, kNoBit});
    }
    // Byte 1: LU ID TYPE (ignored, SPC-4), NUL (obsolete), PERIPHERAL DEVICE
    // TYPE (4:0): only block devices here.
    if ((d[1] & 0x1F) != 0x00) {
      return ctx.complete_check(kUnsupportedTargetDescriptorType,
                                {false, static_cast<uint16_t>(off + 1), 4});
    }
    Target t;
    t.lease = CopyTargets::process().find(std::span<const uint8_t>(d + 4, 20), ctx.unit());
    if (!t.lease) return ctx.complete_check(kCopyTargetDeviceNotReachable);
    // Block device type specific parameters: DISK BLOCK LENGTH (29-31).
    t.block_size = get_be24(&d[29]);
    if (t.block_size != t.lease.unit()->block_size()) {
      return ctx.complete_check(
          ctx.sense(kCopyAbortedInvalidField).parameter_field(static_cast<uint16_t>(off + 29)));
    }
    targets.push_back(std::move(t));
  }

  // LIST ID USAGE 00b: results are held for RECEIVE COPY RESULTS; the list
  // identifier must not be in use by a copy still running (6.4.3.2).
  std::optional<RecordKey> key;
  if (usage == 0x00) {
    key = RecordKey{ctx.task.nexus, list_id};
    SbcAdvancedState& st = sbc_advanced_state(ctx.unit());
    std::lock_guard lock(st.copies_mutex);
    auto it = st.copies.find(*key);
    if (it != st.copies.end() && !it->second.done) {
      return ctx.complete_check(kIllegalOperationInProgress);
    }
    if (st.copies.size() >= kMaxHeldRecords) {
      for (auto r = st.copies.begin(); r != st.copies.end(); ++r) {
        if (r->second.done) {
          st.copies.erase(r);
          break;
        }
      }
    }
    st.copies[*key] = CopyRecord{};
  }
  BlockJob::start(std::make_unique<CopyJob>(ctx, std::move(targets), std::move(segments), key));
}

namespace {

void copy_status(CommandContext& ctx) {
  const uint8_t list_id = ctx.cdb()[2];
  SbcAdvancedState& st = sbc_advanced_state(ctx.unit());
  CopyRecord r;
  {
    std::lock_guard lock(st.copies_mutex);
    auto it = st.copies.find({ctx.task.nexus, list_id});
    if (it == st.copies.end()) return ctx.complete_check(kInvalidFieldInCdb, {true, 2, kNoBit});
    r = it->second;
  }
  // SPC-4 6.18.3: AVAILABLE DATA (8), COPY MANAGER STATUS (byte 4: 00h in
  // progress, 01h completed without errors, 02h with errors), SEGMENTS
  // PROCESSED (5-6), TRANSFER COUNT UNITS (7), TRANSFER COUNT (8-11).
  std::vector<uint8_t> out(12, 0);
  put_be32(&out[0], 8);
  out[4] = !r.done ? 0x00 : (r.status == status::kGood ? 0x01 : 0x02);
  put_be16(&out[5], r.segments_processed);
  if (r.bytes <= 0xFFFFFFFFu) {
    out[7] = 0x00;  // bytes
    put_be32(&out[8], static_cast<uint32_t>(r.bytes));
  } else {
    out[7] = 0xF1;  // kibibytes
    put_be32(&out[8], static_cast<uint32_t>(std::min<uint64_t>(r.bytes >> 10, 0xFFFFFFFFu)));
  }
  ctx.complete_data_in(out);
}

void operating_parameters(CommandContext& ctx) {
  // SPC-4 6.18.4.
  static constexpr uint8_t kDescriptorTypes[] = {0x02, 0xE4};
  std::vector<uint8_t> out(44 + sizeof(kDescriptorTypes), 0);
  put_be32(&out[0], static_cast<uint32_t>(out.size() - 4));
  out[4] = 0x01;  // SNLID: list identifiers are honoured
  put_be16(&out[8], kMaxTargetDescriptors);
  put_be16(&out[10], kMaxSegmentDescriptors);
  put_be32(&out[12], kMaxDescriptorListBytes);
  const uint64_t max_segment = uint64_t{0xFFFF} * ctx.block_size();
  put_be32(&out[16], static_cast<uint32_t>(std::min<uint64_t>(max_segment, 0xFFFFFFFFu)));
  put_be32(&out[20], 0);  // MAXIMUM INLINE DATA LENGTH
  put_be32(&out[24], 0);  // HELD DATA LIMIT: no RECEIVE COPY DATA
  put_be32(&out[28], 0);  // MAXIMUM STREAM DEVICE TRANSFER SIZE
  put_be16(&out[34], kMaxConcurrentCopies);
  out[36] = static_cast<uint8_t>(kMaxConcurrentCopies);
  out[43] = sizeof(kDescriptorTypes);
  std::memcpy(&out[44], kDescriptorTypes, sizeof(kDescriptorTypes));
  ctx.complete_data_in(out);
}

void failed_segment_details(CommandContext& ctx) {
  const uint8_t list_id = ctx.cdb()[2];
  SbcAdvancedState& st = sbc_advanced_state(ctx.unit());
  CopyRecord r;
  {
    std::lock_guard lock(st.copies_mutex);
    auto it = st.copies.find({ctx.task.nexus, list_id});
    if (it == st.copies.end()) return ctx.complete_check(kInvalidFieldInCdb, {true, 2, kNoBit});
    r = it->second;
  }
  // SPC-4 6.18.5: nothing to report for a copy in progress or one that
  // succeeded (AVAILABLE DATA 0); else COPY COMMAND STATUS (56), SENSE
  // DATA LENGTH (58-59) and the sense data (60...).
  if (!r.done || r.status == status::kGood) {
    std::vector<uint8_t> out(60, 0);
    return ctx.complete_data_in(out);
  }
  std::vector<uint8_t> out(60 + r.sense.size(), 0);
  put_be32(&out[0], static_cast<uint32_t>(out.size() - 4));
  out[56] = r.status;
  put_be16(&out[58], static_cast<uint16_t>(r.sense.size()));
  std::memcpy(&out[60], r.sense.data(), r.sense.size());
  ctx.complete_data_in(out);
}

}  // namespace

// SPC-4 6.18: service action in byte 1; LIST IDENTIFIER byte 2; ALLOCATION
// LENGTH bytes 10-13 (the framework truncates the data-in to it).
void sbc_receive_copy_results(CommandContext& ctx) {
  switch (ctx.cdb()[1] & 0x1F) {
    case 0x00:
      return copy_status(ctx);
    case 0x03:
      return operating_parameters(ctx);
    case 0x04:
      return failed_segment_details(ctx);
    default:
      return ctx.complete_check(kInvalidFieldInCdb, {true, 1, 4});
  }
}

namespace {

// One third-party copy descriptor: TYPE (2), LENGTH (2), the body padded
// to a multiple of 4 bytes.
void tpc_descriptor(std::vector<uint8_t>& page, uint16_t type, std::vector<uint8_t> body) {
  body.resize((body.size() + 3) / 4 * 4, 0);
  const size_t at = page.size();
  page.resize(at + 4, 0);
  put_be16(&page[at], type);
  put_be16(&page[at + 2], static_cast<uint16_t>(body.size()));
  page.insert(page.end(), body.begin(), body.end());
}

}  // namespace

std::vector<uint8_t> third_party_copy_vpd_page(const LogicalUnit& lu) {
  std::vector<uint8_t> page(4, 0);
  page[0] = lu.device_type() & 0x1F;
  page[1] = 0x8F;
  // 0001h Supported Commands: COMMANDS SUPPORTED LIST LENGTH, then per
  // command its opcode, SERVICE ACTION LIST LENGTH and service actions.
  tpc_descriptor(page, 0x0001, {8, 0x83, 1, 0x00, 0x84, 3, 0x00, 0x03, 0x04});
  // 0004h Parameter Data: reserved (4), MAXIMUM CSCD DESCRIPTOR COUNT (2),
  // MAXIMUM SEGMENT DESCRIPTOR COUNT (2), MAXIMUM DESCRIPTOR LIST LENGTH (4),
  // MAXIMUM INLINE DATA LENGTH (4), reserved.
  std::vector<uint8_t> params(28, 0);
  put_be16(&params[4], kMaxTargetDescriptors);
  put_be16(&params[6], kMaxSegmentDescriptors);
  put_be32(&params[8], kMaxDescriptorListBytes);
  tpc_descriptor(page, 0x0004, params);
  // 0008h Supported Descriptors: block to block segments, identification
  // target descriptors.
  tpc_descriptor(page, 0x0008, {2, 0x02, 0xE4});
  // 000Ch Supported CSCD Descriptor IDs: none (no null or ROD CSCDs).
  tpc_descriptor(page, 0x000C, {0, 0});
  // 8001h General Copy Operations: TOTAL CONCURRENT COPIES (4), MAXIMUM
  // IDENTIFIED CONCURRENT COPIES (4), MAXIMUM SEGMENT LENGTH (4), DATA
  // SEGMENT GRANULARITY (log2), INLINE DATA GRANULARITY (log2).
  std::vector<uint8_t> general(32, 0);
  put_be32(&general[0], kMaxConcurrentCopies);
  put_be32(&general[4], kMaxConcurrentCopies);
  const uint64_t max_segment = uint64_t{0xFFFF} * lu.block_size();
  put_be32(&general[8], static_cast<uint32_t>(std::min<uint64_t>(max_segment, 0xFFFFFFFFu)));
  tpc_descriptor(page, 0x8001, general);
  put_be16(&page[2], static_cast<uint16_t>(page.size() - 4));
  return page;
}

}  // namespace scstu::scsi
