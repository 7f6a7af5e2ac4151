// block_device.h - the high-level handler API: a block device.
//
// A handler implements read/write/flush (and optionally unmap, write_same);
// the library's SCSI core (scsi/logical_unit.h) emulates the whole SBC command
// set on top: INQUIRY, MODE SENSE, READ CAPACITY, COMPARE AND WRITE, UNMAP,
// EXTENDED COPY, ... Like libfuse's high-level API over its low-level one.
//
// Two ways to implement it:
//  - BlockDevice::submit(): asynchronous, the request completes later from any
//    thread via BlockRequest::complete() (io_uring backends: io/).
//  - SimpleBlockDevice: synchronous pread/pwrite-style methods, for handlers
//    that are one small file (examples/).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>

namespace scstu {

enum class BlockOp : uint8_t {
  kRead,
  kWrite,
  kFlush,      // make every completed write durable (SYNCHRONIZE CACHE)
  kUnmap,      // deallocate [lba, lba + blocks); reads then return zeroes
  kWriteSame,  // replicate the one block in iov to [lba, lba + blocks)
};

// Request flags.
inline constexpr uint32_t kBlockFua = 1u << 0;  // durable before completion (SBC-3 FUA)

struct BlockRequest {
  BlockOp op = BlockOp::kRead;
  uint32_t flags = 0;
  uint64_t lba = 0;            // in logical blocks
  uint64_t blocks = 0;         // in logical blocks (0 for kFlush = whole device)
  std::span<const iovec> iov;  // kRead/kWrite: blocks*block_size bytes; kWriteSame: one block

  // Completion: error is 0 or a negative errno. The library maps errnos to
  // sense: -EIO medium error, -ENOSPC space allocation failed, -EROFS write
  // protected, -EOPNOTSUPP invalid opcode, anything else hardware error.
  void complete(int error) { done(this, error); }
  void (*done)(BlockRequest* req, int error) = nullptr;
  void* context = nullptr;  // the library's, do not touch
};

struct BlockGeometry {
  uint32_t block_size = 512;  // power of two, >= 512
  uint64_t blocks = 0;        // capacity in logical blocks
};

struct BlockCapabilities {
  bool unmap = false;          // kUnmap supported (thin provisioning)
  bool write_same = false;     // kWriteSame natively; else the library emulates with kWrite
  bool unmap_zeroes = true;    // reads of unmapped blocks return zeroes (LBPRZ)
  bool volatile_cache = true;  // a write cache exists: SYNCHRONIZE CACHE flushes (WCE=1)
  bool read_only = false;      // the medium is write-protected
  bool removable = false;
};

// Provisioning state of a run of blocks (SBC-3 4.7.1), as far as the device
// knows it: GET LBA STATUS reports it.
enum class BlockAllocation : uint8_t {
  kUnknown,      // the device cannot tell (the library then infers it, see below)
  kMapped,       // storage is allocated (reads return what was written)
  kDeallocated,  // unmapped: a hole (reads return zeroes when unmap_zeroes)
};

struct AllocationExtent {
  uint64_t blocks = 0;  // >= 1 unless kUnknown
  BlockAllocation state = BlockAllocation::kUnknown;
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual BlockGeometry geometry() const = 0;
  virtual BlockCapabilities capabilities() const { return {}; }
  // Start one request; complete it exactly once with req.complete(). The
  // request object stays valid until then.
  virtual void submit(BlockRequest& req) = 0;
  // Optional: the state of the blocks from `lba` on, as one extent of at
  // most `max_blocks` (>= 1) blocks in a single state; the caller asks again
  // from where it ends. Synchronous and called on a command's thread, so it
  // must be cheap (a file's SEEK_DATA/SEEK_HOLE, not a scan). The default,
  // kUnknown, makes GET LBA STATUS fall back to reading the blocks: with
  // LBPRZ a block of zeroes is reported deallocated.
  virtual AllocationExtent allocation(uint64_t /*lba*/, uint64_t /*max_blocks*/) const {
    return {};
  }
};

// Synchronous adapter: override the methods, each returns 0 or -errno.
class SimpleBlockDevice : public BlockDevice {
 public:
  virtual int read(uint64_t offset, std::span<const iovec> iov) = 0;
  virtual int write(uint64_t offset, std::span<const iovec> iov, bool fua) = 0;
  virtual int flush() { return 0; }
  virtual int unmap(uint64_t /*offset*/, uint64_t /*length*/) { return -95; /* EOPNOTSUPP */ }

  void submit(BlockRequest& req) final;
};

}  // namespace scstu
