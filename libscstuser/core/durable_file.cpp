#include "core/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace scstu::core {

namespace {

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The rename or unlink itself is durable only once the directory is.
void sync_directory(const std::string& path) {
  const int dfd = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  ::fsync(dfd);
  ::close(dfd);
}

}  // namespace

std::string replace_file_durably(const std::string& path, std::string_view text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](const char* step, int fd) {
    const std::string msg = tmp + ": " + step + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return msg;
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail("open", -1);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", fd);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync", fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename", -1);
  sync_directory(path);
  return "";
}

std::string remove_file_durably(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return "";
    return path + ": unlink: " + std::strerror(errno);
  }
  sync_directory(path);
  return "";
}

}  // namespace scstu::core
