// xcopy.h - the EXTENDED COPY (LID1) and RECEIVE COPY RESULTS formats
// (SPC-4 6.4, 6.18, 7.8.17): the parameter list parser, the limits the copy
// manager enforces and reports, and the data RECEIVE COPY RESULTS returns.
//
// Who executes a copy: the producer side's copy manager (core/copy_manager.h),
// which sees every logical unit of the target whatever handler process serves
// it. The device side (LogicalUnit) only advertises it (3PC bit, VPD 8Fh) when
// LogicalUnitConfig::third_party_copy says such a producer fronts it.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "scsi/sense.h"

namespace scstu::scsi {

class LogicalUnit;

// RECEIVE COPY OPERATING PARAMETERS (SPC-4 6.18.4) / VPD 8Fh: what EXTENDED
// COPY accepts.
inline constexpr uint16_t kMaxCopyTargetDescriptors = 4;
inline constexpr uint16_t kMaxCopySegmentDescriptors = 16;
inline constexpr uint32_t kCopyTargetDescriptorBytes = 32;
inline constexpr uint32_t kBlockSegmentDescriptorBytes = 28;
inline constexpr uint32_t kMaxCopyDescriptorListBytes =
    kMaxCopyTargetDescriptors * kCopyTargetDescriptorBytes +
    kMaxCopySegmentDescriptors * kBlockSegmentDescriptorBytes;
inline constexpr uint16_t kMaxConcurrentCopies = 16;
inline constexpr uint32_t kCopyParameterHeaderBytes = 16;

// One identification descriptor CSCD descriptor (E4h, SPC-4 6.4.5.1).
struct CopyTargetDescriptor {
  std::array<uint8_t, 20> designation{};  // bytes 4-23: a designation descriptor (7.8.6.1)
  uint32_t block_size = 0;                // DISK BLOCK LENGTH (bytes 29-31)
  uint16_t offset = 0;                    // of the descriptor in the parameter list
};

// One block device to block device segment descriptor (02h, SPC-4 6.4.6.4).
struct CopySegment {
  uint16_t source = 0;  // CSCD descriptor indexes
  uint16_t destination = 0;
  uint32_t blocks = 0;
  uint64_t source_lba = 0;
  uint64_t destination_lba = 0;
  uint16_t offset = 0;  // of the descriptor in the parameter list (field pointers)
};

struct CopyParameterList {
  uint8_t list_id = 0;
  uint8_t list_id_usage = 0;  // 00b held for RECEIVE COPY RESULTS, 10b/11b not held
  std::vector<CopyTargetDescriptor> targets;
  std::vector<CopySegment> segments;
};

// Why a parameter list is refused: CHECK CONDITION with this code and,
// when `field` is set, a field pointer into the parameter list.
struct CopyListError {
  SenseCode code;
  bool has_field = false;
  FieldPointer field{};
};

// Parses the `length` bytes EXTENDED COPY's PARAMETER LIST LENGTH gave
// (length > 0). The checks come in the order SPC-4 6.4 and libiscsi expect:
// header, segment descriptors (count, type, length), then CSCD descriptors.
std::variant<CopyParameterList, CopyListError> parse_copy_parameter_list(
    std::span<const uint8_t> list);

// True if the designation descriptor (code set, association/type, length,
// designator) equals one of `designators` (VPD 83h's descriptors). Only
// binary logical-unit designators are compared (SPC-4 6.4.5.1).
bool designation_matches(std::span<const uint8_t> designation, std::span<const uint8_t> vpd83_page);

// What a finished or running copy reports (SPC-4 6.18.3, 6.18.5).
struct CopyResult {
  bool done = false;
  uint8_t status = 0;  // SAM status of the EXTENDED COPY command
  uint16_t segments_processed = 0;
  uint64_t bytes = 0;
  std::vector<uint8_t> sense;  // of a failed copy
};

std::vector<uint8_t> copy_status_data(const CopyResult& r);                // 6.18.3
std::vector<uint8_t> failed_segment_details_data(const CopyResult& r);     // 6.18.5
std::vector<uint8_t> copy_operating_parameters_data(uint32_t block_size);  // 6.18.4

// The whole VPD page 8Fh (header included) for `lu`: Supported Commands,
// Parameter Data, Supported Descriptors, Supported CSCD Descriptor IDs and
// General Copy Operations descriptors.
std::vector<uint8_t> third_party_copy_vpd_page(const LogicalUnit& lu);

}  // namespace scstu::scsi
