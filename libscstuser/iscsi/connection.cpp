#include "iscsi/connection.h"

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
#include "iscsi/crc32c.h"
#include "iscsi/server_impl.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kRxBuffer = 512 * 1024;
constexpr size_t kArenaChunk = 64 * 1024;
constexpr uint32_t kImmediateTasks = 16;
// Login PDUs: RFC 7143 13.12, the default MaxRecvDataSegmentLength is in
// force until negotiation ends.
constexpr uint32_t kLoginMaxData = 8192;
constexpr uint8_t kZeros[4] = {};

thread_local Connection* tls_connection = nullptr;

void put_le32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}
uint32_t get_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

TaskAttribute task_attribute(uint8_t attr) {
  switch (attr) {
    case 2: return TaskAttribute::kOrdered;
    case 3: return TaskAttribute::kHeadOfQueue;
    case 4: return TaskAttribute::kAca;
    default: return TaskAttribute::kSimple;  // 0 untagged, 1 simple
  }
}

uint64_t isid_u64(const std::array<uint8_t, 6>& isid) {
  uint64_t v = 0;
  for (uint8_t b : isid) v = v << 8 | b;
  return v;
}

}  // namespace

Connection::Connection(ServerImpl& server, int fd, std::string peer)
    : server_(server),
      fd_(fd),
      event_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      peer_(std::move(peer)),
      rx_(kRxBuffer),
      scratch_(64 * 1024) {
  window_ = server.window();
  uint32_t pool = window_ + kImmediateTasks;
  tasks_.reserve(pool);
  free_tasks_.reserve(pool);
  for (uint32_t i = 0; i < pool; ++i) {
    auto t = std::make_unique<Task>();
    t->conn = this;
    t->index = i;
    Task* raw = t.get();
    t->cmd.done = [raw](core::TargetCommand&) { raw->conn->task_done(*raw); };
    free_tasks_.push_back(raw);
    tasks_.push_back(std::move(t));
  }
  std::reverse(free_tasks_.begin(), free_tasks_.end());
  size_t table = 1;
  while (table < pool * 4) table <<= 1;
  itt_table_.assign(table, nullptr);
  local_done_.reserve(pool);
  drain_.reserve(pool);
  tx_.reserve(1024);
  tx_release_.reserve(pool);
  iov_scratch_.reserve(64);
}

Connection::~Connection() {
  if (fd_ >= 0) close(fd_);
  if (event_fd_ >= 0) close(event_fd_);
}

void Connection::log(const char* fmt, ...) {
  if (!server_.options().log) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  server_.log("iscsi: %s%s%s: %s", peer_.c_str(), initiator_.empty() ? "" : " ",
              initiator_.c_str(), buf);
}

void Connection::request_stop() {
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof(one));
  shutdown(fd_, SHUT_RDWR);
}

void Connection::request_logout() {
  logout_requested_.store(true, std::memory_order_release);
  uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof(one));
}

// ---------------------------------------------------------------- completions

void Connection::task_done(Task& task) {
  if (tls_connection == this) {
    local_done_.push_back(&task);
    return;
  }
  Task* head = done_stack_.load(std::memory_order_relaxed);
  do {
    task.next_done = head;
  } while (!done_stack_.compare_exchange_weak(head, &task, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
  if (sleeping_.load(std::memory_order_seq_cst)) {
    uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof(one));
  }
}

void Connection::tmf_done(PendingTmf& tmf) {
  PendingTmf* head = tmf_stack_.load(std::memory_order_relaxed);
  do {
    tmf.next_done = head;
  } while (!tmf_stack_.compare_exchange_weak(head, &tmf, std::memory_order_seq_cst,
                                             std::memory_order_relaxed));
  if (tls_connection != this && sleeping_.load(std::memory_order_seq_cst)) {
    uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof(one));
  }
}

void Connection::drain_completions() {
  while (!local_done_.empty()) {
    drain_.swap(local_done_);
    for (Task* t : drain_) complete_task(t);
    drain_.clear();
  }
  Task* list = done_stack_.exchange(nullptr, std::memory_order_acquire);
  Task* fifo = nullptr;  // the stack is LIFO; completions go out in order
  while (list) {
    Task* next = list->next_done;
    list->next_done = fifo;
    fifo = list;
    list = next;
  }
  while (fifo) {
    Task* next = fifo->next_done;
    complete_task(fifo);
    fifo = next;
  }
  PendingTmf* tl = tmf_stack_.exchange(nullptr, std::memory_order_acquire);
  while (tl) {
    PendingTmf* next = tl->next_done;
    finish_tmf(tl);
    tl = next;
  }
  // Completions that happened inside the calls above.
  while (!local_done_.empty()) {
    drain_.swap(local_done_);
    for (Task* t : drain_) complete_task(t);
    drain_.clear();
  }
}

void Connection::complete_task(Task* t) {
  t->completed = true;
  if (t->aborted) {
    if (!t->responded) {
      t->responded = true;
      remove_itt(t);
      push_release(t);
    }
    return;
  }
  // A command the core refused in prepare() completes at once; its
  // unsolicited Data-Out is still to be read and dropped before the response.
  if (t->unsol_open || t->r2t_count || t->r2t_next < t->write_len) return;
  send_response(t);
}

// ---------------------------------------------------------------- tasks

Task* Connection::alloc_task() {
  if (free_tasks_.empty()) return nullptr;
  Task* t = free_tasks_.back();
  free_tasks_.pop_back();
  t->in_use = true;
  t->immediate = t->prepared = t->executed = t->completed = t->aborted = t->responded = false;
  t->write_len = t->unsol_end = t->unsol_next = t->unsol_datasn = 0;
  t->unsol_open = false;
  t->r2t_next = t->r2tsn = t->datain_pdus = t->r2t_count = 0;
  for (auto& r : t->r2t) r.length = 0;
  t->next_done = nullptr;
  ++tasks_live_;
  return t;
}

void Connection::free_task(Task* t) {
  remove_itt(t);
  if (t->cmd.session) server_.core().release(t->cmd);
  t->cmd.session = nullptr;
  if (!t->immediate) --active_;
  t->in_use = false;
  --tasks_live_;
  free_tasks_.push_back(t);
}

namespace {
size_t itt_slot(uint32_t itt, size_t mask) { return (itt * 2654435761u) & mask; }
}  // namespace

Task* Connection::find_task(uint32_t itt) {
  size_t mask = itt_table_.size() - 1;
  for (size_t i = itt_slot(itt, mask);; i = (i + 1) & mask) {
    Task* t = itt_table_[i];
    if (!t) return nullptr;
    if (t->itt == itt) return t;
  }
}

bool Connection::insert_itt(Task* t) {
  size_t mask = itt_table_.size() - 1;
  for (size_t i = itt_slot(t->itt, mask);; i = (i + 1) & mask) {
    if (!itt_table_[i]) {
      itt_table_[i] = t;
      return true;
    }
    if (itt_table_[i] == t) return true;
  }
}

void Connection::remove_itt(Task* t) {
  size_t mask = itt_table_.size() - 1;
  size_t i = itt_slot(t->itt, mask);
  while (itt_table_[i] && itt_table_[i] != t) i = (i + 1) & mask;
  if (!itt_table_[i]) return;
  // Backward-shift deletion keeps every probe chain intact.
  itt_table_[i] = nullptr;
  for (size_t j = (i + 1) & mask; itt_table_[j]; j = (j + 1) & mask) {
    Task* m = itt_table_[j];
    size_t home = itt_slot(m->itt, mask);
    bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      itt_table_[i] = m;
      itt_table_[j] = nullptr;
      i = j;
    }
  }
}

uint32_t Connection::max_cmdsn() {
  // RFC 7143 4.2.2.1: MaxCmdSN - ExpCmdSN + 1 commands may be sent; a slot
  // frees when its task is released. The window only grows: what was
  // advertised stays valid.
  uint32_t now = expcmdsn_ + (window_ - std::min(active_, window_)) - 1;
  if (!window_open_ || sn_lt(advertised_maxcmdsn_, now)) advertised_maxcmdsn_ = now;
  window_open_ = true;
  return advertised_maxcmdsn_;
}

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
  if (rx_.size() - wpos_ < 64 * 1024 && rpos_ > 0) {
    std::memmove(rx_.data(), rx_.data() + rpos_, wpos_ - rpos_);
    wpos_ -= rpos_;
    rpos_ = 0;
  }
  if (wpos_ == rx_.size()) return -2;  // full: cannot happen with a complete header check
  for (;;) {
    ssize_t n = recv(fd_, rx_.data() + wpos_, rx_.size() - wpos_, MSG_DONTWAIT);
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
    size_t cap = std::max(kArenaChunk, size_t{0});
    if (arena_used_ + n <= cap) {
      uint8_t* p = arena_chunks_[arena_chunk_].get() + arena_used_;
      arena_used_ += n;
      return p;
    }
    ++arena_chunk_;
    arena_used_ = 0;
  }
  arena_chunks_.push_back(std::make_unique<uint8_t[]>(kArenaChunk));
  arena_chunk_ = arena_chunks_.size() - 1;
  arena_used_ = n;
  return arena_chunks_.back().get();
}

void Connection::push(const void* p, size_t n) {
  if (n) tx_.push_back(iovec{const_cast<void*>(p), n});
}

void Connection::push_pdu(const Bhs& h, std::span<const iovec> data, size_t offset,
                          uint32_t len) {
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
  auto deadline = Clock::now() + std::max<std::chrono::milliseconds>(
                                     server_.options().nop_timeout, std::chrono::seconds(5));
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
    arena_chunk_ = 0;
    arena_used_ = 0;
  }
  return true;
}

bool Connection::flush_blocking() { return flush(true) && tx_.empty(); }

// ---------------------------------------------------------------- run

void Connection::run() {
  tls_connection = this;
  last_rx_ = Clock::now();
  if (login()) full_feature();
  cleanup();
  tls_connection = nullptr;
}

bool Connection::read_login_pdu(Bhs& h, std::vector<uint8_t>& data, Clock::time_point deadline) {
  if (!fill(kBhsSize, deadline)) return false;
  std::memcpy(h.b.data(), rx_.data() + rpos_, kBhsSize);
  rpos_ += kBhsSize;
  if (const char* err = check_lengths(h, kLoginMaxData)) {
    log("%s during login: %s", opcode_name(h.opcode()), err);
    return false;
  }
  uint32_t len = h.data_length();
  size_t total = len + pad4(len);
  if (!fill(total, deadline)) return false;
  data.assign(rx_.data() + rpos_, rx_.data() + rpos_ + len);
  rpos_ += total;
  return true;
}

bool Connection::login() {
  const ServerOptions& opts = server_.options();
  auto deadline = Clock::now() + opts.login_timeout;
  uint32_t initial_statsn = 0;
  chap_random(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&initial_statsn), 4));
  login_ = std::make_unique<LoginNegotiator>(server_.login_config(), initial_statsn);
  Bhs req, resp;
  std::string text;
  for (;;) {
    if (!read_login_pdu(req, small_payload_, deadline)) {
      if (!stop_) log("login: connection closed or timed out");
      return false;
    }
    if (req.opcode() != Opcode::kLoginRequest) {
      // RFC 7143 6.1: only Login Requests before full feature phase.
      log("login: %s before the login completed, dropping", opcode_name(req.opcode()));
      return false;
    }
    auto outcome = login_->handle(req, small_payload_, resp, text);
    if (outcome == LoginNegotiator::Outcome::kReadyForFullFeature) {
      params_ = login_->params();
      discovery_ = login_->discovery();
      initiator_ = login_->initiator_name();
      cid_ = login_->cid();
      SessionKey key{initiator_, login_->isid(), discovery_ ? std::string() : login_->target_name()};
      uint16_t tsih = server_.register_session(this, key);
      registered_ = true;
      LoginStatus refuse{};
      std::string why;
      if (tsih == 0) {
        refuse = LoginStatus::out_of_resources();
        why = "no free TSIH";
      } else if (!discovery_) {
        core::SessionParams sp;
        sp.target_name = login_->target_name();
        sp.initiator_name = initiator_;
        sp.isid = isid_u64(login_->isid());
        sp.relative_port = opts.portal_group_tag;
        sp.protocol_id = core::kProtocolIscsi;
        session_ = server_.core().open_session(sp, &why);
        if (!session_) refuse = LoginStatus::authorization_failure();
      }
      if (refuse.status_class) {
        login_->refuse(resp, text, refuse);
        push_pdu(resp, text.data(), 0);
        flush_blocking();
        log("login refused (%u/%u): %s", refuse.status_class, refuse.detail, why.c_str());
        return false;
      }
      login_->finish(resp, tsih);
      statsn_ = login_->next_statsn();
      expcmdsn_ = login_->cmdsn();
      // The final response opens the command window.
      put32(&resp.b[32], max_cmdsn());
      // Digests start with the first PDU after the final Login Response.
      SessionParams negotiated = params_;
      params_.header_digest = params_.data_digest = false;
      push_pdu(resp, text.data(), static_cast<uint32_t>(text.size()));
      bool ok = flush_blocking();
      params_ = negotiated;
      return ok;
    }
    push_pdu(resp, text.data(), static_cast<uint32_t>(text.size()));
    if (!flush_blocking()) return false;
    if (outcome == LoginNegotiator::Outcome::kFail) {
      log("login failed: %s", login_->failure().c_str());
      return false;
    }
  }
}

void Connection::full_feature() {
  const ServerOptions& opts = server_.options();
  last_rx_ = Clock::now();
  for (;;) {
    if (stop_.load(std::memory_order_acquire)) break;
    bool progress = false;
    drain_completions();
    ssize_t n = recv_some();
    if (n > 0) {
      progress = true;
      last_rx_ = Clock::now();
      ping_outstanding_ = false;
    } else if (n == 0) {
      break;  // the initiator closed the connection
    } else if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      if (!stop_) log("receive failed: %s", strerror(errno));
      break;
    }
    bool fatal = false;
    while (!closing_) {
      size_t avail = wpos_ - rpos_;
      if (avail < kBhsSize) break;
      size_t need = kBhsSize + size_t{rx_[rpos_ + 4]} * 4 + (params_.header_digest ? 4 : 0);
      if (avail < need) break;
      if (!handle_pdu()) {
        fatal = true;
        break;
      }
      progress = true;
      drain_completions();
    }
    if (fatal) {
      flush(true);  // a Reject queued before the fatal PDU still goes out
      break;
    }
    if (logout_requested_.load(std::memory_order_acquire) && !logout_sent_) send_async_logout();
    if (!flush(false)) {
      if (!stop_) log("send failed: %s", strerror(errno));
      break;
    }
    if (closing_) {
      flush_blocking();
      break;
    }
    if (progress) continue;

    // Nothing to do: keepalive bookkeeping, then sleep.
    auto now = Clock::now();
    int timeout_ms = -1;
    std::chrono::milliseconds wait{0};
    if (opts.nop_interval.count() > 0 && !discovery_) {
      if (ping_outstanding_) {
        if (now - ping_sent_ >= opts.nop_timeout) {
          log("no answer to NOP-In for %lld ms, dropping the connection",
              static_cast<long long>(opts.nop_timeout.count()));
          break;
        }
        wait = std::chrono::duration_cast<std::chrono::milliseconds>(
            ping_sent_ + opts.nop_timeout - now);
      } else if (now - last_rx_ >= opts.nop_interval) {
        send_nop_ping();
        continue;
      } else {
        wait = std::chrono::duration_cast<std::chrono::milliseconds>(
            last_rx_ + opts.nop_interval - now);
      }
      timeout_ms = static_cast<int>(std::max<int64_t>(1, wait.count()));
    }
    sleeping_.store(true, std::memory_order_seq_cst);
    if (done_stack_.load(std::memory_order_seq_cst) || tmf_stack_.load() ||
        stop_.load() || (logout_requested_.load() && !logout_sent_)) {
      sleeping_.store(false);
      continue;
    }
    pollfd p[2] = {{fd_, static_cast<short>(POLLIN | (tx_.empty() ? 0 : POLLOUT)), 0},
                   {event_fd_, POLLIN, 0}};
    int r = poll(p, 2, timeout_ms);
    sleeping_.store(false, std::memory_order_relaxed);
    if (r > 0 && (p[1].revents & POLLIN)) {
      uint64_t v;
      (void)!read(event_fd_, &v, sizeof(v));
    }
  }
}

// ---------------------------------------------------------------- PDUs

bool Connection::handle_pdu() {
  Bhs h;
  std::memcpy(h.b.data(), rx_.data() + rpos_, kBhsSize);
  size_t ahs = h.ahs_bytes();
  if (params_.header_digest) {
    uint32_t expect = crc32c(rx_.data() + rpos_, kBhsSize + ahs);
    if (get_le32(rx_.data() + rpos_ + kBhsSize + ahs) != expect) {
      // RFC 7143 7.8: the header cannot be trusted, not even its lengths.
      log("header digest error, dropping the connection");
      return false;
    }
  }
  if (const char* err = check_lengths(h, params_.target_max_recv_data_segment_length)) {
    log("%s: %s, dropping the connection", opcode_name(h.opcode()), err);
    return false;
  }
  AhsInfo ahs_info;
  std::array<uint8_t, kMaxAhsBytes> ahs_copy;
  if (ahs) {
    std::memcpy(ahs_copy.data(), rx_.data() + rpos_ + kBhsSize, ahs);
    if (const char* err = parse_ahs(std::span<const uint8_t>(ahs_copy.data(), ahs), ahs_info)) {
      rpos_ += kBhsSize + ahs + (params_.header_digest ? 4 : 0);
      if (!skip_payload(h.data_length())) return false;
      return reject(h, RejectReason::kInvalidPduField, err);
    }
  }
  rpos_ += kBhsSize + ahs + (params_.header_digest ? 4 : 0);
  if (!ahs_info.extended_cdb.empty()) {
    if (ahs_info.extended_cdb.size() > SCSTU_CDB_LONG_MAX - 16) {
      if (!skip_payload(h.data_length())) return false;
      return reject(h, RejectReason::kInvalidPduField, "extended CDB too long");
    }
    ext_cdb_len_ = ahs_info.extended_cdb.size();
    std::memcpy(ext_cdb_.data(), ahs_info.extended_cdb.data(), ext_cdb_len_);
  } else {
    ext_cdb_len_ = 0;
  }
  switch (h.opcode()) {
    case Opcode::kScsiCommand: return on_scsi_command(h);
    case Opcode::kDataOut: return on_data_out(h);
    case Opcode::kNopOut: return on_nop_out(h);
    case Opcode::kTaskManagementRequest: return on_tmf(h);
    case Opcode::kTextRequest: return on_text(h);
    case Opcode::kLogoutRequest: return on_logout(h);
    case Opcode::kSnackRequest:
      // ErrorRecoveryLevel 0: SNACK is not supported (RFC 7143 11.16).
      if (!skip_payload(h.data_length())) return false;
      return reject(h, RejectReason::kProtocolError, "SNACK at ErrorRecoveryLevel 0");
    case Opcode::kLoginRequest:
      skip_payload(h.data_length());
      return protocol_error(h, "Login Request in full feature phase");
    default:
      if (!skip_payload(h.data_length())) return false;
      return reject(h, RejectReason::kCommandNotSupported, "unknown opcode");
  }
}

bool Connection::reject(const Bhs& h, RejectReason reason, const char* why) {
  log("reject %s (ITT 0x%08x): %s", opcode_name(h.opcode()), h.itt(), why);
  RejectPdu r;
  r.reason = static_cast<uint8_t>(reason);
  r.statsn = statsn_++;
  r.expcmdsn = expcmdsn_;
  r.maxcmdsn = max_cmdsn();
  Bhs out;
  r.encode(out);
  push_pdu(out, h.b.data(), kBhsSize);
  return true;
}

bool Connection::protocol_error(const Bhs& h, const char* why) {
  // ErrorRecoveryLevel 0: send the Reject for the log on the other side,
  // then drop the connection (RFC 7143 7.2).
  reject(h, RejectReason::kProtocolError, why);
  flush(true);
  log("protocol error, dropping the connection");
  return false;
}

bool Connection::check_cmdsn(const Bhs& h, uint32_t cmdsn, bool immediate) {
  if (immediate) return true;  // RFC 7143 4.2.2.1: immediate PDUs do not advance CmdSN
  if (cmdsn == expcmdsn_) {
    ++expcmdsn_;
    return true;
  }
  // Only what the initiator was told counts (4.2.2.1): the window it knows.
  uint32_t max = advertised_maxcmdsn_;
  if (sn_lt(expcmdsn_, cmdsn) && sn_le(cmdsn, max)) {
    // One connection per session: a gap means a lost PDU we never saw. Take
    // the command rather than stall the window behind it.
    log("CmdSN %u skips ahead of ExpCmdSN %u", cmdsn, expcmdsn_);
    expcmdsn_ = cmdsn + 1;
    return true;
  }
  // 4.2.2.1: outside [ExpCmdSN, MaxCmdSN] the PDU is silently ignored.
  log("%s CmdSN %u outside the window [%u, %u], ignored", opcode_name(h.opcode()), cmdsn,
      expcmdsn_, max);
  return false;
}

bool Connection::on_scsi_command(const Bhs& h) {
  ScsiCommandPdu c = ScsiCommandPdu::decode(h);
  uint32_t imm = h.data_length();
  if (discovery_) {
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kProtocolError, "SCSI command in a discovery session");
  }
  if (!check_cmdsn(h, c.cmdsn, c.immediate)) return skip_payload(imm);
  if (find_task(c.itt)) return protocol_error(h, "ITT already in use");
  if (imm > 0 && !c.write) return protocol_error(h, "immediate data without the W bit");
  if (imm > 0 && !params_.immediate_data) return protocol_error(h, "ImmediateData=No");
  if (imm > params_.first_burst_length || imm > c.expected_length)
    return protocol_error(h, "immediate data beyond FirstBurstLength or the expected length");
  if (!c.final && (!c.write || params_.initial_r2t))
    return protocol_error(h, "unsolicited Data-Out announced where none may follow");
  uint32_t unsol_end =
      c.final ? imm : std::min(params_.first_burst_length, c.expected_length);
  if (!c.final && imm >= unsol_end)
    return protocol_error(h, "F bit clear although the first burst is complete");
  if (!c.immediate && active_ >= window_) {
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kLongOperationReject, "command window full");
  }
  if (c.immediate && (tasks_live_ - active_) >= kImmediateTasks) {
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kImmediateCommandReject, "too many immediate commands");
  }
  Task* t = alloc_task();
  if (!t) {
    if (!skip_payload(imm)) return false;
    return reject(h, RejectReason::kImmediateCommandReject, "no free task");
  }
  t->immediate = c.immediate;
  if (!c.immediate) ++active_;
  t->itt = c.itt;
  t->edtl = c.expected_length;
  core::TargetCommand& cmd = t->cmd;
  std::memcpy(cmd.cdb.data(), c.cdb.data(), 16);
  if (ext_cdb_len_) std::memcpy(cmd.cdb.data() + 16, ext_cdb_.data(), ext_cdb_len_);
  cmd.cdb_len = static_cast<uint16_t>(16 + ext_cdb_len_);
  cmd.lun = c.lun;
  cmd.session = session_.get();
  cmd.task_attr = task_attribute(c.attr);
  cmd.expected_length = c.expected_length;
  cmd.expected_direction = c.read && c.write ? DataDirection::kBidi
                           : c.write         ? DataDirection::kWrite
                           : c.read          ? DataDirection::kRead
                                             : DataDirection::kNone;
  insert_itt(t);
  t->prepared = server_.core().prepare(cmd);
  if (t->prepared) {
    if (cmd.direction == DataDirection::kWrite) t->write_len = cmd.data_length;
    if (cmd.direction == DataDirection::kBidi) t->write_len = cmd.data_length - cmd.bidi_read_length;
  }
  if (c.write) {
    t->unsol_end = unsol_end;
    uint32_t into = std::min(imm, t->write_len);
    if (!read_payload(cmd.buffer, 0, into, imm)) return false;
    t->unsol_next = imm;
    t->unsol_open = !c.final;
    t->r2t_next = unsol_end;
  } else if (!skip_payload(imm)) {
    return false;
  }
  if (t->prepared) send_r2ts(t);
  data_phase_check(t);
  return true;
}

void Connection::send_r2ts(Task* t) {
  uint32_t limit = std::min<uint32_t>(params_.max_outstanding_r2t, kMaxR2TPerTask);
  while (t->r2t_count < limit && t->r2t_next < t->write_len && !t->aborted) {
    OutstandingR2T* slot = nullptr;
    for (auto& r : t->r2t)
      if (r.length == 0) {
        slot = &r;
        break;
      }
    if (!slot) return;
    uint32_t len = std::min(params_.max_burst_length, t->write_len - t->r2t_next);
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    *slot = OutstandingR2T{next_ttt_++, t->r2t_next, len, 0, 0};
    R2TPdu r;
    r.lun = t->cmd.lun;
    r.itt = t->itt;
    r.ttt = slot->ttt;
    r.statsn = statsn_;  // 11.8.3: StatSN is not advanced by an R2T
    r.expcmdsn = expcmdsn_;
    r.maxcmdsn = max_cmdsn();
    r.r2tsn = t->r2tsn++;
    r.buffer_offset = slot->offset;
    r.desired_length = len;
    Bhs h;
    r.encode(h);
    push_pdu(h, nullptr, 0);
    t->r2t_next += len;
    ++t->r2t_count;
  }
}

void Connection::data_phase_check(Task* t) {
  if (t->unsol_open || t->r2t_count || t->r2t_next < t->write_len) return;
  if (t->aborted) return;
  if (t->prepared && !t->executed) {
    t->executed = true;
    server_.core().execute(t->cmd);
  } else if (t->completed && !t->responded) {
    send_response(t);
  }
}

bool Connection::on_data_out(const Bhs& h) {
  DataOutPdu d = DataOutPdu::decode(h);
  uint32_t len = h.data_length();
  Task* t = find_task(d.itt);
  if (!t || t->responded || t->aborted) {
    // The task was aborted or refused: its data is dropped (RFC 7143 4.2.3.3).
    return skip_payload(len);
  }
  uint32_t offset = d.buffer_offset;
  OutstandingR2T* r = nullptr;
  // Sequence errors fail the command, not the connection: the PDU lengths
  // are intact, so the stream stays in step (SBC/SAM: ABORTED COMMAND, DATA
  // OFFSET ERROR / DATA PHASE ERROR; RFC 7143 7.1.4 lets the target end a
  // command early with its status).
  if (d.ttt == kReservedTag) {
    if (!t->unsol_open) return fail_data_phase(t, h, 0x00, "unsolicited Data-Out not expected");
    if (d.datasn != t->unsol_datasn)
      return fail_data_phase(t, h, 0x00, "unsolicited Data-Out with wrong DataSN");
    if (offset != t->unsol_next) return fail_data_phase(t, h, 0x05, "unsolicited Data-Out offset");
    if (len > t->unsol_end - t->unsol_next)
      return fail_data_phase(t, h, 0x02, "unsolicited Data-Out beyond FirstBurstLength");
  } else {
    for (auto& s : t->r2t)
      if (s.length && s.ttt == d.ttt) r = &s;
    if (!r) return fail_data_phase(t, h, 0x01, "Data-Out for an unknown Target Transfer Tag");
    if (d.datasn != r->datasn) return fail_data_phase(t, h, 0x00, "Data-Out with wrong DataSN");
    if (offset != r->offset + r->received)
      return fail_data_phase(t, h, 0x05, "solicited Data-Out offset");
    if (len > r->length - r->received)
      return fail_data_phase(t, h, 0x02, "Data-Out beyond the R2T's Desired Data Transfer Length");
  }
  uint32_t into = offset < t->write_len ? std::min(len, t->write_len - offset) : 0;
  if (!read_payload(t->cmd.buffer, offset, into, len)) return false;
  if (!r) {
    t->unsol_next += len;
    ++t->unsol_datasn;
    if (d.final) {
      if (t->unsol_next != t->unsol_end)
        return fail_data_phase(t, h, 0x00, "unsolicited burst ends short of FirstBurstLength");
      t->unsol_open = false;
    }
  } else {
    r->received += len;
    ++r->datasn;
    if (d.final) {
      if (r->received != r->length)
        return fail_data_phase(t, h, 0x00, "Data-Out sequence ends short of the R2T's length");
      r->length = 0;
      --t->r2t_count;
      send_r2ts(t);
    }
  }
  data_phase_check(t);
  return true;
}

bool Connection::fail_data_phase(Task* t, const Bhs& h, uint8_t ascq, const char* why) {
  log("%s (ITT 0x%08x): %s; failing the command", opcode_name(h.opcode()), h.itt(), why);
  // The payload was not consumed yet when the check failed.
  if (h.opcode() == Opcode::kDataOut && !skip_payload(h.data_length())) return false;
  t->unsol_open = false;
  t->r2t_count = 0;
  t->r2t_next = t->write_len;
  for (auto& r : t->r2t) r.length = 0;
  if (t->responded || t->aborted) return true;
  if (t->prepared && !t->executed) {
    // Never executed: the core still has it prepared; answer it here.
    core::TargetCommand& cmd = t->cmd;
    cmd.status = status::kCheckCondition;
    cmd.transferred = 0;
    cmd.residual = core::Residual::kNone;
    cmd.residual_count = 0;
    cmd.sense.fill(0);
    cmd.sense[0] = 0x70;  // SPC-4 4.5.3 fixed format, current
    cmd.sense[2] = 0x0B;  // ABORTED COMMAND
    cmd.sense[7] = 10;
    cmd.sense[12] = 0x4B;  // DATA PHASE ERROR family (0x4B/ascq)
    cmd.sense[13] = ascq;
    cmd.sense_len = 18;
    t->executed = true;  // never to be executed now
    t->completed = true;
  }
  if (t->completed) send_response(t);
  return true;
}

void Connection::send_response(Task* t) {
  t->responded = true;
  remove_itt(t);
  core::TargetCommand& cmd = t->cmd;
  uint32_t total = cmd.transferred;
  bool read = cmd.direction == DataDirection::kRead || cmd.direction == DataDirection::kBidi;
  bool good = cmd.status == status::kGood || cmd.status == status::kConditionMet;
  // 11.7.2 / 11.4.5: status phase collapse only for good status without
  // sense; a bidirectional command reports two residuals in a SCSI Response.
  bool collapse = read && total > 0 && good && cmd.sense_len == 0 &&
                  cmd.direction != DataDirection::kBidi;
  if (read && total > 0) {
    size_t base = cmd.direction == DataDirection::kBidi ? cmd.data_length - cmd.bidi_read_length
                                                        : 0;
    uint32_t mrdsl = params_.initiator_max_recv_data_segment_length;
    uint32_t burst = params_.max_burst_length;
    uint32_t offset = 0, burst_left = burst;
    while (offset < total) {
      uint32_t len = std::min({mrdsl, burst_left, total - offset});
      bool last = offset + len == total;
      burst_left -= len;
      DataInPdu d;
      // 11.7.1: F ends each sequence of MaxBurstLength bytes, and the last.
      d.final = last || burst_left == 0;
      if (burst_left == 0) burst_left = burst;
      d.lun = cmd.lun;
      d.itt = t->itt;
      d.expcmdsn = expcmdsn_;
      d.maxcmdsn = max_cmdsn();
      d.datasn = t->datain_pdus++;
      d.buffer_offset = offset;
      if (last && collapse) {
        d.has_status = true;
        d.status = cmd.status;
        d.statsn = statsn_++;
        d.underflow = cmd.residual == core::Residual::kUnderflow;
        d.overflow = cmd.residual == core::Residual::kOverflow;
        d.residual = cmd.residual_count;
      }
      Bhs h;
      d.encode(h, len);
      push_pdu(h, cmd.buffer, base + offset, len);
      offset += len;
    }
    if (collapse) {
      push_release(t);
      return;
    }
  }
  ScsiResponsePdu r;
  r.status = cmd.status;
  r.itt = t->itt;
  r.statsn = statsn_++;
  r.expcmdsn = expcmdsn_;
  r.maxcmdsn = max_cmdsn();
  r.expdatasn = t->datain_pdus + t->r2tsn;  // 11.4.6: Data-In and R2T PDUs sent
  r.underflow = cmd.residual == core::Residual::kUnderflow;
  r.overflow = cmd.residual == core::Residual::kOverflow;
  r.residual = (r.underflow || r.overflow) ? cmd.residual_count : 0;
  uint8_t sense[2 + SCSTU_SENSE_MAX];
  uint32_t sense_len = std::min<uint32_t>(cmd.sense_len, SCSTU_SENSE_MAX);
  uint32_t data_len = 0;
  if (sense_len) {
    // 11.4.7.2: SenseLength, then the sense data.
    put16(sense, static_cast<uint16_t>(sense_len));
    std::memcpy(sense + 2, cmd.sense.data(), sense_len);
    data_len = 2 + sense_len;
  }
  Bhs h;
  r.encode(h, data_len);
  push_pdu(h, sense, data_len);
  push_release(t);
}

bool Connection::on_nop_out(const Bhs& h) {
  NopPdu n = NopPdu::decode(h);
  uint32_t len = h.data_length();
  if (n.itt == kReservedTag) {
    // The answer to our ping (11.18): nothing to send back.
    ping_outstanding_ = false;
    return skip_payload(len);
  }
  if (!check_cmdsn(h, n.sn, n.immediate)) return skip_payload(len);
  if (!read_small_payload(len, small_payload_)) return false;
  NopPdu r;
  r.lun = n.lun;
  r.itt = n.itt;
  r.ttt = kReservedTag;
  r.sn = statsn_++;
  r.expsn = expcmdsn_;
  r.maxcmdsn = max_cmdsn();
  uint32_t echo = std::min(len, params_.initiator_max_recv_data_segment_length);
  Bhs out;
  r.encode(out, Opcode::kNopIn, echo);
  push_pdu(out, small_payload_.data(), echo);
  return true;
}

void Connection::send_nop_ping() {
  NopPdu p;
  p.itt = kReservedTag;
  if (next_ttt_ == kReservedTag) next_ttt_ = 1;
  p.ttt = next_ttt_++;
  p.sn = statsn_;  // 11.19: a ping does not advance StatSN
  p.expsn = expcmdsn_;
  p.maxcmdsn = max_cmdsn();
  Bhs h;
  p.encode(h, Opcode::kNopIn, 0);
  push_pdu(h, nullptr, 0);
  ping_outstanding_ = true;
  ping_sent_ = Clock::now();
}

void Connection::send_async_logout() {
  logout_sent_ = true;
  if (discovery_) {
    closing_ = true;
    return;
  }
  AsyncMessagePdu a;
  a.event = 1;  // 11.9.1: the target requests Logout
  a.statsn = statsn_++;
  a.expcmdsn = expcmdsn_;
  a.maxcmdsn = max_cmdsn();
  a.parameter3 = static_cast<uint16_t>(
      std::max<int64_t>(1, server_.options().logout_grace.count() / 1000));
  Bhs h;
  a.encode(h, 0);
  push_pdu(h, nullptr, 0);
}

bool Connection::on_logout(const Bhs& h) {
  LogoutRequestPdu l = LogoutRequestPdu::decode(h);
  if (!skip_payload(h.data_length())) return false;
  if (!check_cmdsn(h, l.cmdsn, l.immediate)) return true;
  LogoutResponsePdu r;
  if (l.reason == 2) r.response = 2;  // 11.15.1: connection recovery not supported
  else if (l.reason == 1 && l.cid != cid_) r.response = 1;  // CID not found
  else if (l.reason > 2) return reject(h, RejectReason::kInvalidPduField, "logout reason code");
  r.itt = l.itt;
  r.statsn = statsn_++;
  r.expcmdsn = expcmdsn_;
  r.maxcmdsn = max_cmdsn();
  r.time2wait = params_.default_time2wait;
  r.time2retain = params_.default_time2retain;
  Bhs out;
  r.encode(out);
  push_pdu(out, nullptr, 0);
  if (r.response == 0) closing_ = true;
  return true;
}

bool Connection::on_text(const Bhs& h) {
  TextPdu p = TextPdu::decode(h);
  uint32_t len = h.data_length();
  if (len > kMaxTextBytes) return protocol_error(h, "Text Request data too long");
  if (!read_small_payload(len, small_payload_)) return false;
  if (!check_cmdsn(h, p.sn, p.immediate)) return true;
  if (p.continue_) return reject(h, RejectReason::kCommandNotSupported, "multi-PDU text request");
  if (p.ttt != kReservedTag) {
    // 11.10.4: the initiator asks for the rest of a long Text Response.
    if (p.ttt != text_ttt_ || text_pos_ >= text_out_.size())
      return reject(h, RejectReason::kInvalidPduField, "unknown Target Transfer Tag");
  } else {
    std::vector<TextPair> keys;
    if (const char* err = parse_text(small_payload_, keys))
      return reject(h, RejectReason::kInvalidPduField, err);
    text_out_.clear();
    text_pos_ = 0;
    for (const TextPair& kv : keys) {
      if (kv.key == "SendTargets") {
        // Appendix C: in a normal session an empty value means this target.
        std::string which = kv.value;
        if (which.empty() && session_) which = session_->target_name();
        if (discovery_ || which != "All") text_out_ += server_.send_targets(initiator_, which);
        else text_out_ += server_.send_targets(initiator_, session_->target_name());
      } else {
        append_pair(text_out_, kv.key, "NotUnderstood");
      }
    }
  }
  size_t chunk = std::min<size_t>(text_out_.size() - text_pos_,
                                  params_.initiator_max_recv_data_segment_length);
  TextPdu r;
  r.itt = p.itt;
  r.lun = p.lun;
  r.sn = statsn_++;
  r.expsn = expcmdsn_;
  r.maxcmdsn = max_cmdsn();
  bool more = text_pos_ + chunk < text_out_.size();
  r.final = !more;
  r.continue_ = more;
  if (more) {
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    text_ttt_ = next_ttt_++;
    r.ttt = text_ttt_;
  } else {
    r.ttt = kReservedTag;
    text_ttt_ = kReservedTag;
  }
  Bhs out;
  r.encode(out, Opcode::kTextResponse, static_cast<uint32_t>(chunk));
  push_pdu(out, text_out_.data() + text_pos_, static_cast<uint32_t>(chunk));
  text_pos_ += chunk;
  return true;
}

bool Connection::on_tmf(const Bhs& h) {
  TmfRequestPdu m = TmfRequestPdu::decode(h);
  if (!skip_payload(h.data_length())) return false;
  if (!check_cmdsn(h, m.cmdsn, m.immediate)) return true;
  if (discovery_) return reject(h, RejectReason::kProtocolError, "TMF in a discovery session");
  auto respond_now = [&](TmfResponse resp) {
    TmfResponsePdu r;
    r.response = static_cast<uint8_t>(resp);
    r.itt = m.itt;
    r.statsn = statsn_++;
    r.expcmdsn = expcmdsn_;
    r.maxcmdsn = max_cmdsn();
    Bhs out;
    r.encode(out);
    push_pdu(out, nullptr, 0);
    return true;
  };
  auto fn = static_cast<TmfFunction>(m.function);
  scstu_tmf_function core_fn;
  switch (fn) {
    case TmfFunction::kAbortTask: core_fn = SCSTU_TMF_ABORT_TASK; break;
    case TmfFunction::kAbortTaskSet: core_fn = SCSTU_TMF_ABORT_TASK_SET; break;
    case TmfFunction::kClearAca: core_fn = SCSTU_TMF_CLEAR_ACA; break;
    case TmfFunction::kClearTaskSet: core_fn = SCSTU_TMF_CLEAR_TASK_SET; break;
    case TmfFunction::kLogicalUnitReset: core_fn = SCSTU_TMF_LUN_RESET; break;
    case TmfFunction::kTargetWarmReset:
    case TmfFunction::kTargetColdReset: core_fn = SCSTU_TMF_TARGET_RESET; break;
    case TmfFunction::kTaskReassign:
      // ErrorRecoveryLevel 0 (11.5.1).
      return respond_now(TmfResponse::kReassignmentNotSupported);
    default:
      return respond_now(TmfResponse::kNotSupported);
  }
  Task* ref = nullptr;
  if (fn == TmfFunction::kAbortTask) {
    ref = find_task(m.referenced_itt);
    if (!ref || ref->cmd.lun != m.lun) {
      // 11.5.1: a task already answered (RefCmdSN below ExpCmdSN) does not
      // exist any more; one not yet received (RefCmdSN in the window) is
      // considered received and aborted: "function complete".
      return respond_now(sn_lt(m.refcmdsn, expcmdsn_) ? TmfResponse::kTaskDoesNotExist
                                                      : TmfResponse::kComplete);
    }
    ref->aborted = true;
  } else if (core_fn != SCSTU_TMF_CLEAR_ACA) {
    // Tasks of this session the function terminates get no response
    // (RFC 7143 4.2.3.3 / SAM-5 7); those of other sessions are the core's.
    bool all = core_fn == SCSTU_TMF_TARGET_RESET;
    for (auto& up : tasks_) {
      Task* t = up.get();
      if (t->in_use && !t->responded && (all || t->cmd.lun == m.lun)) t->aborted = true;
    }
  }
  auto* p = new PendingTmf;
  p->conn = this;
  p->itt = m.itt;
  p->ref = ref;
  p->cold_reset = fn == TmfFunction::kTargetColdReset;
  p->tmf.function = core_fn;
  p->tmf.lun = m.lun;
  p->tmf.session = session_.get();
  p->tmf.ref = ref ? &ref->cmd : nullptr;
  p->tmf.done = [p](scstu_tmf_response r) {
    p->response = r;
    p->conn->tmf_done(*p);
  };
  ++tmfs_pending_;
  server_.core().task_management(p->tmf);
  return true;
}

void Connection::finish_tmf(PendingTmf* p) {
  --tmfs_pending_;
  TmfResponse resp;
  switch (p->response) {
    case SCSTU_TMF_COMPLETE:
    case SCSTU_TMF_SUCCEEDED: resp = TmfResponse::kComplete; break;
    case SCSTU_TMF_INCORRECT_LUN: resp = TmfResponse::kLunDoesNotExist; break;
    case SCSTU_TMF_NOT_SUPPORTED: resp = TmfResponse::kNotSupported; break;
    default: resp = TmfResponse::kRejected; break;
  }
  // Aborted tasks that never reached a device (still in their data phase)
  // will not complete by themselves: release them now.
  for (auto& up : tasks_) {
    Task* t = up.get();
    if (t->in_use && t->aborted && !t->responded && !t->executed && t->prepared) {
      t->responded = true;
      remove_itt(t);
      push_release(t);
    }
  }
  if (!closing_ && !stop_) {
    TmfResponsePdu r;
    r.response = static_cast<uint8_t>(resp);
    r.itt = p->itt;
    r.statsn = statsn_++;
    r.expcmdsn = expcmdsn_;
    r.maxcmdsn = max_cmdsn();
    Bhs out;
    r.encode(out);
    push_pdu(out, nullptr, 0);
    // 11.5.1: TARGET COLD RESET also drops the connection.
    if (p->cold_reset) closing_ = true;
  }
  delete p;
}

// ---------------------------------------------------------------- cleanup

void Connection::cleanup() {
  shutdown(fd_, SHUT_RDWR);
  // Connection loss / logout ends the session (ErrorRecoveryLevel 0): its
  // tasks are aborted; no response goes anywhere.
  for (auto& up : tasks_)
    if (up->in_use) up->aborted = true;
  if (session_) server_.core().close_session(*session_);
  auto started = Clock::now(), last_log = started;
  for (;;) {
    drain_completions();
    uint32_t waiting = tmfs_pending_;
    for (auto& up : tasks_)
      if (up->in_use && up->executed && !up->completed) ++waiting;
    if (waiting == 0) break;
    if (Clock::now() - last_log > std::chrono::seconds(10)) {
      last_log = Clock::now();
      log("waiting for %u commands/TMFs to complete at their devices", waiting);
    }
    sleeping_.store(true, std::memory_order_seq_cst);
    if (!done_stack_.load(std::memory_order_seq_cst) && !tmf_stack_.load()) {
      pollfd p{event_fd_, POLLIN, 0};
      if (poll(&p, 1, 1000) > 0) {
        uint64_t v;
        (void)!read(event_fd_, &v, sizeof(v));
      }
    }
    sleeping_.store(false);
  }
  tx_release_.clear();
  tx_.clear();
  tx_head_ = 0;
  for (auto& up : tasks_)
    if (up->in_use) free_task(up.get());
  if (registered_) server_.unregister_session(this);
  session_.reset();
}

}  // namespace scstu::iscsi
