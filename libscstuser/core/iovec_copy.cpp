#include "core/iovec_copy.h"

#include <algorithm>
#include <cstring>

namespace scstu::core {

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

void copy_between(const std::vector<iovec>& from, std::vector<iovec>& to, size_t n) {
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

}  // namespace scstu::core
