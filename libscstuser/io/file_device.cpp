#include "io/file_device.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "io/blocking_io.h"

namespace scstu::io {

struct FileDevice::Request {
  IoOp op;
  BlockRequest* req = nullptr;
  FileDevice* device = nullptr;
  uint32_t slot = 0;  // index in slots_, or UINT32_MAX when heap-allocated
  // O_DIRECT bounce buffer for memory the kernel cannot DMA into directly.
  void* bounce = nullptr;
  iovec bounce_iov{};
};

static constexpr uint32_t kHeapSlot = UINT32_MAX;
static constexpr uint32_t kMaxBlockSize = 1u << 20;

static std::string errno_text(int err) { return std::strerror(err); }

static bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// A block device's queue limit from sysfs (a partition's is its disk's), or
// -1 when it cannot be read.
static int64_t bdev_queue_limit(dev_t rdev, const char* name) {
  const std::string dir =
      "/sys/dev/block/" + std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
  for (const std::string& path : {dir + "/queue/" + name, dir + "/../queue/" + name}) {
    if (FILE* f = std::fopen(path.c_str(), "re")) {
      long long value = -1;
      const int n = std::fscanf(f, "%lld", &value);
      std::fclose(f);
      if (n == 1) return value;
    }
  }
  return -1;
}

FileDevice::FileDevice(std::string path, const FileDeviceOptions& options)
    : path_(std::move(path)), options_(options) {}

std::unique_ptr<FileDevice> FileDevice::open(const std::string& path,
                                             const FileDeviceOptions& requested,
                                             std::unique_ptr<IoEngine> engine) {
  FileDeviceOptions options = requested;
  if (options.cdrom) {
    // MMC-6: CD/DVD logical blocks are 2048 bytes; the medium is read-only.
    options.block_size = 2048;
    options.read_only = true;
    options.removable = true;
  }
  if (options.nv_cache) options.write_through = false;  // the seed: NV_CACHE overrides it
  if (!is_power_of_two(options.block_size) || options.block_size < 512 ||
      options.block_size > kMaxBlockSize) {
    throw FileDeviceError(path + ": block size " + std::to_string(options.block_size) +
                          " is not a power of two between 512 and " +
                          std::to_string(kMaxBlockSize));
  }

  std::unique_ptr<FileDevice> dev(new FileDevice(path, options));
  const bool read_only = options.read_only || options.nullio;
  int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (options.write_through && !options.nullio) flags |= O_DSYNC;
  const bool direct = options.direct && !options.nullio;
  dev->fd_ = ::open(path.c_str(), flags | (direct ? O_DIRECT : 0));
  if (dev->fd_ < 0) {
    int err = errno;
    if (direct && err == EINVAL) {
      throw FileDeviceError("open " + path +
                            " with O_DIRECT: not supported by its filesystem (drop --o-direct)");
    }
    throw FileDeviceError("open " + path + ": " + errno_text(err));
  }
  struct stat st {};
  if (fstat(dev->fd_, &st) != 0) throw FileDeviceError("stat " + path + ": " + errno_text(errno));
  if (S_ISBLK(st.st_mode)) {
    dev->block_device_ = true;
  } else if (!S_ISREG(st.st_mode)) {
    throw FileDeviceError(path + ": not a regular file or a block device");
  }
  struct statfs fs {};
  if (!dev->block_device_ && fstatfs(dev->fd_, &fs) == 0) {
    dev->memory_backed_ = fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
  }
  dev->read_size();
  dev->physical_block_exponent_ = dev->physical_exponent();
  if (dev->blocks_.load() == 0) {
    throw FileDeviceError(path + ": smaller than one " + std::to_string(options.block_size) +
                          "-byte block (create it first, e.g. truncate -s 1G " + path + ")");
  }

  if (direct) {
    dev->buffered_fd_ = ::open(path.c_str(), flags);
    if (dev->buffered_fd_ < 0) throw FileDeviceError("open " + path + ": " + errno_text(errno));
    // Linux 6.1+ says what direct I/O needs; else assume the common worst
    // case (4 KiB sectors, page-aligned memory) and bounce the rest.
    struct statx stx {};
    uint32_t offset_align = 4096, mem_align = 4096;
    if (statx(dev->fd_, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align != 0) {
      offset_align = stx.stx_dio_offset_align;
      mem_align = std::max<uint32_t>(stx.stx_dio_mem_align, 1);
    } else if (dev->block_device_) {
      int sector = 0;
      if (ioctl(dev->fd_, BLKSSZGET, &sector) == 0 && sector > 0) {
        offset_align = static_cast<uint32_t>(sector);
      }
    }
    dev->dio_offset_align_ = offset_align;
    dev->dio_mem_align_ = std::max<uint32_t>(mem_align, sizeof(void*));
  }

  if (options.thin && !read_only && dev->block_device_) {
    // fallocate(PUNCH_HOLE) on a block device is a WRITE ZEROES that may
    // unmap and never falls back to writing (block/fops.c): reads return
    // zeroes afterwards, as LBPRZ promises, which BLKDISCARD does not
    // guarantee. It needs the device's support and whole device sectors.
    if (bdev_queue_limit(st.st_rdev, "write_zeroes_max_bytes") == 0) {
      throw FileDeviceError(path +
                            ": --thin needs a block device that can write zeroes or unmap "
                            "(its queue/write_zeroes_max_bytes is 0); drop --thin");
    }
    int sector = 512;
    if (ioctl(dev->fd_, BLKSSZGET, &sector) == 0 &&
        static_cast<uint32_t>(sector) > options.block_size) {
      throw FileDeviceError(path + ": --thin with " + std::to_string(options.block_size) +
                            "-byte blocks on a device of " + std::to_string(sector) +
                            "-byte sectors cannot unmap single blocks: use --block-size " +
                            std::to_string(sector));
    }
  }
  if (options.thin && !read_only && !dev->block_device_) {
    // Probe hole punching past the end of the file: KEEP_SIZE makes it
    // harmless, and a filesystem without it says EOPNOTSUPP now, not at the
    // first UNMAP.
    if (fallocate(dev->fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size,
                  options.block_size) != 0 &&
        errno == EOPNOTSUPP) {
      throw FileDeviceError(path + ": --thin needs hole punching, which its filesystem lacks");
    }
  }

  if (engine) {
    dev->engine_ = std::move(engine);
  } else if (!options.nullio) {
    std::string note;
    dev->engine_ = make_io_engine(options.engine, &note);
    if (!dev->engine_) throw FileDeviceError(path + ": " + note);
    dev->engine_note_ = note;
  }

  dev->nr_slots_ = std::max(options.engine.queue_depth, 1u);
  dev->slots_ = std::make_unique<Request[]>(dev->nr_slots_);
  dev->next_free_ = std::make_unique<std::atomic<uint32_t>[]>(dev->nr_slots_);
  for (uint32_t i = 0; i < dev->nr_slots_; ++i) {
    dev->slots_[i].slot = i;
    dev->slots_[i].device = dev.get();
    dev->next_free_[i].store(i + 1 < dev->nr_slots_ ? i + 2 : 0);
  }
  dev->free_head_.store(1);  // index 0, tag 0
  return dev;
}

FileDevice::~FileDevice() {
  engine_.reset();  // waits for I/O in flight
  if (fd_ >= 0) ::close(fd_);
  if (buffered_fd_ >= 0) ::close(buffered_fd_);
}

void FileDevice::read_size() {
  uint64_t bytes = 0;
  if (block_device_) {
    if (ioctl(fd_, BLKGETSIZE64, &bytes) != 0) {
      throw FileDeviceError("BLKGETSIZE64 " + path_ + ": " + errno_text(errno));
    }
  } else {
    struct stat st {};
    if (fstat(fd_, &st) != 0) throw FileDeviceError("stat " + path_ + ": " + errno_text(errno));
    bytes = static_cast<uint64_t>(st.st_size);
  }
  // A partial last block is not addressable (vdisk does the same).
  blocks_.store(bytes / options_.block_size, std::memory_order_release);
}

// See FileDeviceOptions::physical_block_size. Throws on a bad value.
uint8_t FileDevice::physical_exponent() const {
  const uint32_t bs = options_.block_size;
  uint32_t physical = options_.physical_block_size;
  if (physical == 0) {
    unsigned int device_physical = 0;
    if (block_device_ && ioctl(fd_, BLKPBSZGET, &device_physical) == 0 && device_physical > bs &&
        is_power_of_two(device_physical)) {
      physical = device_physical;
    } else {
      physical = bs;
    }
  }
  // SBC-3 5.16.2: the exponent is a 4-bit field.
  if (!is_power_of_two(physical) || physical < bs || physical / bs > (1u << 15)) {
    throw FileDeviceError(path_ + ": physical block size " + std::to_string(physical) +
                          " must be a power of two from the block size (" + std::to_string(bs) +
                          ") to 32768 blocks");
  }
  return static_cast<uint8_t>(std::countr_zero(physical / bs));
}

bool FileDevice::resync_size() {
  const uint64_t before = blocks_.load(std::memory_order_acquire);
  read_size();
  return blocks_.load(std::memory_order_acquire) != before;
}

BlockGeometry FileDevice::geometry() const {
  return BlockGeometry{options_.block_size, blocks_.load(std::memory_order_acquire)};
}

BlockCapabilities FileDevice::capabilities() const {
  BlockCapabilities caps;
  caps.unmap = options_.thin && !options_.read_only;
  caps.write_same = false;   // the library emulates it with writes
  caps.unmap_zeroes = true;  // punched holes read back as zeroes
  caps.volatile_cache = !(options_.write_through || options_.nv_cache || options_.nullio);
  caps.read_only = options_.read_only;
  caps.removable = options_.removable;
  return caps;
}

AllocationExtent FileDevice::allocation(uint64_t lba, uint64_t max_blocks) const {
  const uint64_t capacity = blocks_.load(std::memory_order_acquire);
  if (block_device_ || options_.nullio || lba >= capacity || max_blocks == 0) return {};
  const uint64_t bs = options_.block_size;
  max_blocks = std::min(max_blocks, capacity - lba);
  const off_t start = static_cast<off_t>(lba * bs);
  const off_t data = lseek(fd_, start, SEEK_DATA);
  if (data < 0 && errno != ENXIO) return {};  // EINVAL: no SEEK_DATA on this filesystem
  // ENXIO: no data from here to the end of the file.
  const uint64_t hole_end = data < 0 ? capacity * bs : static_cast<uint64_t>(data);
  // A hole covers the blocks that lie wholly inside it.
  if (const uint64_t hole_blocks = (hole_end - static_cast<uint64_t>(start)) / bs; hole_blocks) {
    return {std::min(hole_blocks, max_blocks), BlockAllocation::kDeallocated};
  }
  // Data at or within the first block: mapped up to the next hole, rounded up
  // to whole blocks (a block holding any data is mapped).
  const off_t hole = lseek(fd_, data, SEEK_HOLE);
  if (hole < 0) return {};
  const uint64_t mapped = (static_cast<uint64_t>(hole) - start + bs - 1) / bs;
  return {std::clamp<uint64_t>(mapped, 1, max_blocks), BlockAllocation::kMapped};
}

IoEngineKind FileDevice::engine_kind() const {
  return engine_ ? engine_->kind() : IoEngineKind::kAuto;
}

int FileDevice::register_buffers(std::span<const iovec> regions) {
  return engine_ ? engine_->register_buffers(regions) : 0;
}

int FileDevice::reserve_fixed_buffers(unsigned count) {
  return engine_ ? engine_->reserve_fixed_buffers(count) : 0;
}

int FileDevice::set_fixed_buffer(unsigned index, std::span<std::byte> buffer) {
  return engine_ ? engine_->set_fixed_buffer(index, iovec{buffer.data(), buffer.size()}) : 0;
}

IoEngineStats FileDevice::io_stats() const { return engine_ ? engine_->stats() : IoEngineStats{}; }

FileDevice::Request* FileDevice::acquire() {
  uint64_t head = free_head_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t index = static_cast<uint32_t>(head);
    if (index == 0) break;
    const uint32_t next = next_free_[index - 1].load(std::memory_order_relaxed);
    const uint64_t tagged = ((head >> 32) + 1) << 32 | next;
    if (free_head_.compare_exchange_weak(head, tagged, std::memory_order_acquire,
                                         std::memory_order_acquire)) {
      return &slots_[index - 1];
    }
  }
  // More requests in flight than the queue depth: the rare path allocates.
  auto* r = new Request();
  r->slot = kHeapSlot;
  r->device = this;
  return r;
}

void FileDevice::release(Request* r) {
  r->req = nullptr;
  r->op.rest.clear();
  if (r->slot == kHeapSlot) {
    delete r;
    return;
  }
  uint64_t head = free_head_.load(std::memory_order_relaxed);
  for (;;) {
    next_free_[r->slot].store(static_cast<uint32_t>(head), std::memory_order_relaxed);
    const uint64_t tagged = ((head >> 32) + 1) << 32 | (r->slot + 1);
    if (free_head_.compare_exchange_weak(head, tagged, std::memory_order_release,
                                         std::memory_order_relaxed)) {
      return;
    }
  }
}

static uint64_t iov_bytes(std::span<const iovec> iov) {
  uint64_t total = 0;
  for (const iovec& seg : iov) total += seg.iov_len;
  return total;
}

void FileDevice::submit(BlockRequest& req) {
  const uint64_t bs = options_.block_size;
  const uint64_t capacity = blocks_.load(std::memory_order_acquire);
  const bool data_op = req.op == BlockOp::kRead || req.op == BlockOp::kWrite ||
                       req.op == BlockOp::kUnmap || req.op == BlockOp::kWriteSame;
  if (data_op && (req.lba > capacity || req.blocks > capacity - req.lba)) {
    return fail(req, -EINVAL);  // the LU checks ranges first; never touch beyond the end
  }
  const bool writes =
      req.op == BlockOp::kWrite || req.op == BlockOp::kUnmap || req.op == BlockOp::kWriteSame;
  if (writes && options_.read_only) return fail(req, -EROFS);
  if ((req.op == BlockOp::kRead || req.op == BlockOp::kWrite) &&
      iov_bytes(req.iov) != req.blocks * bs) {
    return fail(req, -EINVAL);
  }

  switch (req.op) {
    case BlockOp::kWriteSame:
      return fail(req, -EOPNOTSUPP);  // capabilities().write_same is false
    case BlockOp::kUnmap:
      if (!options_.thin) return fail(req, -EOPNOTSUPP);
      break;
    case BlockOp::kFlush:
      // NV_CACHE: the seed ignores every synchronization with the medium.
      if (options_.nv_cache || options_.nullio) return req.complete(0);
      break;
    case BlockOp::kRead:
    case BlockOp::kWrite:
      break;
  }

  if (options_.nullio) {
    // No I/O, but a read must never hand out what the buffer held before.
    if (req.op == BlockOp::kRead) {
      for (const iovec& seg : req.iov) std::memset(seg.iov_base, 0, seg.iov_len);
    }
    return req.complete(0);
  }

  if (options_.inline_io && !options_.direct && try_inline(req)) return;
  start_io(req);
}

// The inline fast paths (see file_device.h). True when req was completed.
bool FileDevice::try_inline(BlockRequest& req) {
  const uint64_t bs = options_.block_size;
  if (memory_backed_) {
    // Nothing here waits for a device: do it now, on this thread.
    IoOp op;
    op.fd = fd_;
    op.offset = req.lba * bs;
    op.length = req.blocks * bs;
    op.iov = req.iov;
    switch (req.op) {
      case BlockOp::kRead:
        op.kind = IoKind::kRead;
        break;
      case BlockOp::kWrite:
        op.kind = IoKind::kWrite;
        break;
      case BlockOp::kFlush:
        op.kind = IoKind::kSync;
        break;
      case BlockOp::kUnmap:
        op.kind = IoKind::kPunchHole;
        if (op.length == 0) {
          req.complete(0);
          return true;
        }
        break;
      case BlockOp::kWriteSame:
        return false;
    }
    req.complete(run_blocking(op));
    return true;
  }
  const bool read = req.op == BlockOp::kRead;
  const bool plain_write =
      req.op == BlockOp::kWrite && !(req.flags & kBlockFua) && !options_.write_through;
  std::atomic<bool>& supported = read ? nowait_reads_ : nowait_writes_;
  if ((!read && !plain_write) || req.iov.empty() || !supported.load(std::memory_order_relaxed)) {
    return false;
  }
  const uint64_t want = req.blocks * bs;
  const int iovcnt = static_cast<int>(std::min<size_t>(req.iov.size(), IOV_MAX));
  const off_t offset = static_cast<off_t>(req.lba * bs);
  ssize_t n = read ? preadv2(fd_, req.iov.data(), iovcnt, offset, RWF_NOWAIT)
                   : pwritev2(fd_, req.iov.data(), iovcnt, offset, RWF_NOWAIT);
  if (n >= 0 && static_cast<uint64_t>(n) == want) {
    req.complete(0);
    return true;
  }
  if (n < 0 && errno == EOPNOTSUPP) supported.store(false, std::memory_order_relaxed);
  // A miss or a partial transfer: the engine does the whole request (a
  // partial write is simply written again, with the same data).
  return false;
}

void FileDevice::start_io(BlockRequest& req) {
  const uint64_t bs = options_.block_size;
  Request* r = acquire();
  r->req = &req;
  IoOp& op = r->op;
  op.fd = fd_;
  op.rw_flags = 0;
  op.offset = req.lba * bs;
  op.length = req.blocks * bs;
  op.iov = req.iov;
  op.finish = &FileDevice::finish;
  op.owner = r;
  switch (req.op) {
    case BlockOp::kRead:
      op.kind = IoKind::kRead;
      break;
    case BlockOp::kWrite:
      op.kind = IoKind::kWrite;
      // SBC-3 5.38: FUA = durable before status. Write-through descriptors
      // are O_DSYNC already; NV_CACHE ignores it (submit() never clears it).
      if ((req.flags & kBlockFua) && !options_.write_through && !options_.nv_cache) {
        op.rw_flags = RWF_DSYNC;
      }
      break;
    case BlockOp::kFlush:
      op.kind = IoKind::kSync;
      op.length = 0;
      op.iov = {};
      break;
    case BlockOp::kUnmap:
      op.kind = IoKind::kPunchHole;
      op.iov = {};
      if (op.length == 0) {
        release(r);
        return req.complete(0);
      }
      break;
    case BlockOp::kWriteSame:
      break;  // refused in submit()
  }

  if (options_.direct && (op.kind == IoKind::kRead || op.kind == IoKind::kWrite)) {
    if (op.offset % dio_offset_align_ != 0 || op.length % dio_offset_align_ != 0) {
      // A block smaller than the direct-I/O sector: the buffered descriptor
      // does the read-modify-write inside the kernel, coherently with O_DIRECT.
      op.fd = buffered_fd_;
    } else {
      bool aligned = true;
      for (const iovec& seg : op.iov) {
        if (reinterpret_cast<uintptr_t>(seg.iov_base) % dio_mem_align_ != 0 ||
            seg.iov_len % dio_offset_align_ != 0) {
          aligned = false;
          break;
        }
      }
      if (!aligned) {
        void* bounce = nullptr;
        if (posix_memalign(&bounce, std::max<size_t>(dio_mem_align_, 4096), op.length) != 0) {
          release(r);
          return req.complete(-ENOMEM);
        }
        r->bounce = bounce;
        if (op.kind == IoKind::kWrite) {
          auto* p = static_cast<char*>(bounce);
          for (const iovec& seg : op.iov) {
            std::memcpy(p, seg.iov_base, seg.iov_len);
            p += seg.iov_len;
          }
        }
        r->bounce_iov = iovec{bounce, op.length};
        op.iov = std::span<const iovec>(&r->bounce_iov, 1);
      }
    }
  }
  engine_->submit(op);
}

void FileDevice::finish(IoOp* op, int result) {
  auto* r = static_cast<Request*>(op->owner);
  BlockRequest* req = r->req;
  if (r->bounce) {
    if (result == 0 && op->kind == IoKind::kRead) {
      const auto* p = static_cast<const char*>(r->bounce);
      for (const iovec& seg : req->iov) {
        std::memcpy(seg.iov_base, p, seg.iov_len);
        p += seg.iov_len;
      }
    }
    std::free(r->bounce);
    r->bounce = nullptr;
  }
  // Free the slot before completing: the completion may submit the next
  // request (COMPARE AND WRITE's write after its read).
  r->device->release(r);
  req->complete(result);
}

}  // namespace scstu::io
