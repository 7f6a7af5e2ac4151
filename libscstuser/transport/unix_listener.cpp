#include "transport/unix_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace scstu::transport {
namespace {

constexpr int kHelloTimeoutMs = 2000;

void refuse(int conn, int err, const std::string& why) {
  ring::AttachReply reply;
  reply.error = err;
  std::snprintf(reply.message, sizeof(reply.message), "%s", why.c_str());
  send(conn, &reply, sizeof(reply), MSG_NOSIGNAL);
  std::fprintf(stderr, "scstu: attach refused: %s\n", why.c_str());
  close(conn);
}

}  // namespace

std::unique_ptr<UnixListener> UnixListener::create(const std::string& path, std::string* error) {
  std::unique_ptr<UnixListener> l(new UnixListener);
  l->path_ = path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    if (error) *error = "listener " + path + ": socket path empty or too long";
    return nullptr;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  l->listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (l->listen_fd_ < 0) {
    if (error) *error = "listener " + path + ": socket: " + std::strerror(errno);
    return nullptr;
  }
  // A socket file nobody listens on is a dead producer's leftover.
  int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(probe);
  if (live) {
    if (error) *error = "listener " + path + ": another producer is listening there";
    return nullptr;
  }
  unlink(path.c_str());
  if (bind(l->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(l->listen_fd_, 16) != 0) {
    if (error) *error = "listener " + path + ": bind/listen: " + std::strerror(errno);
    return nullptr;
  }
  l->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (l->stop_fd_ < 0) {
    if (error) *error = "listener " + path + ": eventfd: " + std::strerror(errno);
    return nullptr;
  }
  l->thread_ = std::thread([p = l.get()] { p->accept_loop(); });
  return l;
}

UnixListener::~UnixListener() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) < 0) {
      // Cannot fail on a fresh eventfd.
    }
    thread_.join();
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(path_.c_str());
  }
  if (stop_fd_ >= 0) close(stop_fd_);
}

void UnixListener::add_device(std::shared_ptr<RingDevice> device) {
  std::lock_guard lock(mu_);
  devices_[device->name()] = std::move(device);
}

void UnixListener::remove_device(const std::string& name) {
  std::lock_guard lock(mu_);
  devices_.erase(name);
}

void UnixListener::accept_loop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn >= 0) handshake(conn);
  }
}

void UnixListener::handshake(int conn) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != getuid() && cred.uid != 0)) {
    refuse(conn, EPERM,
           "handler pid " + std::to_string(cred.pid) + " runs as uid " + std::to_string(cred.uid) +
               ", not the producer's user");
    return;
  }
  pollfd p{conn, POLLIN, 0};
  ring::AttachHello hello;
  if (poll(&p, 1, kHelloTimeoutMs) != 1 ||
      recv(conn, &hello, sizeof(hello), MSG_DONTWAIT) != sizeof(hello)) {
    refuse(conn, EPROTO,
           "handler pid " + std::to_string(cred.pid) + " sent no valid hello within " +
               std::to_string(kHelloTimeoutMs) + " ms");
    return;
  }
  hello.device_name[sizeof(hello.device_name) - 1] = 0;
  std::shared_ptr<RingDevice> device;
  {
    std::lock_guard lock(mu_);
    auto it = devices_.find(hello.device_name);
    if (it != devices_.end()) device = it->second;
  }
  if (!device) {
    refuse(conn, ENODEV, std::string("no device named '") + hello.device_name + "' at " + path_);
    return;
  }
  std::string error;
  if (!device->attach(conn, hello, &error))
    std::fprintf(stderr, "scstu: attach refused: %s\n", error.c_str());
}

}  // namespace scstu::transport
