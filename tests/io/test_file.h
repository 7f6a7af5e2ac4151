// test_file.h - scratch files and a synchronous way to run BlockRequests.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "handler/block_device.h"

namespace scstu::io::testing {

// A file in a fresh directory under $TMPDIR (or /var/tmp: a disk filesystem,
// so O_DIRECT and hole punching behave as on a real disk), removed at the end.
class ScratchFile {
 public:
  explicit ScratchFile(uint64_t size, const char* dir = nullptr) {
    std::string base = dir ? dir : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/var/tmp");
    std::string tmpl = base + "/scstu-io-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    dir_ = mkdtemp(buf.data());
    path_ = dir_ + "/disk.img";
    int fd = ::open(path_.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd >= 0) {
      if (ftruncate(fd, static_cast<off_t>(size)) != 0) path_.clear();
      ::close(fd);
    }
  }
  ~ScratchFile() {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

  std::vector<uint8_t> read_back(uint64_t offset, size_t len) const {
    std::vector<uint8_t> out(len);
    int fd = ::open(path_.c_str(), O_RDONLY);
    ssize_t n = pread(fd, out.data(), len, static_cast<off_t>(offset));
    ::close(fd);
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  void write_at(uint64_t offset, const std::vector<uint8_t>& data) const {
    int fd = ::open(path_.c_str(), O_WRONLY);
    ssize_t n = pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    (void)n;
    ::close(fd);
  }

 private:
  std::string dir_;
  std::string path_;
};

inline std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// Runs one request and waits for its completion; returns the error.
class SyncRequest {
 public:
  static int run(BlockDevice& dev, BlockOp op, uint64_t lba, uint64_t blocks,
                 std::vector<iovec> iov = {}, uint32_t flags = 0) {
    SyncRequest s;
    s.iov_ = std::move(iov);
    s.req_.op = op;
    s.req_.lba = lba;
    s.req_.blocks = blocks;
    s.req_.flags = flags;
    s.req_.iov = s.iov_;
    s.req_.context = &s;
    s.req_.done = [](BlockRequest* r, int error) {
      auto* self = static_cast<SyncRequest*>(r->context);
      std::lock_guard lock(self->mutex_);
      self->error_ = error;
      ++self->completions_;
      self->cv_.notify_all();
    };
    dev.submit(s.req_);
    std::unique_lock lock(s.mutex_);
    s.cv_.wait(lock, [&] { return s.completions_ > 0; });
    return s.error_;
  }

 private:
  BlockRequest req_;
  std::vector<iovec> iov_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int completions_ = 0;
  int error_ = 0;
};

inline std::vector<iovec> one_iov(void* p, size_t n) { return {iovec{p, n}}; }

}  // namespace scstu::io::testing
