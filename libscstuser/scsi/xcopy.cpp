// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS formats (SPC-4 6.4, 6.18,
// 7.8.17). Execution lives in core/copy_manager.cpp.
#include "scsi/xcopy.h"

#include <algorithm>
#include <cstring>

#include "scsi/cdb.h"
#include "scsi/logical_unit.h"

namespace scstu::scsi {

namespace {

CopyListError error(SenseCode code) { return CopyListError{code, false, {}}; }
CopyListError error(SenseCode code, uint16_t field, uint8_t bit = kNoBit) {
  return CopyListError{code, true, FieldPointer{false, field, bit}};
}

}  // namespace

// SPC-4 6.4.1 EXTENDED COPY (LID1). Parameter list header: LIST IDENTIFIER
// (0), STR (1 bit 5), LIST ID USAGE (1 bits 4:3), PRIORITY (1 bits 2:0),
// CSCD DESCRIPTOR LIST LENGTH (2-3), SEGMENT DESCRIPTOR LIST LENGTH (8-11),
// INLINE DATA LENGTH (12-15); then the CSCD and segment descriptors.
std::variant<CopyParameterList, CopyListError> parse_copy_parameter_list(
    std::span<const uint8_t> p) {
  const size_t length = p.size();
  if (length < kCopyParameterHeaderBytes) return error(kParameterListLengthError);
  CopyParameterList out;
  out.list_id = p[0];
  out.list_id_usage = (p[1] >> 3) & 0x03;
  if (out.list_id_usage == 0x01) return error(kInvalidFieldInParameterList, 1, 4);
  const uint32_t target_bytes = get_be16(&p[2]);
  const uint32_t segment_bytes = get_be32(&p[8]);
  const uint32_t inline_bytes = get_be32(&p[12]);
  if (uint64_t{kCopyParameterHeaderBytes} + target_bytes + segment_bytes + inline_bytes > length) {
    return error(kParameterListLengthError);
  }
  if (uint64_t{target_bytes} + segment_bytes > kMaxCopyDescriptorListBytes) {
    return error(kParameterListLengthError);
  }
  if (inline_bytes != 0) return error(kInvalidFieldInParameterList, 12);  // no inline data
  if (target_bytes % kCopyTargetDescriptorBytes != 0) {
    return error(kInvalidFieldInParameterList, 2);
  }
  const size_t target_count = target_bytes / kCopyTargetDescriptorBytes;
  if (target_count > kMaxCopyTargetDescriptors) return error(kTooManyTargetDescriptors, 2);

  // Segment descriptors first (counted and typed), so their errors are
  // reported before any CSCD is looked at.
  for (uint32_t at = 0; at < segment_bytes;) {
    const uint16_t off = static_cast<uint16_t>(kCopyParameterHeaderBytes + target_bytes + at);
    if (segment_bytes - at < 4) return error(kParameterListLengthError);
    const uint8_t* d = &p[off];
    const uint32_t desc_length = 4u + get_be16(&d[2]);
    if (d[0] != 0x02) return error(kUnsupportedSegmentDescriptorType, off);
    if (out.segments.size() == kMaxCopySegmentDescriptors) {
      return error(kTooManySegmentDescriptors, 8);
    }
    if (desc_length != kBlockSegmentDescriptorBytes) {
      return error(kInvalidFieldInParameterList, static_cast<uint16_t>(off + 2));
    }
    if (segment_bytes - at < desc_length) return error(kParameterListLengthError);
    CopySegment s;
    s.source = get_be16(&d[4]);
    s.destination = get_be16(&d[6]);
    s.blocks = get_be16(&d[10]);
    s.source_lba = get_be64(&d[12]);
    s.destination_lba = get_be64(&d[20]);
    s.offset = off;
    out.segments.push_back(s);
    at += desc_length;
  }

  for (size_t i = 0; i < target_count; ++i) {
    const uint16_t off =
        static_cast<uint16_t>(kCopyParameterHeaderBytes + i * kCopyTargetDescriptorBytes);
    const uint8_t* d = &p[off];
    if (d[0] != 0xE4) return error(kUnsupportedTargetDescriptorType, off);
    // Byte 1: LU ID TYPE (ignored, SPC-4), NUL (obsolete), PERIPHERAL DEVICE
    // TYPE (4:0): only block devices here.
    if ((d[1] & 0x1F) != 0x00) {
      return error(kUnsupportedTargetDescriptorType, static_cast<uint16_t>(off + 1), 4);
    }
    CopyTargetDescriptor t;
    std::memcpy(t.designation.data(), d + 4, t.designation.size());
    t.block_size = get_be24(&d[29]);  // block device type specific: DISK BLOCK LENGTH
    t.offset = off;
    out.targets.push_back(t);
  }
  return out;
}

bool designation_matches(std::span<const uint8_t> d, std::span<const uint8_t> page) {
  // SPC-4 7.8.6.1: byte 0 CODE SET (3:0); byte 1 ASSOCIATION (5:4),
  // DESIGNATOR TYPE (3:0); byte 3 DESIGNATOR LENGTH; then the designator.
  if (d.size() < 4) return false;
  const uint8_t code_set = d[0] & 0x0F;
  const uint8_t association = (d[1] >> 4) & 0x03;
  const uint8_t type = d[1] & 0x0F;
  const size_t length = d[3];
  if (code_set != 0x01 || association != 0 || d.size() < 4 + length || length == 0) return false;
  if (type != 0x02 && type != 0x03) return false;  // EUI-64, NAA
  if (page.size() < 4 || page[1] != 0x83) return false;
  const size_t end = std::min<size_t>(page.size(), 4 + get_be16(&page[2]));
  for (size_t at = 4; at + 4 <= end;) {
    const uint8_t* e = &page[at];
    const size_t e_length = e[3];
    if (at + 4 + e_length > end) break;
    if ((e[0] & 0x0F) == code_set && ((e[1] >> 4) & 0x03) == association && (e[1] & 0x0F) == type &&
        e_length == length && std::memcmp(e + 4, d.data() + 4, length) == 0) {
      return true;
    }
    at += 4 + e_length;
  }
  return false;
}

// SPC-4 6.18.3: AVAILABLE DATA (8), COPY MANAGER STATUS (byte 4: 00h in
// progress, 01h completed without errors, 02h with errors), SEGMENTS
// PROCESSED (5-6), TRANSFER COUNT UNITS (7), TRANSFER COUNT (8-11).
std::vector<uint8_t> copy_status_data(const CopyResult& r) {
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
  return out;
}

// SPC-4 6.18.5: nothing to report for a copy in progress or one that
// succeeded (AVAILABLE DATA 0); else COPY COMMAND STATUS (56), SENSE DATA
// LENGTH (58-59) and the sense data (60...).
std::vector<uint8_t> failed_segment_details_data(const CopyResult& r) {
  if (!r.done || r.status == status::kGood) return std::vector<uint8_t>(60, 0);
  std::vector<uint8_t> out(60 + r.sense.size(), 0);
  put_be32(&out[0], static_cast<uint32_t>(out.size() - 4));
  out[56] = r.status;
  put_be16(&out[58], static_cast<uint16_t>(r.sense.size()));
  if (!r.sense.empty()) std::memcpy(&out[60], r.sense.data(), r.sense.size());
  return out;
}

// SPC-4 6.18.4.
std::vector<uint8_t> copy_operating_parameters_data(uint32_t block_size) {
  static constexpr uint8_t kDescriptorTypes[] = {0x02, 0xE4};
  std::vector<uint8_t> out(44 + sizeof(kDescriptorTypes), 0);
  put_be32(&out[0], static_cast<uint32_t>(out.size() - 4));
  out[4] = 0x01;  // SNLID: list identifiers are honoured
  put_be16(&out[8], kMaxCopyTargetDescriptors);
  put_be16(&out[10], kMaxCopySegmentDescriptors);
  put_be32(&out[12], kMaxCopyDescriptorListBytes);
  const uint64_t max_segment = uint64_t{0xFFFF} * block_size;
  put_be32(&out[16], static_cast<uint32_t>(std::min<uint64_t>(max_segment, 0xFFFFFFFFu)));
  put_be32(&out[20], 0);  // MAXIMUM INLINE DATA LENGTH
  put_be32(&out[24], 0);  // HELD DATA LIMIT: no RECEIVE COPY DATA
  put_be32(&out[28], 0);  // MAXIMUM STREAM DEVICE TRANSFER SIZE
  put_be16(&out[34], kMaxConcurrentCopies);
  out[36] = static_cast<uint8_t>(kMaxConcurrentCopies);
  out[43] = sizeof(kDescriptorTypes);
  std::memcpy(&out[44], kDescriptorTypes, sizeof(kDescriptorTypes));
  return out;
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
  put_be16(&params[4], kMaxCopyTargetDescriptors);
  put_be16(&params[6], kMaxCopySegmentDescriptors);
  put_be32(&params[8], kMaxCopyDescriptorListBytes);
  tpc_descriptor(page, 0x0004, params);
  // 0008h Supported Descriptors: block to block segments, identification
  // CSCD descriptors.
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
