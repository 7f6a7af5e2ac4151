// xcopy.h - what the copy manager (scsi/xcopy.cpp) tells others about
// itself: the Third-party Copy VPD page (SPC-4 7.8.17) for INQUIRY.
#pragma once

#include <cstdint>
#include <vector>

namespace scstu::scsi {

class LogicalUnit;

// The whole VPD page 8Fh (header included) for `lu`: Supported Commands,
// Parameter Data, Supported Descriptors, Supported CSCD Descriptor IDs and
// General Copy Operations descriptors, matching what EXTENDED COPY and
// RECEIVE COPY RESULTS enforce and report.
std::vector<uint8_t> third_party_copy_vpd_page(const LogicalUnit& lu);

}  // namespace scstu::scsi
