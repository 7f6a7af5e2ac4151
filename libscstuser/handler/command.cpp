#include "handler/command.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace scstu {

size_t DataBuffer::size() const {
  size_t total = 0;
  for (const iovec& seg : segments_) total += seg.iov_len;
  return total;
}

// Walks the segments from byte `offset`, calling fn(segment_ptr, n) for up to
// `len` bytes. Returns the bytes visited.
template <typename Fn>
static size_t walk(std::span<const iovec> segments, size_t offset, size_t len, Fn fn) {
  size_t done = 0;
  for (const iovec& seg : segments) {
    if (done == len) break;
    if (offset >= seg.iov_len) {
      offset -= seg.iov_len;
      continue;
    }
    size_t n = std::min(seg.iov_len - offset, len - done);
    fn(static_cast<uint8_t*>(seg.iov_base) + offset, done, n);
    done += n;
    offset = 0;
  }
  return done;
}

size_t DataBuffer::copy_from(size_t offset, std::span<const uint8_t> src) const {
  return walk(segments_, offset, src.size(),
              [&](uint8_t* p, size_t at, size_t n) { std::memcpy(p, src.data() + at, n); });
}

size_t DataBuffer::copy_to(size_t offset, std::span<uint8_t> dst) const {
  return walk(segments_, offset, dst.size(),
              [&](uint8_t* p, size_t at, size_t n) { std::memcpy(dst.data() + at, p, n); });
}

void DataBuffer::zero(size_t offset, size_t len) const {
  walk(segments_, offset, len, [](uint8_t* p, size_t, size_t n) { std::memset(p, 0, n); });
}

std::span<uint8_t> DataBuffer::contiguous() const {
  if (segments_.size() != 1) return {};
  return {static_cast<uint8_t*>(segments_[0].iov_base), segments_[0].iov_len};
}

CommandHandle::CommandHandle(CommandHandle&& other) noexcept
    : sink_(std::exchange(other.sink_, nullptr)),
      token_(other.token_),
      request_(std::exchange(other.request_, nullptr)) {}

CommandHandle& CommandHandle::operator=(CommandHandle&& other) noexcept {
  if (this != &other) {
    this->~CommandHandle();
    sink_ = std::exchange(other.sink_, nullptr);
    token_ = other.token_;
    request_ = std::exchange(other.request_, nullptr);
  }
  return *this;
}

void CommandHandle::complete(const CommandReply& reply) && {
  if (sink_ == nullptr) {
    // A second completion, or one on a moved-from handle.
#ifndef NDEBUG
    std::fprintf(stderr, "scstu: command completed twice (or through a moved-from handle)\n");
    std::abort();
#else
    return;
#endif
  }
  CommandSink* sink = std::exchange(sink_, nullptr);
  request_ = nullptr;
  sink->complete(token_, reply);
}

CommandHandle::~CommandHandle() {
  if (sink_ == nullptr) return;
#ifndef NDEBUG
  std::fprintf(stderr, "scstu: command tag %u dropped without a reply\n",
               request_ ? request_->tag : 0u);
  std::abort();
#else
  // SPC-4: HARDWARE ERROR / INTERNAL TARGET FAILURE (44h/00h), fixed format.
  static constexpr uint8_t kInternalTargetFailure[18] = {0x70, 0, 0x04, 0, 0, 0, 0, 10,
                                                         0,    0, 0,    0, 0x44, 0x00};
  std::move(*this).complete(
      CommandReply{status::kCheckCondition, 0, std::span<const uint8_t>(kInternalTargetFailure)});
#endif
}

}  // namespace scstu
