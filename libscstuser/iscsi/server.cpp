#include "iscsi/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "core/log_level.h"
#include "core/target_core.h"
#include "iscsi/connection.h"
#include "iscsi/connection_internal.h"
#include "iscsi/server_impl.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {

std::string check_max_connections(uint64_t value) {
  if (value >= 1 && value <= kMaxConnectionsLimit) return {};
  return std::to_string(value) + ": connections per session must be 1.." +
         std::to_string(kMaxConnectionsLimit) + " (1: one connection, no MC/S)";
}

std::string check_cmdsn_gap_timeout_ms(uint64_t value) {
  if (value >= 1 && value <= kMaxCmdsnGapTimeoutMs) return {};
  return std::to_string(value) + ": the CmdSN gap timeout must be 1.." +
         std::to_string(kMaxCmdsnGapTimeoutMs) + " ms";
}

Server::Server(core::TargetCore& core, ServerOptions options)
    : impl_(std::make_unique<ServerImpl>(core, std::move(options))) {}
Server::~Server() { impl_->stop(); }
bool Server::start(std::string* error) { return impl_->start(error); }
void Server::stop() { impl_->stop(); }
std::vector<PortalAddress> Server::portals() const { return impl_->portals(); }
size_t Server::session_count() const { return impl_->session_count(); }
ConnectionCounters Server::connection_counters() const { return impl_->connection_counters(); }
void Server::set_target_auth(const std::string& target, const AuthConfig& auth) {
  impl_->set_target_auth(target, auth);
}

ServerImpl::ServerImpl(core::TargetCore& core, ServerOptions options)
    : core_(core), options_(std::move(options)) {
  window_ = std::max<uint32_t>(1, options_.queue_depth);
  if (core_.limits().per_session) window_ = std::min(window_, core_.limits().per_session);
  login_config_.limits = options_.limits;
  login_config_.limits.max_connections = std::clamp<uint32_t>(options_.max_connections, 1, 65535);
  login_config_.portal_group_tag = options_.portal_group_tag;
  login_config_.discovery_auth =
      options_.discovery_auth.incoming.empty() ? nullptr : &options_.discovery_auth;
  for (const auto& [name, auth] : options_.target_auth)
    target_auth_[name] = std::make_shared<const AuthConfig>(auth);
  login_config_.can_join = [this](uint16_t tsih, uint16_t cid, const SessionKey& key) {
    return can_join(tsih, cid, key);
  };
  login_config_.find_target = [this](std::string_view name) -> std::optional<LoginTarget> {
    if (!core_.access().has_target(name)) return std::nullopt;
    LoginTarget t;
    t.name = std::string(name);
    if (auto a = options_.target_alias.find(t.name); a != options_.target_alias.end())
      t.alias = a->second;
    std::lock_guard lock(auth_mutex_);
    if (auto a = target_auth_.find(t.name);
        a != target_auth_.end() && !a->second->incoming.empty()) {
      t.auth_owner = a->second;
      t.auth = t.auth_owner.get();
    }
    return t;
  };
}

void ServerImpl::set_target_auth(const std::string& target, const AuthConfig& auth) {
  auto fresh = std::make_shared<const AuthConfig>(auth);
  std::lock_guard lock(auth_mutex_);
  target_auth_[target] = std::move(fresh);
}

ServerImpl::~ServerImpl() { stop(); }

void ServerImpl::log(const char* fmt, ...) {
  // Connection events are the normal life of a target: level info.
  if (!options_.log || !core::log_enabled(core::LogLevel::kInfo)) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);  // NOLINT(clang-analyzer-valist.Uninitialized)
  va_end(ap);
  if (n < 0) return;
  size_t len = std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 2);
  buf[len] = '\n';
  (void)!write(STDERR_FILENO, buf, len + 1);
}

bool ServerImpl::start(std::string* error) {
  if (started_.exchange(true)) {
    if (error) *error = "iSCSI server already started";
    return false;
  }
  auto fail = [&](const PortalAddress& p, const char* what) {
    if (error)
      *error = "iSCSI portal " + p.host + ":" + std::to_string(p.port) + ": " + what + ": " +
               strerror(errno);
    for (int fd : listen_fds_) close(fd);
    listen_fds_.clear();
    bound_.clear();
    started_ = false;
    return false;
  };
  for (const PortalAddress& p : options_.portals) {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string host = p.host;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);  // "[::1]" as in a URL
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(p.port);
      addr_len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(p.port);
      addr_len = sizeof(sockaddr_in6);
    } else {
      errno = EINVAL;
      return fail(p, "not an IPv4 or IPv6 address");
    }
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail(p, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    // An IPv6 portal is IPv6 only ("::" does not take IPv4 connections too):
    // each portal listens exactly where it says.
    if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
      int e = errno;
      close(fd);
      errno = e;
      return fail(p, "bind");
    }
    if (listen(fd, 128) != 0) {
      int e = errno;
      close(fd);
      errno = e;
      return fail(p, "listen");
    }
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    listen_fds_.push_back(fd);
    bound_.push_back(
        PortalAddress{host, ntohs(addr.ss_family == AF_INET6 ? v6->sin6_port : v4->sin_port)});
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  acceptor_ = std::thread([this] { accept_loop(); });
  return true;
}

std::vector<PortalAddress> ServerImpl::portals() const { return bound_; }

size_t ServerImpl::session_count() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (auto& [key, s] : sessions_)
    if (!key.target.empty() && !s->ended) ++n;
  return n;
}

void ServerImpl::set_step(Step s) {
  // Only the acceptor writes these; readers take a snapshot.
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t spent = now - step_since_ns_.load(std::memory_order_relaxed);
  auto& longest = step_.load(std::memory_order_relaxed) == Step::kPolling ? longest_poll_ns_
                                                                          : longest_work_ns_;
  if (step_since_ns_.load(std::memory_order_relaxed) != 0 &&
      spent > longest.load(std::memory_order_relaxed))
    longest.store(spent, std::memory_order_relaxed);
  step_since_ns_.store(now, std::memory_order_relaxed);
  step_.store(s, std::memory_order_release);
}

ConnectionCounters ServerImpl::connection_counters() const {
  static constexpr const char* kStepNames[] = {"polling",      "reaping",         "accepting",
                                               "constructing", "starting thread", "stopped"};
  ConnectionCounters c;
  // Later stages first: a snapshot never shows more finished than entered.
  c.reaped = reaped_.load(std::memory_order_acquire);
  c.runs_finished = runs_finished_.load(std::memory_order_acquire);
  c.runs_entered = runs_entered_.load(std::memory_order_acquire);
  c.threads_started = threads_started_.load(std::memory_order_acquire);
  c.thread_failures = thread_failures_.load(std::memory_order_acquire);
  c.accept_failures = accept_failures_.load(std::memory_order_acquire);
  c.last_accept_errno = last_accept_errno_.load(std::memory_order_relaxed);
  c.accepted = accepted_.load(std::memory_order_acquire);
  c.acceptor_step = kStepNames[static_cast<size_t>(step_.load(std::memory_order_acquire))];
  auto since = std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(step_since_ns_.load(std::memory_order_relaxed)));
  c.acceptor_step_for = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - since);
  c.acceptor_longest_poll = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::nanoseconds(longest_poll_ns_.load(std::memory_order_relaxed)));
  c.acceptor_longest_work = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::nanoseconds(longest_work_ns_.load(std::memory_order_relaxed)));
  return c;
}

void ServerImpl::accept_loop() {
  std::vector<pollfd> fds;
  for (int fd : listen_fds_) fds.push_back(pollfd{fd, POLLIN, 0});
  fds.push_back(pollfd{wake_fd_, POLLIN, 0});
  while (!stopping()) {
    set_step(Step::kPolling);
    int r = poll(fds.data(), fds.size(), 1000);
    if (r > 0 && (fds.back().revents & POLLIN)) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof(v));
    }
    set_step(Step::kReaping);
    reap(false);
    if (r <= 0) continue;
    for (size_t i = 0; i + 1 < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      set_step(Step::kAccepting);
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      int fd = accept4(fds[i].fd, reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        last_accept_errno_.store(errno, std::memory_order_relaxed);
        accept_failures_.fetch_add(1, std::memory_order_release);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      char host[INET6_ADDRSTRLEN] = "?";
      std::string name;
      if (peer.ss_family == AF_INET6) {
        auto* p6 = reinterpret_cast<sockaddr_in6*>(&peer);
        inet_ntop(AF_INET6, &p6->sin6_addr, host, sizeof(host));
        name = "[" + std::string(host) + "]:" + std::to_string(ntohs(p6->sin6_port));
      } else {
        auto* p4 = reinterpret_cast<sockaddr_in*>(&peer);
        inet_ntop(AF_INET, &p4->sin_addr, host, sizeof(host));
        name = std::string(host) + ":" + std::to_string(ntohs(p4->sin_port));
      }
      std::lock_guard lock(mutex_);
      if (stopping()) {
        close(fd);
        break;
      }
      serve(fd, std::move(name));
    }
  }
  set_step(Step::kStopped);
}

void ServerImpl::serve(int fd, std::string name) {
  accepted_.fetch_add(1, std::memory_order_release);
  set_step(Step::kConstructing);
  Running& run = running_.emplace_back();
  run.conn = std::make_unique<Connection>(*this, fd, name);
  Running* rp = &run;
  set_step(Step::kStarting);
  try {
    run.thread = std::thread([this, rp] {
      runs_entered_.fetch_add(1, std::memory_order_release);
      rp->conn->run();
      runs_finished_.fetch_add(1, std::memory_order_release);
      {
        std::lock_guard l(mutex_);
        rp->finished = true;
        changed_.notify_all();
      }
      // The acceptor joins us now: the thread, the socket and the buffers go
      // at once, not at its next poll timeout (stop() closes wake_fd_ only
      // after joining every connection thread).
      uint64_t one = 1;
      (void)!write(wake_fd_, &one, sizeof(one));
    });
  } catch (const std::system_error& e) {
    // No thread (EAGAIN: a thread or memory limit): drop this connection,
    // not the target (the exception would end the acceptor, then the process).
    log("iscsi: %s: no thread for the connection (%s), closing it", name.c_str(), e.what());
    thread_failures_.fetch_add(1, std::memory_order_release);
    running_.pop_back();  // closes the socket
    reaped_.fetch_add(1, std::memory_order_release);
    return;
  }
  threads_started_.fetch_add(1, std::memory_order_release);
}

void ServerImpl::reap(bool all) {
  std::list<Running> done;
  {
    std::lock_guard lock(mutex_);
    for (auto it = running_.begin(); it != running_.end();) {
      auto next = std::next(it);
      if (all || it->finished) done.splice(done.end(), running_, it);
      it = next;
    }
  }
  for (Running& r : done)
    if (r.thread.joinable()) r.thread.join();
  size_t n = done.size();
  done.clear();  // closes the sockets
  reaped_.fetch_add(n, std::memory_order_release);
}

void ServerImpl::stop() {
  if (!started_.load() || stopping_.exchange(true)) return;
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (acceptor_.joinable()) acceptor_.join();
  for (int fd : listen_fds_) close(fd);
  listen_fds_.clear();
  {
    // RFC 7143 11.9.1: ask every initiator to log out, give them the grace
    // period, then drop whoever is left.
    std::unique_lock lock(mutex_);
    for (Running& r : running_) r.conn->request_logout();
    changed_.wait_for(lock, options_.logout_grace, [this] {
      for (Running& r : running_)
        if (!r.finished) return false;
      return true;
    });
    for (Running& r : running_)
      if (!r.finished) r.conn->request_stop();
  }
  reap(true);
  if (wake_fd_ >= 0) close(wake_fd_);
  wake_fd_ = -1;
}

Session* ServerImpl::find_tsih(uint16_t tsih) const {
  for (auto& [key, s] : sessions_)
    if (s->tsih() == tsih) return s.get();
  return nullptr;
}

std::shared_ptr<Session> ServerImpl::create_session(Connection* conn, uint16_t cid,
                                                    const SessionKey& key,
                                                    const SessionParams& params,
                                                    uint32_t first_cmdsn) {
  std::unique_lock lock(mutex_);
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    // RFC 7143 6.3.5: session reinstatement. The old session's connections
    // are dropped, their tasks aborted (I_T nexus loss in the core); wait
    // until all of them are gone.
    std::shared_ptr<Session> old = it->second;
    log("iscsi: session of %s reinstated: dropping its %zu connection(s)", key.initiator.c_str(),
        old->members.size());
    old->ended = true;
    for (const Session::Member& m : old->members) m.conn->request_stop();
    changed_.wait(lock, [&] { return old->members.empty() && old->draining.empty(); });
    if (auto again = sessions_.find(key); again != sessions_.end() && again->second == old)
      sessions_.erase(again);
  }
  // A new session with the same key may have appeared meanwhile (two logins
  // racing): the later one reinstates it in turn.
  if (auto again = sessions_.find(key); again != sessions_.end()) {
    std::shared_ptr<Session> other = again->second;
    other->ended = true;
    for (const Session::Member& m : other->members) m.conn->request_stop();
    changed_.wait(lock, [&] { return other->members.empty() && other->draining.empty(); });
    if (auto still = sessions_.find(key); still != sessions_.end() && still->second == other)
      sessions_.erase(still);
  }
  for (int tries = 0; tries < 65536; ++tries) {
    uint16_t tsih = next_tsih_++;
    if (next_tsih_ == 0) next_tsih_ = 1;
    if (tsih == 0 || find_tsih(tsih)) continue;
    auto s = std::make_shared<Session>(key, tsih, params, window_, first_cmdsn,
                                       window_ + kImmediateTasks);
    s->members.push_back(Session::Member{conn, cid});
    s->connections.store(1, std::memory_order_release);
    sessions_[key] = s;
    return s;
  }
  return nullptr;
}

void ServerImpl::publish_session(Session& s, std::shared_ptr<core::Session> nexus) {
  std::lock_guard lock(mutex_);
  s.core_session = std::move(nexus);
  s.ready = true;
}

LoginStatus ServerImpl::can_join(uint16_t tsih, uint16_t cid, const SessionKey& key) const {
  std::lock_guard lock(mutex_);
  Session* s = find_tsih(tsih);
  if (!s || !(s->key() == key) || s->ended || !s->ready)
    return LoginStatus::session_does_not_exist();
  for (const Session::Member& m : s->members)
    if (m.cid == cid) return LoginStatus::success();  // reinstated at the end
  if (s->members.size() >= s->params().max_connections) return LoginStatus::too_many_connections();
  return LoginStatus::success();
}

LoginStatus ServerImpl::join_session(Connection* conn, uint16_t cid, const SessionKey& key,
                                     uint16_t tsih, std::shared_ptr<Session>* out) {
  std::unique_lock lock(mutex_);
  auto find = [&]() -> std::shared_ptr<Session> {
    Session* s = find_tsih(tsih);
    if (!s || !(s->key() == key) || s->ended || !s->ready) return nullptr;
    return sessions_[key];
  };
  std::shared_ptr<Session> s = find();
  if (!s) return LoginStatus::session_does_not_exist();
  Connection* old = nullptr;
  for (const Session::Member& m : s->members)
    if (m.cid == cid) old = m.conn;
  if (old) {
    // RFC 7143 6.3.4: a login with the CID of a connection of the session
    // reinstates it: the old connection is logged out implicitly and, at
    // ErrorRecoveryLevel 0, its tasks are aborted. The session lives on:
    // `joining` keeps it from ending while the old one is gone.
    log("iscsi: connection %u of %s reinstated: dropping the old one", cid, key.initiator.c_str());
    ++s->joining;
    old->request_stop();
    changed_.wait(lock, [&] {
      for (const Session::Member& m : s->members)
        if (m.conn == old) return false;
      for (Connection* c : s->draining)
        if (c == old) return false;
      return true;
    });
    --s->joining;
    if (s->ended) {
      // Closed meanwhile (logout reason 0, reinstatement). If the old
      // connection was the last, its leave left the I_T nexus to us.
      if (s->members.empty() && s->joining == 0 && !s->ended_by_last) {
        s->ended_by_last = true;
        if (auto it = sessions_.find(key); it != sessions_.end() && it->second == s)
          sessions_.erase(it);
        changed_.notify_all();
        lock.unlock();
        if (s->core_session) core_.close_session(*s->core_session);
      }
      return LoginStatus::session_does_not_exist();
    }
  }
  if (s->members.size() >= s->params().max_connections) return LoginStatus::too_many_connections();
  s->members.push_back(Session::Member{conn, cid});
  s->connections.store(static_cast<uint32_t>(s->members.size()), std::memory_order_release);
  *out = s;
  return LoginStatus::success();
}

bool ServerImpl::leave_session(Connection* conn, Session& s) {
  bool last = false;
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(s.members.begin(), s.members.end(),
                           [&](const Session::Member& m) { return m.conn == conn; });
    if (it != s.members.end()) s.members.erase(it);
    s.draining.push_back(conn);
    s.connections.store(static_cast<uint32_t>(s.members.size()), std::memory_order_release);
    if (s.members.empty() && s.joining == 0 && !s.ended_by_last) {
      s.ended = true;
      s.ended_by_last = true;
      last = true;
      if (auto f = sessions_.find(s.key()); f != sessions_.end() && f->second.get() == &s)
        sessions_.erase(f);
    }
    changed_.notify_all();
  }
  // Connections waiting for a CmdSN this one will never deliver re-check.
  s.forget_waiter(conn);
  s.wake_waiters();
  return last;
}

void ServerImpl::connection_finished(Connection* conn, Session& s) {
  std::lock_guard lock(mutex_);
  s.draining.erase(std::remove(s.draining.begin(), s.draining.end(), conn), s.draining.end());
  changed_.notify_all();
}

void ServerImpl::close_other_connections(Session& s, Connection* except) {
  std::lock_guard lock(mutex_);
  s.ended = true;  // 11.14.1 reason 0: the whole session closes; nobody joins
  for (const Session::Member& m : s.members)
    if (m.conn != except) m.conn->request_stop();
}

uint32_t ServerImpl::post_abort(Session& s, Connection* from, const AbortMark& mark) {
  std::lock_guard lock(mutex_);
  uint32_t n = 0;
  // The count is in place before any member can acknowledge.
  for (const Session::Member& m : s.members)
    if (m.conn != from) ++n;
  mark.tmf->acks.fetch_add(n, std::memory_order_acq_rel);
  for (const Session::Member& m : s.members)
    if (m.conn != from) m.conn->post_abort(mark);
  return n;
}

bool ServerImpl::close_connection(Session& s, uint16_t cid) {
  std::lock_guard lock(mutex_);
  for (const Session::Member& m : s.members) {
    if (m.cid == cid) {
      m.conn->request_stop();
      return true;
    }
  }
  return false;
}

std::string PortalAddress::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string target_address(const PortalAddress& portal, const std::string& local_host,
                           uint16_t portal_group_tag) {
  std::string host = portal.host;
  bool wildcard = host == "0.0.0.0" || host == "::";
  bool v6 = host.find(':') != std::string::npos;
  if (wildcard && !local_host.empty() && (local_host.find(':') != std::string::npos) == v6)
    host = local_host;
  return PortalAddress{host, portal.port}.to_string() + "," + std::to_string(portal_group_tag);
}

std::string ServerImpl::send_targets(std::string_view initiator, std::string_view which,
                                     const std::string& local_host) const {
  std::string out;
  for (const std::string& t : core_.access().targets()) {
    if (which != "All" && which != t) continue;
    // Only targets where the initiator's security group maps something.
    auto view = core_.access().resolve(t, initiator);
    if (!view || view->luns.empty()) continue;
    append_pair(out, "TargetName", t);
    for (const PortalAddress& p : bound_)
      append_pair(out, "TargetAddress", target_address(p, local_host, options_.portal_group_tag));
  }
  return out;
}

}  // namespace scstu::iscsi
