// file_device.h - a regular file or a block device as a scstu::BlockDevice,
// with the seed's vdisk flags (SCST README, "VDISK device handler"):
//
//   write_through  every write is durable before its status (O_DSYNC); the LU
//                  reports no volatile cache (WCE=0).
//   read_only      opened O_RDONLY; writes and unmaps fail with -EROFS.
//   direct         O_DIRECT: no page cache. Requests whose memory is not
//                  aligned for direct I/O go through an aligned bounce buffer;
//                  requests whose offset or length is not (block size below
//                  the file's direct-I/O alignment) go through a second,
//                  buffered descriptor: Linux keeps the two coherent.
//   nullio         no I/O at all; reads return zeroes (never stale memory).
//   nv_cache       the cache is non-volatile: SYNCHRONIZE CACHE and FUA are
//                  no-ops and the LU reports write-through (WCE=0). Overrides
//                  write_through.
//   removable      reported as removable medium (RMB).
//   thin           UNMAP / WRITE SAME(UNMAP) punch holes (fallocate
//                  PUNCH_HOLE|KEEP_SIZE); holes read back as zeroes.
//   cdrom          an ISO image as a read-only MMC device: 2048-byte blocks,
//                  removable, peripheral device type 5.
//
// I/O runs on an io_uring engine (or worker threads, see io_engine.h), except
// where going through it only adds a thread hop (inline_io):
//  - buffered files: reads and plain writes are first tried with
//    preadv2/pwritev2(RWF_NOWAIT): a page-cache hit completes on the caller's
//    thread with one system call; a miss goes to the engine;
//  - memory-backed files (tmpfs, ramfs), which support no RWF_NOWAIT and
//    which io_uring always hands to a worker thread: everything inline, since
//    no request there waits for a device.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "handler/block_device.h"
#include "io/io_engine.h"

namespace scstu::io {

struct FileDeviceOptions {
  uint32_t block_size = 512;  // power of two, 512 .. 1 MiB; cdrom forces 2048
  // Physical block (SBC-3 READ CAPACITY(16) LOGICAL BLOCKS PER PHYSICAL BLOCK
  // EXPONENT): a power of two >= block_size, at most 2^15 logical blocks.
  // 0: a block device's own (BLKPBSZGET) when larger than block_size, else
  // block_size.
  uint32_t physical_block_size = 0;
  bool write_through = false;
  bool read_only = false;
  bool direct = false;
  bool nullio = false;
  bool nv_cache = false;
  bool removable = false;
  bool thin = false;
  bool cdrom = false;
  bool inline_io = true;  // the inline fast paths above (off: every request via the engine)
  IoEngineOptions engine;
};

// Thrown by FileDevice::open with a message naming the file and the cause,
// e.g. "open disk0.img: Permission denied".
class FileDeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class FileDevice final : public BlockDevice {
 public:
  // engine: use this one instead of making one from options.engine (tests
  // wrap an engine to see the operations).
  static std::unique_ptr<FileDevice> open(const std::string& path, const FileDeviceOptions& options,
                                          std::unique_ptr<IoEngine> engine = nullptr);
  ~FileDevice() override;
  FileDevice(const FileDevice&) = delete;
  FileDevice& operator=(const FileDevice&) = delete;

  BlockGeometry geometry() const override;
  // Logical blocks per physical block, as an exponent (options above).
  uint8_t physical_block_exponent() const { return physical_block_exponent_; }
  BlockCapabilities capabilities() const override;
  void submit(BlockRequest& req) override;
  // A regular file's holes (SEEK_DATA / SEEK_HOLE): a block lying wholly in a
  // hole is deallocated, one holding any data is mapped. kUnknown for a block
  // device (Linux reports a block device all data) and with nullio.
  AllocationExtent allocation(uint64_t lba, uint64_t max_blocks) const override;

  // SPC-4 peripheral device type: 5 (CD-ROM) with options.cdrom, else 0.
  uint8_t device_type() const { return options_.cdrom ? 5 : 0; }
  const std::string& path() const { return path_; }
  const FileDeviceOptions& options() const { return options_; }
  IoEngineKind engine_kind() const;
  // Why the engine is the thread pool although io_uring was asked for (kAuto).
  const std::string& engine_note() const { return engine_note_; }

  // The seed's resync_size: re-read the size of the file or block device.
  // Returns true when the capacity (in blocks) changed; throws FileDeviceError
  // when the size cannot be read. The caller tells the LU (CAPACITY DATA HAS
  // CHANGED).
  bool resync_size();

  // Register memory the requests' buffers live in (the ring's data area) as
  // io_uring fixed buffers, replacing an earlier registration (an empty span
  // only drops it); single-segment requests inside it then use
  // READ_FIXED/WRITE_FIXED (O_DIRECT I/O goes straight between the file and
  // that memory). Returns 0 or -errno (e.g. -ENOMEM past RLIMIT_MEMLOCK, or
  // -EFAULT for memory io_uring cannot pin); the I/O works either way. Safe
  // while I/O is in flight: requests already submitted keep their pages.
  int register_buffers(std::span<const iovec> regions);
  // The same for buffers registered one at a time (IoEngine::
  // reserve_fixed_buffers / set_fixed_buffer): embedded mode's LocalDevice
  // slots. Clear or replace an entry before its memory is freed.
  int reserve_fixed_buffers(unsigned count);
  int set_fixed_buffer(unsigned index, std::span<std::byte> buffer);
  // The engine's counters (fixed vs vectored reads and writes).
  IoEngineStats io_stats() const;

  struct Request;  // per-request state (file_device.cpp)

 private:
  FileDevice(std::string path, const FileDeviceOptions& options);
  void read_size();
  uint8_t physical_exponent() const;
  void start_io(BlockRequest& req);
  bool try_inline(BlockRequest& req);
  void fail(BlockRequest& req, int error) { req.complete(error); }
  Request* acquire();
  void release(Request* r);
  static void finish(IoOp* op, int result);

  std::string path_;
  FileDeviceOptions options_;
  int fd_ = -1;           // the device's descriptor (O_DIRECT when options.direct)
  int buffered_fd_ = -1;  // options.direct only: for requests direct I/O cannot take
  bool block_device_ = false;
  bool memory_backed_ = false;            // tmpfs / ramfs
  std::atomic<bool> nowait_reads_{true};  // cleared when the file says EOPNOTSUPP
  std::atomic<bool> nowait_writes_{true};
  uint8_t physical_block_exponent_ = 0;
  uint32_t dio_offset_align_ = 512;
  uint32_t dio_mem_align_ = 4096;
  std::atomic<uint64_t> blocks_{0};
  std::unique_ptr<IoEngine> engine_;
  std::string engine_note_;

  // Free list of Request slots: a lock-free stack of indexes tagged against
  // ABA (tag << 32 | index + 1). A burst beyond it allocates.
  std::unique_ptr<Request[]> slots_;
  uint32_t nr_slots_ = 0;
  std::unique_ptr<std::atomic<uint32_t>[]> next_free_;
  std::atomic<uint64_t> free_head_{0};
};

}  // namespace scstu::io
