#include "scsi/mode_select.h"

#include "scsi/cdb.h"

namespace scstu::scsi {

std::optional<ModeSelectError> apply_mode_select(ModePages& pages, const ModeSelectInput& in,
                                                 std::span<const uint8_t> params, bool* changed) {
  *changed = false;
  auto bad = [](SenseCode code, size_t at, uint8_t bit) {
    return ModeSelectError{code, FieldPointer{false, static_cast<uint16_t>(at), bit}};
  };
  const size_t header = in.ten_byte ? 8 : 4;
  if (params.size() < header) return bad(kParameterListLengthError, 0, kNoBit);
  // SPC-4 7.5.5: MODE DATA LENGTH is reserved in MODE SELECT.
  if (in.ten_byte ? (params[0] | params[1]) : params[0]) {
    return bad(kInvalidFieldInParameterList, 0, 7);
  }
  const size_t medium_type_at = in.ten_byte ? 2 : 1;
  if (params[medium_type_at] != 0) return bad(kInvalidFieldInParameterList, medium_type_at, 7);
  const bool long_lba = in.ten_byte && (params[4] & 0x01);
  const size_t bdl = in.ten_byte ? get_be16(&params[6]) : params[3];
  if (params.size() - header < bdl) return bad(kParameterListLengthError, header, kNoBit);
  const size_t bd_size = long_lba ? 16 : 8;
  if (bdl != 0) {
    // SBC-3 6.4.2: block descriptors exist for direct access devices only;
    // the block length cannot be changed here.
    if (in.device_type != 0x00 || bdl % bd_size != 0) {
      return bad(kInvalidFieldInParameterList, in.ten_byte ? 6 : 3, 7);
    }
    for (size_t at = header; at < header + bdl; at += bd_size) {
      const size_t len_at = long_lba ? at + 12 : at + 5;
      const uint32_t len = long_lba ? get_be32(&params[len_at]) : get_be24(&params[len_at]);
      if (len != in.block_size) return bad(kInvalidFieldInParameterList, len_at, 7);
    }
  }
  const size_t first_page = header + bdl;
  return pages.select(params.subspan(first_page), first_page, in.save, changed);
}

}  // namespace scstu::scsi
