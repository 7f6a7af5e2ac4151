#include "iscsi/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "core/target_core.h"
#include "iscsi/connection.h"
#include "iscsi/server_impl.h"
#include "iscsi/text_keys.h"

namespace scstu::iscsi {

Server::Server(core::TargetCore& core, ServerOptions options)
    : impl_(std::make_unique<ServerImpl>(core, std::move(options))) {}
Server::~Server() { impl_->stop(); }
bool Server::start(std::string* error) { return impl_->start(error); }
void Server::stop() { impl_->stop(); }
std::vector<PortalAddress> Server::portals() const { return impl_->portals(); }
size_t Server::session_count() const { return impl_->session_count(); }

ServerImpl::ServerImpl(core::TargetCore& core, ServerOptions options)
    : core_(core), options_(std::move(options)) {
  window_ = std::max<uint32_t>(1, options_.queue_depth);
  if (core_.limits().per_session) window_ = std::min(window_, core_.limits().per_session);
  login_config_.limits = options_.limits;
  login_config_.portal_group_tag = options_.portal_group_tag;
  login_config_.discovery_auth =
      options_.discovery_auth.incoming.empty() ? nullptr : &options_.discovery_auth;
  login_config_.session_exists = [this](uint16_t tsih) {
    std::lock_guard lock(mutex_);
    for (auto& [key, reg] : sessions_)
      if (reg.tsih == tsih) return true;
    return false;
  };
  login_config_.find_target = [this](std::string_view name) -> std::optional<LoginTarget> {
    if (!core_.access().has_target(name)) return std::nullopt;
    LoginTarget t;
    t.name = std::string(name);
    if (auto a = options_.target_alias.find(t.name); a != options_.target_alias.end())
      t.alias = a->second;
    if (auto a = options_.target_auth.find(t.name);
        a != options_.target_auth.end() && !a->second.incoming.empty())
      t.auth = &a->second;
    return t;
  };
}

ServerImpl::~ServerImpl() { stop(); }

void ServerImpl::log(const char* fmt, ...) {
  if (!options_.log) return;
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
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(p.port);
    if (inet_pton(AF_INET, p.host.c_str(), &addr.sin_addr) != 1) {
      errno = EINVAL;
      return fail(p, "not an IPv4 address");
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail(p, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
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
    bound_.push_back(PortalAddress{p.host, ntohs(addr.sin_port)});
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  acceptor_ = std::thread([this] { accept_loop(); });
  return true;
}

std::vector<PortalAddress> ServerImpl::portals() const { return bound_; }

size_t ServerImpl::session_count() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (auto& [key, reg] : sessions_)
    if (!key.target.empty()) ++n;
  return n;
}

void ServerImpl::accept_loop() {
  std::vector<pollfd> fds;
  for (int fd : listen_fds_) fds.push_back(pollfd{fd, POLLIN, 0});
  fds.push_back(pollfd{wake_fd_, POLLIN, 0});
  while (!stopping()) {
    int r = poll(fds.data(), fds.size(), 1000);
    reap(false);
    if (r <= 0) continue;
    for (size_t i = 0; i + 1 < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      int fd = accept4(fds[i].fd, reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      char host[INET_ADDRSTRLEN] = "?";
      inet_ntop(AF_INET, &peer.sin_addr, host, sizeof(host));
      std::string name = std::string(host) + ":" + std::to_string(ntohs(peer.sin_port));
      std::lock_guard lock(mutex_);
      if (stopping()) {
        close(fd);
        break;
      }
      Running& run = running_.emplace_back();
      run.conn = std::make_unique<Connection>(*this, fd, name);
      Running* rp = &run;
      run.thread = std::thread([this, rp] {
        rp->conn->run();
        std::lock_guard l(mutex_);
        rp->finished = true;
        changed_.notify_all();
      });
    }
  }
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

uint16_t ServerImpl::register_session(Connection* conn, const SessionKey& key) {
  std::unique_lock lock(mutex_);
  auto it = sessions_.find(key);
  if (it != sessions_.end() && it->second.conn != conn) {
    // RFC 7143 6.3.5: session reinstatement. The old connection is dropped,
    // its tasks aborted (I_T nexus loss in the core); wait until it is gone.
    Connection* old = it->second.conn;
    log("iscsi: session of %s reinstated: dropping the old connection", key.initiator.c_str());
    old->request_stop();
    changed_.wait(lock, [&] {
      auto f = sessions_.find(key);
      return f == sessions_.end() || f->second.conn != old;
    });
  }
  std::set<uint16_t> used;
  for (auto& [k, reg] : sessions_) used.insert(reg.tsih);
  for (int tries = 0; tries < 65536; ++tries) {
    uint16_t tsih = next_tsih_++;
    if (next_tsih_ == 0) next_tsih_ = 1;
    if (tsih == 0 || used.count(tsih)) continue;
    sessions_[key] = Registered{conn, tsih};
    return tsih;
  }
  return 0;
}

void ServerImpl::unregister_session(Connection* conn) {
  std::lock_guard lock(mutex_);
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->second.conn == conn) {
      sessions_.erase(it);
      break;
    }
  }
  changed_.notify_all();
}

std::string ServerImpl::send_targets(std::string_view initiator, std::string_view which) const {
  std::string out;
  for (const std::string& t : core_.access().targets()) {
    if (which != "All" && which != t) continue;
    // Only targets where the initiator's security group maps something.
    auto view = core_.access().resolve(t, initiator);
    if (!view || view->luns.empty()) continue;
    append_pair(out, "TargetName", t);
    for (const PortalAddress& p : bound_)
      append_pair(
          out, "TargetAddress",
          p.host + ":" + std::to_string(p.port) + "," + std::to_string(options_.portal_group_tag));
  }
  return out;
}

}  // namespace scstu::iscsi
