#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstring>

#include "core/session.h"
#include "core/target_core.h"
#include "iscsi/connection.h"
#include "iscsi/connection_internal.h"
#include "iscsi/crc32c.h"
#include "iscsi/server_impl.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {

// ---------------------------------------------------------------- socket

bool Connection::wait_fd(short events, Clock::time_point deadline) {
  for (;;) {
    if (stop_.load(std::memory_order_acquire)) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p[2] = {{fd_, events, 0}, {event_fd_, POLLIN, 0}};
    int r = poll(p, 2, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
    if (r < 0 && errno != EINTR) return false;
    if (p[1].revents & POLLIN) {
      uint64_t v;
      (void)!read(event_fd_, &v, sizeof(v));
      // A completion or a logout request: not what we wait for, but the
      // completion stack is drained by the caller's loop later.
    }
    if (p[0].revents & (events | POLLHUP | POLLERR)) return true;
  }
}

ssize_t Connection::recv_some() {
  if (rpos_ == wpos_) rpos_ = wpos_ = 0;
  if (rx_.size() - wpos_ < size_t{64} * 1024 && rpos_ > 0) {
    std::memmove(rx_.data(), rx_.data() + rpos_, wpos_ - rpos_);
    wpos_ -= rpos_;
    rpos_ = 0;
  }
  if (wpos_ == rx_.size()) return -2;  // full: cannot happen with a complete header check
  for (;;) {
    size_t space = rx_.size() - wpos_;
    ssize_t n = recv(fd_, rx_.data() + wpos_, space, MSG_DONTWAIT);
    rx_short_ = n >= 0 && static_cast<size_t>(n) < space;
    if (n > 0) wpos_ += static_cast<size_t>(n);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

bool Connection::fill(size_t need, Clock::time_point deadline) {
  while (wpos_ - rpos_ < need) {
    ssize_t n = recv_some();
    if (n == 0) return false;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (!wait_fd(POLLIN, deadline)) return false;
    }
  }
  return true;
}

bool Connection::read_into(std::span<const iovec> dest, size_t offset, size_t len,
                           Clock::time_point deadline, uint32_t* crc) {
  if (len == 0) return true;
  // The slice [offset, offset + len) of the scatter list.
  iov_scratch_.clear();
  size_t skip = offset, want = len;
  for (const iovec& v : dest) {
    if (want == 0) break;
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    size_t n = std::min(v.iov_len - skip, want);
    iov_scratch_.push_back(iovec{static_cast<uint8_t*>(v.iov_base) + skip, n});
    want -= n;
    skip = 0;
  }
  if (want != 0) return false;  // the caller bounded len by the buffer
  size_t first = 0;
  // Bytes already buffered are copied; the rest is read in place.
  while (first < iov_scratch_.size() && rpos_ < wpos_) {
    iovec& v = iov_scratch_[first];
    size_t n = std::min(v.iov_len, wpos_ - rpos_);
    std::memcpy(v.iov_base, rx_.data() + rpos_, n);
    rpos_ += n;
    v.iov_base = static_cast<uint8_t*>(v.iov_base) + n;
    v.iov_len -= n;
    if (v.iov_len == 0) ++first;
  }
  while (first < iov_scratch_.size()) {
    int cnt = static_cast<int>(std::min<size_t>(iov_scratch_.size() - first, IOV_MAX));
    ssize_t n = readv(fd_, &iov_scratch_[first], cnt);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (!wait_fd(POLLIN, deadline)) return false;
      continue;
    }
    size_t got = static_cast<size_t>(n);
    while (got > 0) {
      iovec& v = iov_scratch_[first];
      size_t k = std::min(v.iov_len, got);
      v.iov_base = static_cast<uint8_t*>(v.iov_base) + k;
      v.iov_len -= k;
      got -= k;
      if (v.iov_len == 0) ++first;
    }
  }
  last_rx_ = Clock::now();
  if (crc) *crc = crc32c_update_iov(*crc, dest, offset, len);
  return true;
}

bool Connection::read_payload(std::span<const iovec> dest, size_t dest_offset, size_t dest_len,
                              uint32_t total_len) {
  auto timeout = std::max<std::chrono::milliseconds>(server_.options().nop_timeout,
                                                     std::chrono::milliseconds(5000));
  auto deadline = Clock::now() + timeout;
  bool digest = params_.data_digest && total_len > 0;
  uint32_t crc = kCrc32cInit;
  if (!read_into(dest, dest_offset, dest_len, deadline, digest ? &crc : nullptr)) return false;
  size_t rest = total_len - dest_len + pad4(total_len);
  while (rest > 0) {
    size_t n = std::min(rest, scratch_.size());
    iovec v{scratch_.data(), n};
    if (!read_into(std::span<const iovec>(&v, 1), 0, n, deadline, digest ? &crc : nullptr))
      return false;
    rest -= n;
  }
  if (digest) {
    uint8_t d[4];
    iovec v{d, 4};
    if (!read_into(std::span<const iovec>(&v, 1), 0, 4, deadline, nullptr)) return false;
    if (get_le32(d) != crc32c_final(crc)) {
      // RFC 7143 7.8: at ErrorRecoveryLevel 0 the command cannot be recovered.
      log("data digest error, dropping the connection");
      return false;
    }
  }
  return true;
}

bool Connection::read_small_payload(uint32_t len, std::vector<uint8_t>& out) {
  out.resize(len);
  iovec v{out.data(), len};
  return read_payload(std::span<const iovec>(&v, 1), 0, len, len);
}

bool Connection::skip_payload(uint32_t len) { return read_payload({}, 0, 0, len); }

// ---------------------------------------------------------------- transmit

uint8_t* Connection::arena(size_t n) {
  n = (n + 7) & ~size_t{7};
  while (arena_chunk_ < arena_chunks_.size()) {
    ArenaChunk& c = arena_chunks_[arena_chunk_];
    if (arena_used_ + n <= c.size) {
      uint8_t* p = c.memory.get() + arena_used_;
      arena_used_ += n;
      return p;
    }
    ++arena_chunk_;
    arena_used_ = 0;
  }
  // A segment larger than a chunk (a long Text Response, a NOP echo) gets a
  // chunk of its own; reset_arena() gives such chunks back.
  size_t size = std::max(n, kArenaChunk);
  arena_chunks_.push_back(ArenaChunk{std::make_unique<uint8_t[]>(size), size});
  arena_bytes_ += size;
  arena_chunk_ = arena_chunks_.size() - 1;
  arena_used_ = n;
  return arena_chunks_.back().memory.get();
}

void Connection::reset_arena() {
  arena_chunk_ = 0;
  arena_used_ = 0;
  // Keep a few standard chunks warm, free the rest.
  while (arena_chunks_.size() > 4 ||
         (!arena_chunks_.empty() && arena_chunks_.back().size != kArenaChunk)) {
    arena_bytes_ -= arena_chunks_.back().size;
    arena_chunks_.pop_back();
  }
}

void Connection::push(const void* p, size_t n) {
  if (n) {
    tx_.push_back(iovec{const_cast<void*>(p), n});
    tx_bytes_ += n;
  }
}

void Connection::push_pdu(const Bhs& h, std::span<const iovec> data, size_t offset, uint32_t len) {
  uint8_t* hdr = arena(kBhsSize + kDigestSize);
  std::memcpy(hdr, h.b.data(), kBhsSize);
  size_t hlen = kBhsSize;
  if (params_.header_digest) {
    put_le32(hdr + kBhsSize, crc32c(hdr, kBhsSize));
    hlen += kDigestSize;
  }
  push(hdr, hlen);
  if (len == 0) return;
  size_t skip = offset, want = len;
  for (const iovec& v : data) {
    if (want == 0) break;
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    size_t n = std::min(v.iov_len - skip, want);
    push(static_cast<uint8_t*>(v.iov_base) + skip, n);
    want -= n;
    skip = 0;
  }
  uint32_t pad = pad4(len);
  push(kZeros, pad);
  if (params_.data_digest) {
    uint32_t crc = crc32c_update_iov(kCrc32cInit, data, offset, len);
    crc = crc32c_update(crc, kZeros, pad);
    uint8_t* d = arena(kDigestSize);
    put_le32(d, crc32c_final(crc));
    push(d, kDigestSize);
  }
}

void Connection::push_pdu(const Bhs& h, const void* data, uint32_t len) {
  uint8_t* copy = nullptr;
  if (len) {
    copy = arena(len);
    std::memcpy(copy, data, len);
  }
  iovec v{copy, len};
  push_pdu(h, std::span<const iovec>(&v, 1), 0, len);
}

void Connection::push_release(Task* t) { tx_release_.emplace_back(tx_.size(), t); }

bool Connection::flush(bool block) {
  auto deadline = Clock::now() + std::max<std::chrono::milliseconds>(server_.options().nop_timeout,
                                                                     std::chrono::seconds(5));
  while (tx_head_ < tx_.size()) {
    msghdr msg{};
    msg.msg_iov = &tx_[tx_head_];
    msg.msg_iovlen = std::min<size_t>(tx_.size() - tx_head_, IOV_MAX);
    ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (!block) break;
      if (!wait_fd(POLLOUT, deadline)) return false;
      continue;
    }
    size_t w = static_cast<size_t>(n);
    tx_bytes_ -= w;
    while (w > 0) {
      iovec& v = tx_[tx_head_];
      if (w >= v.iov_len) {
        w -= v.iov_len;
        ++tx_head_;
      } else {
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + w;
        v.iov_len -= w;
        w = 0;
      }
    }
  }
  // Tasks whose last byte has left can give their buffer back.
  size_t done = 0;
  while (done < tx_release_.size() && tx_release_[done].first <= tx_head_) ++done;
  for (size_t i = 0; i < done; ++i) free_task(tx_release_[i].second);
  tx_release_.erase(tx_release_.begin(), tx_release_.begin() + static_cast<ptrdiff_t>(done));
  if (tx_head_ == tx_.size()) {
    tx_.clear();
    tx_head_ = 0;
    tx_bytes_ = 0;
    reset_arena();
  }
  return true;
}

bool Connection::flush_blocking() { return flush(true) && tx_.empty(); }

}  // namespace scstu::iscsi
