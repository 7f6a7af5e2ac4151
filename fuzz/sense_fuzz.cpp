// Fuzz target: the sense data parser (scsi/sense.* parse_sense) on bytes a
// handler process returns: the producer's copy manager reads the sense of
// the READ/WRITE commands it issues to learn why a segment failed, and tests
// and statistics parse it too. Invariants: the parser never reads past the
// buffer; what it finds, rebuilt by SenseBuilder in either format, parses
// back to the same key, codes, information, field pointer and stream bits.
#include <cstdint>
#include <cstdlib>

#include "scsi/sense.h"

using namespace scstu::scsi;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kSenseBufferSize) return 0;
  const ParsedSense p = parse_sense({data, size});
  if (!p.valid) return 0;
  for (SenseFormat f : {SenseFormat::kFixed, SenseFormat::kDescriptor}) {
    SenseBuilder b(f, SenseCode{static_cast<uint8_t>(p.code.key & 0x0F), p.code.asc, p.code.ascq});
    // Fixed format carries 32 bits of INFORMATION.
    const bool info_fits =
        p.information && (f == SenseFormat::kDescriptor || *p.information <= UINT32_MAX);
    if (info_fits) b.information(*p.information);
    if (p.field) b.field_pointer(*p.field);
    if (p.progress && !p.field) b.progress(*p.progress);
    if (p.filemark) b.filemark();
    if (p.eom) b.end_of_medium();
    if (p.ili) b.incorrect_length();
    if (p.deferred) b.deferred();
    const SenseData s = b.build();
    const ParsedSense q = parse_sense(s.span());
    if (!q.valid || q.format != f || q.deferred != p.deferred ||
        q.code.sense_key() != p.code.sense_key() || q.code.asc != p.code.asc ||
        q.code.ascq != p.code.ascq || q.filemark != p.filemark || q.eom != p.eom ||
        q.ili != p.ili) {
      std::abort();
    }
    if (info_fits && q.information != p.information) std::abort();
    if (p.field && (!q.field || q.field->in_cdb != p.field->in_cdb ||
                    q.field->field != p.field->field || q.field->bit != p.field->bit)) {
      std::abort();
    }
  }
  return 0;
}
