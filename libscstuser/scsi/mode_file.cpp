#include "scsi/mode_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "scsi/mode_pages.h"

namespace scstu::scsi {

std::string save_mode_file(const ModePages& pages, const std::string& path) {
  const std::string text = pages.saved_text();
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "mode page file " + tmp + ": open: " + std::strerror(errno);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      return "mode page file " + tmp + ": write: " + err;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    return "mode page file " + tmp + ": fsync: " + err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return "mode page file " + path + ": rename: " + std::strerror(errno);
  }
  return "";
}

std::string load_mode_file(ModePages& pages, const std::string& path) {
  std::ifstream in(path);
  if (!in) return errno == ENOENT ? "" : "mode page file " + path + ": " + std::strerror(errno);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string err = pages.load_saved_text(ss.str());
  if (!err.empty()) return "mode page file " + path + ": " + err + " (delete it to start over)";
  return "";
}

}  // namespace scstu::scsi
