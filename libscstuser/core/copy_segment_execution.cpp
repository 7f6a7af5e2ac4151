// Block-to-block segments (SPC-4 6.4.6.5, descriptor 02h): each is checked
// against its copy targets before the first byte moves, then moved in chunks
// (READ(16) of the source, WRITE(16) of the destination with the read's
// data), up to kChunksInFlight chunks at once.
//
// What a copy moving one chunk at a time would do is kept:
// - an overlapping copy within one unit moves one chunk at a time, from the
//   end when the destination is after the source (memmove), so no block is
//   read after it was overwritten;
// - after a failure no further chunk starts; the chunks in flight end (no
//   write lands after the EXTENDED COPY's status); those before the failed
//   one in copy order are still written, those after are not; the copy
//   reports the first failed chunk in copy order, and the bytes before it;
// - after an abort no WRITE starts; the copy ends once nothing is in flight;
// - a READ or WRITE refused BUSY / TASK SET FULL stays in flight until it is
//   sent again (CopyJob::retry_later): its chunk keeps its index, so a
//   failure after the retry bound is ordered like any other; once an
//   earlier chunk failed, a refused command of a later one is not sent again.
#include <algorithm>
#include <cstring>

#include "core/copy_job.h"
#include "core/copy_manager.h"
#include "core/exported_device.h"
#include "core/lun.h"
#include "core/session.h"
#include "scsi/cdb.h"

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

void rw16(uint8_t* cdb, uint8_t opcode, uint64_t lba, uint32_t blocks) {
  std::memset(cdb, 0, 16);
  cdb[0] = opcode;
  scsi::put_be64(&cdb[2], lba);
  scsi::put_be32(&cdb[10], blocks);
}

}  // namespace

bool CopyJob::start_segment() {
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
  issued_ = 0;
  written_blocks_ = 0;
  next_index_ = 0;
  failed_index_.reset();
  const bool same_unit = src.route->exported() == dst.route->exported();
  const bool overlapping = same_unit && s.destination_lba < s.source_lba + s.blocks &&
                           s.source_lba < s.destination_lba + s.blocks;
  backwards_ = overlapping && s.destination_lba > s.source_lba;
  depth_ = overlapping ? 1 : kChunksInFlight;
  return issue_chunks();
}

// False after failing the copy.
bool CopyJob::segment_valid(const scsi::CopySegment& s) {
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

// Handles every chunk command that completed, then starts what may start.
bool CopyJob::segment_events() {
  for (Chunk& k : chunks_) {
    if (k.state == Chunk::State::kReading && take(k.read)) chunk_read(k);
    if (k.state == Chunk::State::kWriting && take(k.write)) chunk_written(k);
  }
  return issue_chunks();
}

void CopyJob::chunk_read(Chunk& k) {
  const scsi::CopySegment& s = list_.segments[segment_];
  const Target& dst = targets_[s.destination];
  if (!k.read.good() || k.read.cmd.transferred < k.blocks * dst.block_size) {
    return chunk_failed(k, k.read, true);
  }
  const bool after_failure = failed_index_ && k.index > *failed_index_;
  if (aborted_.load(std::memory_order_acquire) || after_failure) return free_chunk(k);
  uint8_t cdb[16];
  rw16(cdb, 0x8A, s.destination_lba + k.offset, k.blocks);
  k.state = Chunk::State::kWriting;
  issue(k.write, dst.route, cdb, k.blocks * dst.block_size, DataDirection::kWrite, &k.read);
}

void CopyJob::chunk_written(Chunk& k) {
  if (!k.write.good()) return chunk_failed(k, k.write, false);
  written_blocks_ += k.blocks;
  free_chunk(k);
}

void CopyJob::chunk_failed(Chunk& k, const InternalCommand& c, bool source) {
  if (!failed_index_ || k.index < *failed_index_) {
    failed_index_ = k.index;
    failed_sense_ = failure_sense(c, source);
    // Commands waiting after BUSY go now: those of later chunks are then
    // not needed (retry_later), the copy ends without waiting out pauses.
    manager_.retries_.hurry(this);
  }
  free_chunk(k);
}

// False for a command of a chunk after the first failed one in copy order:
// its data would be dropped, or (a WRITE) it would land beyond the point a
// copy moving one chunk at a time stops at. Not sent again after BUSY.
bool CopyJob::needed(const InternalCommand& c) const {
  if (phase_ != Phase::kSegments || !failed_index_) return true;
  for (const Chunk& k : chunks_) {
    if (&k.read == &c || &k.write == &c) return k.index < *failed_index_;
  }
  return true;
}

void CopyJob::free_chunk(Chunk& k) {
  release(k.write);
  release(k.read);
  k.state = Chunk::State::kFree;
  if (k.extra) {
    k.extra = false;
    manager_.return_extra_chunk();
  }
}

// Sends READs into free chunks while the segment has blocks left and the
// copy may go on; ends the segment (or the copy) once nothing is in flight.
bool CopyJob::issue_chunks() {
  const scsi::CopySegment& s = list_.segments[segment_];
  const Target& src = targets_[s.source];
  const bool stop = aborted_.load(std::memory_order_acquire) || failed_index_.has_value();
  size_t busy = 0;
  for (const Chunk& k : chunks_) busy += k.state != Chunk::State::kFree;
  for (Chunk& k : chunks_) {
    if (stop || issued_ == s.blocks || busy >= depth_) break;
    if (k.state != Chunk::State::kFree) continue;
    // The first chunk is the copy's own; more come from the shared budget.
    if (busy > 0 && !manager_.take_extra_chunk()) break;
    k.extra = busy > 0;
    k.index = next_index_++;
    k.blocks = std::min(chunk_blocks_, s.blocks - issued_);
    k.offset = backwards_ ? s.blocks - issued_ - k.blocks : issued_;
    issued_ += k.blocks;
    ++busy;
    uint8_t cdb[16];
    rw16(cdb, 0x88, s.source_lba + k.offset, k.blocks);
    k.state = Chunk::State::kReading;
    issue(k.read, src.route, cdb, k.blocks * src.block_size, DataDirection::kRead);
  }
  if (busy != 0) return false;
  const uint32_t bs = targets_[s.destination].block_size;
  if (aborted_.load(std::memory_order_acquire)) {
    bytes_ += written_blocks_ * bs;
    return finish_aborted();
  }
  if (failed_index_) {
    // Every chunk before the failed one was written (else it would be the
    // first failed); all but a segment's last chunk are chunk_blocks_ long.
    bytes_ += std::min<uint64_t>(*failed_index_ * chunk_blocks_, s.blocks) * bs;
    const scsi::SenseData sense = failed_sense_;
    end(status::kCheckCondition, sense.span());
    return true;
  }
  bytes_ += uint64_t{s.blocks} * bs;
  ++segment_;
  return start_segment();
}

}  // namespace scstu::core
