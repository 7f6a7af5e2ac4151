// Fuzz the iSCSI PDU codec: every opcode's decode/encode on arbitrary 48-byte
// headers, the length checks, and the AHS parser on arbitrary AHS areas.
// Invariants: nothing reads outside its input (ASan), decode(encode(x))
// keeps every field, and check_lengths() bounds what would be allocated.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "iscsi/crc32c.h"
#include "iscsi/pdu.h"

using namespace scstu::iscsi;

#define CHECK(c)            \
  do {                      \
    if (!(c)) std::abort(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kBhsSize) return 0;
  Bhs h;
  std::memcpy(h.b.data(), data, kBhsSize);
  std::span<const uint8_t> rest(data + kBhsSize, size - kBhsSize);

  const char* err = check_lengths(h, 256 * 1024);
  if (!err) CHECK(h.data_length() <= 256 * 1024);
  if (!err && h.ahs_bytes()) CHECK(h.opcode() == Opcode::kScsiCommand);

  // The AHS parser on whatever follows, bounded as the connection bounds it.
  AhsInfo info;
  std::span<const uint8_t> ahs = rest.subspan(0, std::min(rest.size(), h.ahs_bytes()));
  if (!parse_ahs(ahs, info)) {
    CHECK(info.extended_cdb.size() <= ahs.size());
    if (!info.extended_cdb.empty())
      CHECK(info.extended_cdb.data() >= ahs.data() &&
            info.extended_cdb.data() + info.extended_cdb.size() <= ahs.data() + ahs.size());
  }

  // Round trips: decode, encode, decode again gives the same view.
  Bhs out;
  {
    auto a = ScsiCommandPdu::decode(h);
    a.encode(out);
    auto b = ScsiCommandPdu::decode(out);
    CHECK(a.itt == b.itt && a.lun == b.lun && a.cdb == b.cdb && a.attr == b.attr &&
          a.expected_length == b.expected_length && a.cmdsn == b.cmdsn);
  }
  {
    auto a = DataOutPdu::decode(h);
    a.encode(out, h.data_length());
    auto b = DataOutPdu::decode(out);
    CHECK(a.buffer_offset == b.buffer_offset && a.datasn == b.datasn && a.ttt == b.ttt);
  }
  {
    auto a = LoginPdu::decode(h);
    a.encode(out, Opcode::kLoginResponse, 0);
    auto b = LoginPdu::decode(out);
    CHECK(a.isid == b.isid && a.tsih == b.tsih && a.csg == b.csg && a.nsg == b.nsg &&
          a.status_class == b.status_class);
  }
  {
    auto a = TmfRequestPdu::decode(h);
    a.encode(out);
    auto b = TmfRequestPdu::decode(out);
    CHECK(a.function == b.function && a.referenced_itt == b.referenced_itt);
  }
  {
    auto a = TextPdu::decode(h);
    a.encode(out, Opcode::kTextResponse, 0);
    CHECK(TextPdu::decode(out).ttt == a.ttt);
    auto n = NopPdu::decode(h);
    n.encode(out, Opcode::kNopIn, 0);
    CHECK(NopPdu::decode(out).ttt == n.ttt);
    auto l = LogoutRequestPdu::decode(h);
    l.encode(out);
    CHECK(LogoutRequestPdu::decode(out).reason == l.reason);
    auto s = SnackPdu::decode(h);
    (void)s;
    auto d = DataInPdu::decode(h);
    d.encode(out, h.data_length());
    CHECK(DataInPdu::decode(out).datasn == d.datasn);
    auto r = ScsiResponsePdu::decode(h);
    r.encode(out, 0);
    CHECK(ScsiResponsePdu::decode(out).residual == r.residual);
    auto t = R2TPdu::decode(h);
    t.encode(out);
    CHECK(R2TPdu::decode(out).desired_length == t.desired_length);
    auto m = AsyncMessagePdu::decode(h);
    m.encode(out, 0);
    CHECK(AsyncMessagePdu::decode(out).event == m.event);
    auto j = RejectPdu::decode(h);
    j.encode(out);
    CHECK(out.data_length() == kBhsSize);
    (void)opcode_name(h.opcode());
  }
  // The digest over whatever data there is (hardware and table paths agree).
  CHECK(crc32c(rest.data(), rest.size()) ==
        crc32c_final(crc32c_update_portable(kCrc32cInit, rest.data(), rest.size())));
  return 0;
}
