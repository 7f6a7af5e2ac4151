// Fuzz target: the EXTENDED COPY (LID1) parameter list parser and the VPD 83h
// designator match the copy manager runs on untrusted input. Invariants:
// every descriptor it returns lies inside the list, counts stay within the
// advertised limits, an error's field pointer points inside the list.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

#include "scsi/xcopy.h"

using namespace scstu;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> list(data, size);
  auto parsed = scsi::parse_copy_parameter_list(list);
  if (auto* e = std::get_if<scsi::CopyListError>(&parsed)) {
    if (e->has_field && e->field.field >= size) std::abort();
    return 0;
  }
  const auto& p = std::get<scsi::CopyParameterList>(parsed);
  if (p.targets.size() > scsi::kMaxCopyTargetDescriptors) std::abort();
  if (p.segments.size() > scsi::kMaxCopySegmentDescriptors) std::abort();
  if (p.list_id_usage == 0x01) std::abort();
  for (const auto& t : p.targets) {
    if (t.offset + scsi::kCopyTargetDescriptorBytes > size) std::abort();
    // The rest of the input as a VPD 83h page.
    (void)scsi::designation_matches(t.designation, list.subspan(t.offset));
  }
  for (const auto& s : p.segments) {
    if (s.offset + scsi::kBlockSegmentDescriptorBytes > size) std::abort();
  }
  return 0;
}
