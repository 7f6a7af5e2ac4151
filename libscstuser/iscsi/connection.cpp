#include "iscsi/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
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
#include "iscsi/connection_internal.h"
#include "iscsi/crc32c.h"
#include "iscsi/server_impl.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {

Connection::Connection(ServerImpl& server, int fd, std::string peer)
    : server_(server),
      fd_(fd),
      event_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      peer_(std::move(peer)),
      rx_(kRxBuffer),
      scratch_(size_t{64} * 1024) {
  window_ = server.window();
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  char host[INET6_ADDRSTRLEN] = "";
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) {
    if (local.ss_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&local)->sin_addr, host, sizeof(host));
    else if (local.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr, host, sizeof(host));
  }
  local_host_ = host;
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
  itt_.reset(pool);
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
  vsnprintf(buf, sizeof(buf), fmt,
            ap);  // NOLINT(clang-analyzer-valist.Uninitialized): false positive, va_start above
  va_end(ap);
  server_.log("iscsi: %s%s%s: %s", peer_.c_str(), initiator_.empty() ? "" : " ", initiator_.c_str(),
              buf);
}

void Connection::request_stop() {
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof(one));
  shutdown(fd_, SHUT_RDWR);
}

void Connection::wake() {
  uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof(one));
}

void Connection::request_logout() {
  logout_requested_.store(true, std::memory_order_release);
  uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof(one));
}

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
      SessionKey key{initiator_, login_->isid(),
                     discovery_ ? std::string() : login_->target_name()};
      LoginStatus refuse{};
      std::string why;
      if (login_->leading()) {
        sess_ = server_.create_session(this, cid_, key, params_, login_->cmdsn());
        if (!sess_) {
          refuse = LoginStatus::out_of_resources();
          why = "no free TSIH";
        } else {
          std::shared_ptr<core::Session> nexus;
          if (!discovery_) {
            core::SessionParams sp;
            sp.target_name = login_->target_name();
            sp.initiator_name = initiator_;
            sp.isid = isid_u64(login_->isid());
            sp.relative_port = opts.portal_group_tag;
            sp.protocol_id = core::kProtocolIscsi;
            nexus = server_.core().open_session(sp, &why);
            if (!nexus) refuse = LoginStatus::authorization_failure();
          }
          if (!refuse.status_class) server_.publish_session(*sess_, nexus);
        }
      } else {
        // 6.3.4: one more connection (or a reinstated one) of a session.
        refuse = server_.join_session(this, cid_, key, login_->requested_tsih(), &sess_);
        if (refuse.status_class)
          why = "cannot join the session with TSIH " + std::to_string(login_->requested_tsih());
        else
          sess_->apply_session_wide(params_);
      }
      if (refuse.status_class) {
        login_->refuse(resp, text, refuse);
        push_pdu(resp, text.data(), 0);
        flush_blocking();
        log("login refused (%u/%u): %s", refuse.status_class, refuse.detail, why.c_str());
        return false;
      }
      session_ = sess_->core_session;
      login_->finish(resp, sess_->tsih());
      statsn_ = login_->next_statsn();
      // The final response opens the command window; a joining connection
      // learns the session's numbers (4.2.2.1: they are session-wide).
      put32(&resp.b[28], sess_->exp_cmdsn());
      put32(&resp.b[32], sess_->max_cmdsn());
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

bool Connection::tx_backlogged() const {
  return arena_bytes_ > kMaxArenaBytes || tx_.size() - tx_head_ > kMaxTxSegments;
}

void Connection::full_feature() {
  const ServerOptions& opts = server_.options();
  last_rx_ = Clock::now();
  // Whether the socket may hold more bytes: a short recv() drained it, so the
  // next receive waits for poll() to say so (one syscall less per batch).
  bool readable = true;
  for (;;) {
    if (stop_.load(std::memory_order_acquire)) break;
    bool progress = false;
    drain_completions();
    ssize_t n = -1;
    errno = EAGAIN;
    // A PDU held for a CmdSN gap stays in rx_; the rest waits in the socket.
    if (readable && !tx_backlogged() && !held_) {
      n = recv_some();
      if (n >= 0 && rx_short_) readable = false;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) readable = false;
    }
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
    bool fatal = false, send_failed = false, tx_full = false;
    // Backpressure: an initiator that sends but does not read its responses
    // (NOP-Out echoes, Text) cannot make us queue without bound.
    while (!closing_ && !tx_backlogged()) {
      size_t avail = wpos_ - rpos_;
      if (avail < kBhsSize) break;
      size_t need = kBhsSize + size_t{rx_[rpos_ + 4]} * 4 + (params_.header_digest ? 4 : 0);
      if (avail < need) break;
      if (!handle_pdu()) {
        fatal = true;
        break;
      }
      if (held_) break;  // woken when the gap fills (Session::delivered)
      progress = true;
      drain_completions();
      // Responses leave as soon as a worthwhile amount is ready, not when the
      // whole receive batch is handled: the initiator (on another CPU) starts
      // on them while the rest is read and executed, instead of both sides
      // alternating in lock step. Below the threshold they wait for the end
      // of the batch, so small responses still share one sendmsg. A full
      // socket is not retried before the end of the batch.
      if (!tx_full && tx_bytes_ >= kEarlyFlushBytes) {
        if (!flush(false)) {
          send_failed = true;
          break;
        }
        tx_full = tx_head_ < tx_.size();
      }
    }
    if (fatal) {
      flush(true);  // a Reject queued before the fatal PDU still goes out
      break;
    }
    if (!send_failed) {
      if (logout_requested_.load(std::memory_order_acquire) && !logout_sent_) send_async_logout();
      send_failed = !flush(false);
    }
    if (send_failed) {
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
    if (held_ && held_fence_) {
      // Behind a TMF fence: woken when the TMF's core action is done.
      timeout_ms = -1;
    } else if (held_) {
      // The initiator is alive (it sent this PDU): no ping, but a bound on
      // the wait for the CmdSN before it.
      // Past the bound handle_pdu() skips the gap, unless another
      // connection is handing on a PDU right now: look again shortly.
      auto gap_end = held_since_ + opts.cmdsn_gap_timeout;
      timeout_ms = static_cast<int>(std::max<int64_t>(
          10, std::chrono::duration_cast<std::chrono::milliseconds>(gap_end - now).count()));
    } else if (opts.nop_interval.count() > 0 && !discovery_) {
      if (ping_outstanding_) {
        if (now - ping_sent_ >= opts.nop_timeout) {
          log("no answer to NOP-In for %lld ms, dropping the connection",
              static_cast<long long>(opts.nop_timeout.count()));
          break;
        }
        wait = std::chrono::duration_cast<std::chrono::milliseconds>(ping_sent_ + opts.nop_timeout -
                                                                     now);
      } else if (now - last_rx_ >= opts.nop_interval) {
        send_nop_ping();
        continue;
      } else {
        wait = std::chrono::duration_cast<std::chrono::milliseconds>(last_rx_ + opts.nop_interval -
                                                                     now);
      }
      timeout_ms = static_cast<int>(std::max<int64_t>(1, wait.count()));
    }
    sleeping_.store(true, std::memory_order_seq_cst);
    if (done_stack_.load(std::memory_order_seq_cst) || tmf_stack_.load() || stop_.load() ||
        (logout_requested_.load() && !logout_sent_)) {
      sleeping_.store(false);
      continue;
    }
    // Held: no POLLIN (the socket stays readable), but a peer that goes away
    // must still be noticed.
    short in = held_ ? POLLRDHUP : (tx_backlogged() ? 0 : POLLIN);
    short events = static_cast<short>(in | (tx_head_ < tx_.size() ? POLLOUT : 0));
    pollfd p[2] = {{fd_, events, 0}, {event_fd_, POLLIN, 0}};
    int r = poll(p, 2, timeout_ms);
    sleeping_.store(false, std::memory_order_relaxed);
    if (held_ && r > 0 && (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      log("connection closed while a PDU waited for a CmdSN gap to fill");
      break;
    }
    if (r > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) readable = true;
    if (r > 0 && (p[1].revents & POLLIN)) {
      uint64_t v;
      (void)!read(event_fd_, &v, sizeof(v));
    }
  }
}

// ---------------------------------------------------------------- cleanup

void Connection::cleanup() {
  shutdown(fd_, SHUT_RDWR);
  // Logout, or connection loss at ErrorRecoveryLevel 0: this connection's
  // tasks are aborted; no response goes anywhere (RFC 7143 7.1.4, 6.3.4).
  for (auto& up : tasks_)
    if (up->in_use) up->aborted = true;
  bool last = sess_ ? server_.leave_session(this, *sess_) : false;
  if (last && session_) {
    // The session's last connection: I_T nexus loss aborts everything.
    server_.core().close_session(*session_);
  } else if (session_) {
    // Other connections carry the session on: abort just the commands of
    // this one that a device has (SAM-5 ABORT TASK, as the initiator would).
    for (auto& up : tasks_) {
      Task* t = up.get();
      if (t->in_use && t->executed && !t->completed) abort_at_device(t, nullptr);
    }
  }
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
  if (sess_) server_.connection_finished(this, *sess_);
  session_.reset();
}

}  // namespace scstu::iscsi
