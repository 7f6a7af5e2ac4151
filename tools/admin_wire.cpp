#include "admin_wire.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace scstu::tools {

namespace {

bool write_all(int fd, const void* data, size_t len, std::string* error) {
  const auto* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = std::string("send: ") + std::strerror(errno);
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool read_all(int fd, void* data, size_t len, std::string* error) {
  auto* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = std::string("receive: ") + std::strerror(errno);
      return false;
    }
    if (n == 0) {
      *error = "connection closed";
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool unix_address(const std::string& path, sockaddr_un* addr, std::string* error) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path) {
    *error = "socket path '" + path + "': empty or longer than " +
             std::to_string(sizeof addr->sun_path - 1) + " bytes";
    return false;
  }
  std::memcpy(addr->sun_path, path.c_str(), path.size());
  return true;
}

}  // namespace

bool send_message(int fd, const google::protobuf::MessageLite& message, std::string* error) {
  std::string body;
  if (!message.SerializeToString(&body)) {
    *error = "cannot serialize the message";
    return false;
  }
  if (body.size() > kMaxAdminMessage) {
    *error = "message of " + std::to_string(body.size()) + " bytes is too large";
    return false;
  }
  const uint32_t n = static_cast<uint32_t>(body.size());
  const uint8_t header[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                             static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  return write_all(fd, header, 4, error) && write_all(fd, body.data(), body.size(), error);
}

bool receive_message(int fd, google::protobuf::MessageLite* message, std::string* error) {
  uint8_t header[4];
  if (!read_all(fd, header, 4, error)) return false;
  const uint32_t n =
      uint32_t{header[0]} << 24 | uint32_t{header[1]} << 16 | uint32_t{header[2]} << 8 | header[3];
  if (n > kMaxAdminMessage) {
    *error = "peer sent a " + std::to_string(n) + "-byte message (limit " +
             std::to_string(kMaxAdminMessage) + ")";
    return false;
  }
  std::string body(n, '\0');
  if (!read_all(fd, body.data(), n, error)) return false;
  if (!message->ParseFromString(body)) {
    *error = "peer sent a malformed message";
    return false;
  }
  return true;
}

int connect_unix(const std::string& path, std::string* error) {
  sockaddr_un addr;
  if (!unix_address(path, &addr, error)) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = "connect " + path + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

int listen_unix(const std::string& path, std::string* error) {
  sockaddr_un addr;
  if (!unix_address(path, &addr, error)) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  // Replace a stale socket file, but never a live one or another kind of file.
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live =
        probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      *error = "listen on " + path + ": another process is serving it";
      close(fd);
      return -1;
    }
    unlink(path.c_str());
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0) {
    *error = "listen on " + path + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace scstu::tools
