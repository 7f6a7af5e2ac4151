// FileDevice over real files, with both engines.
#include "io/file_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "test_file.h"

namespace scstu::io {
namespace {

using testing::one_iov;
using testing::random_bytes;
using testing::ScratchFile;
using testing::SyncRequest;

constexpr uint64_t kMiB = 1 << 20;

// Forwards to a real engine and records what FileDevice asked of it.
class RecordingEngine final : public IoEngine {
 public:
  explicit RecordingEngine(std::unique_ptr<IoEngine> inner) : inner_(std::move(inner)) {}
  struct Seen {
    IoKind kind;
    int rw_flags;
    int fd_flags;  // fcntl(F_GETFL) of the descriptor used
  };
  IoEngineKind kind() const override { return inner_->kind(); }
  void submit(IoOp& op) override {
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(Seen{op.kind, op.rw_flags, fcntl(op.fd, F_GETFL)});
    }
    inner_->submit(op);
  }
  int register_buffers(std::span<const iovec> r) override { return inner_->register_buffers(r); }
  int fixed_index(const void* b, size_t n) const override { return inner_->fixed_index(b, n); }
  IoEngineStats stats() const override { return inner_->stats(); }
  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  std::unique_ptr<IoEngine> inner_;
  std::mutex mutex_;
  std::vector<Seen> seen_;
};

std::unique_ptr<IoEngine> engine_of(IoEngineKind kind) {
  std::string error;
  IoEngineOptions o;
  o.kind = kind;
  auto e = make_io_engine(o, &error);
  EXPECT_TRUE(e) << error;
  return e;
}

class EngineTest : public ::testing::TestWithParam<IoEngineKind> {
 protected:
  FileDeviceOptions options() {
    FileDeviceOptions o;
    o.engine.kind = GetParam();
    o.inline_io = false;  // exercise the engine for every request
    return o;
  }
};

TEST_P(EngineTest, RoundTripMultiSegment) {
  ScratchFile file(4 * kMiB);
  auto dev = FileDevice::open(file.path(), options());
  ASSERT_EQ(dev->engine_kind(), GetParam());
  EXPECT_EQ(dev->geometry().block_size, 512u);
  EXPECT_EQ(dev->geometry().blocks, 4 * kMiB / 512);

  auto data = random_bytes(64 * 1024, 1);
  // Three uneven segments covering 128 blocks.
  std::vector<iovec> iov = {
      {data.data(), 1000}, {data.data() + 1000, 30000}, {data.data() + 31000, data.size() - 31000}};
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 100, 128, iov), 0);
  EXPECT_EQ(file.read_back(100 * 512, data.size()), data);

  std::vector<uint8_t> back(data.size(), 0xEE);
  std::vector<iovec> riov = {{back.data(), 4096}, {back.data() + 4096, back.size() - 4096}};
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 100, 128, riov), 0);
  EXPECT_EQ(back, data);
}

TEST_P(EngineTest, ManyConcurrentRequestsBeyondQueueDepth) {
  ScratchFile file(8 * kMiB);
  FileDeviceOptions o = options();
  o.engine.queue_depth = 4;  // force the allocating overflow path too
  o.block_size = 4096;
  auto dev = FileDevice::open(file.path(), o);
  constexpr int kRequests = 256;
  std::vector<std::vector<uint8_t>> bufs(kRequests);
  std::vector<BlockRequest> reqs(kRequests);
  std::vector<iovec> iovs(kRequests);
  struct Counters {
    std::atomic<int> done{0};
    std::atomic<int> errors{0};
  } counters;
  for (int i = 0; i < kRequests; ++i) {
    bufs[i] = random_bytes(4096, 100 + i);
    iovs[i] = iovec{bufs[i].data(), 4096};
    reqs[i].op = BlockOp::kWrite;
    reqs[i].lba = static_cast<uint64_t>(i) * 7 % 2048;  // distinct: 7 is coprime to 2048
    reqs[i].blocks = 1;
    reqs[i].iov = std::span<const iovec>(&iovs[i], 1);
    reqs[i].context = &counters;
    reqs[i].done = [](BlockRequest* r, int e) {
      auto* c = static_cast<Counters*>(r->context);
      if (e != 0 && c->errors.fetch_add(1) == 0) fprintf(stderr, "error %d\n", e);
      c->done.fetch_add(1);
    };
  }
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = t; i < kRequests; i += 4) dev->submit(reqs[i]);
    });
  }
  for (auto& t : submitters) t.join();
  while (counters.done.load() < kRequests) std::this_thread::yield();
  EXPECT_EQ(counters.errors.load(), 0);
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(file.read_back(reqs[i].lba * 4096, 4096), bufs[i]) << "request " << i;
  }
}

TEST_P(EngineTest, FlushIsADataSync) {
  ScratchFile file(kMiB);
  auto rec = std::make_unique<RecordingEngine>(engine_of(GetParam()));
  RecordingEngine* seen = rec.get();
  auto dev = FileDevice::open(file.path(), options(), std::move(rec));
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kFlush, 0, 0), 0);
  auto ops = seen->seen();
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].kind, IoKind::kSync);
  EXPECT_TRUE(dev->capabilities().volatile_cache);
}

TEST_P(EngineTest, FuaWriteIsDsync) {
  ScratchFile file(kMiB);
  auto rec = std::make_unique<RecordingEngine>(engine_of(GetParam()));
  RecordingEngine* seen = rec.get();
  auto dev = FileDevice::open(file.path(), options(), std::move(rec));
  auto data = random_bytes(512, 2);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 3, 1, one_iov(data.data(), 512), kBlockFua), 0);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 4, 1, one_iov(data.data(), 512)), 0);
  auto ops = seen->seen();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].rw_flags & RWF_DSYNC, RWF_DSYNC);
  EXPECT_EQ(ops[1].rw_flags & RWF_DSYNC, 0);
  EXPECT_EQ(file.read_back(3 * 512, 512), data);
}

TEST_P(EngineTest, WriteThroughOpensDsyncAndReportsNoVolatileCache) {
  ScratchFile file(kMiB);
  auto rec = std::make_unique<RecordingEngine>(engine_of(GetParam()));
  RecordingEngine* seen = rec.get();
  FileDeviceOptions o = options();
  o.write_through = true;
  auto dev = FileDevice::open(file.path(), o, std::move(rec));
  EXPECT_FALSE(dev->capabilities().volatile_cache);
  auto data = random_bytes(512, 3);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 0, 1, one_iov(data.data(), 512)), 0);
  auto ops = seen->seen();
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].fd_flags & O_DSYNC, O_DSYNC) << "every write durable before completion";
}

TEST_P(EngineTest, NvCacheIgnoresSyncAndFua) {
  ScratchFile file(kMiB);
  auto rec = std::make_unique<RecordingEngine>(engine_of(GetParam()));
  RecordingEngine* seen = rec.get();
  FileDeviceOptions o = options();
  o.nv_cache = true;
  o.write_through = true;  // the seed: NV_CACHE overrides WRITE_THROUGH
  auto dev = FileDevice::open(file.path(), o, std::move(rec));
  EXPECT_FALSE(dev->capabilities().volatile_cache) << "reported as write-through";
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kFlush, 0, 0), 0);
  auto data = random_bytes(512, 4);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 0, 1, one_iov(data.data(), 512), kBlockFua), 0);
  auto ops = seen->seen();
  ASSERT_EQ(ops.size(), 1u) << "no sync op for SYNCHRONIZE CACHE";
  EXPECT_EQ(ops[0].kind, IoKind::kWrite);
  EXPECT_EQ(ops[0].rw_flags & RWF_DSYNC, 0);
  EXPECT_EQ(ops[0].fd_flags & O_DSYNC, 0);
}

TEST_P(EngineTest, UnmapPunchesAHole) {
  ScratchFile file(kMiB);
  auto data = random_bytes(kMiB, 5);
  file.write_at(0, data);
  FileDeviceOptions o = options();
  o.thin = true;
  auto dev = FileDevice::open(file.path(), o);
  EXPECT_TRUE(dev->capabilities().unmap);
  EXPECT_TRUE(dev->capabilities().unmap_zeroes);
  // Blocks [256, 512) = bytes [128 KiB, 256 KiB): whole filesystem blocks.
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kUnmap, 256, 256), 0);
  int fd = ::open(file.path().c_str(), O_RDONLY);
  EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), 128 * 1024);
  EXPECT_EQ(lseek(fd, 128 * 1024, SEEK_DATA), 256 * 1024);
  ::close(fd);
  std::vector<uint8_t> back(128 * 1024, 0xAA);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 256, 256, one_iov(back.data(), back.size())), 0);
  EXPECT_EQ(back, std::vector<uint8_t>(back.size(), 0));
  // Data around the hole is intact.
  EXPECT_EQ(file.read_back(0, 128 * 1024),
            std::vector<uint8_t>(data.begin(), data.begin() + 128 * 1024));
}

TEST_P(EngineTest, UnmapWithoutThinIsUnsupported) {
  ScratchFile file(kMiB);
  auto dev = FileDevice::open(file.path(), options());
  EXPECT_FALSE(dev->capabilities().unmap);
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kUnmap, 0, 8), -EOPNOTSUPP);
}

TEST_P(EngineTest, DirectIoAlignedMisalignedAndSubSector) {
  ScratchFile file(kMiB);
  FileDeviceOptions o = options();
  o.direct = true;
  std::unique_ptr<FileDevice> dev;
  try {
    dev = FileDevice::open(file.path(), o);
  } catch (const FileDeviceError& e) {
    GTEST_SKIP() << e.what();
  }
  // Aligned: page-aligned memory, 4 KiB at a 4 KiB offset.
  void* aligned = nullptr;
  ASSERT_EQ(posix_memalign(&aligned, 4096, 3 * 4096), 0);
  std::unique_ptr<void, decltype(&free)> guard(aligned, &free);
  auto data = random_bytes(8192, 6);
  std::memcpy(aligned, data.data(), 8192);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 8, 16, one_iov(aligned, 8192)), 0);
  EXPECT_EQ(file.read_back(8 * 512, 8192), data);

  // Misaligned memory (one byte off a page): bounced, never EINVAL.
  auto* odd = static_cast<uint8_t*>(aligned) + 1;
  auto data2 = random_bytes(8192, 7);
  std::memcpy(odd, data2.data(), 8192);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 32, 16, one_iov(odd, 8192)), 0);
  std::memset(odd, 0, 8192);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 32, 16, one_iov(odd, 8192)), 0);
  EXPECT_EQ(std::vector<uint8_t>(odd, odd + 8192), data2);

  // One 512-byte block at an odd sector: below the direct-I/O alignment of a
  // 4 KiB-sector filesystem; must still work.
  auto data3 = random_bytes(512, 8);
  std::vector<uint8_t> small = data3;
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 3, 1, one_iov(small.data(), 512)), 0);
  std::vector<uint8_t> back(512);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 3, 1, one_iov(back.data(), 512)), 0);
  EXPECT_EQ(back, data3);
  // And the direct path sees it: read the enclosing 4 KiB aligned.
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 0, 8, one_iov(aligned, 4096)), 0);
  EXPECT_EQ(std::memcmp(static_cast<uint8_t*>(aligned) + 3 * 512, data3.data(), 512), 0);
}

TEST_P(EngineTest, ReadOnlyRefusesWritesAndUnmaps) {
  ScratchFile file(kMiB);
  FileDeviceOptions o = options();
  o.read_only = true;
  o.thin = true;
  auto dev = FileDevice::open(file.path(), o);
  EXPECT_TRUE(dev->capabilities().read_only);
  EXPECT_FALSE(dev->capabilities().unmap);
  auto data = random_bytes(512, 9);
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 0, 1, one_iov(data.data(), 512)), -EROFS);
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kUnmap, 0, 1), -EROFS);
  EXPECT_EQ(file.read_back(0, 512), std::vector<uint8_t>(512, 0));
  std::vector<uint8_t> back(512, 1);
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 0, 1, one_iov(back.data(), 512)), 0);
}

TEST_P(EngineTest, BlockSize4096AndOutOfRange) {
  ScratchFile file(kMiB + 100);  // the partial last block is not addressable
  FileDeviceOptions o = options();
  o.block_size = 4096;
  auto dev = FileDevice::open(file.path(), o);
  EXPECT_EQ(dev->geometry().blocks, 256u);
  std::vector<uint8_t> buf(8192);
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 255, 2, one_iov(buf.data(), 8192)), -EINVAL);
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 254, 2, one_iov(buf.data(), 8192)), 0);
  // A buffer that does not match the block count is refused, not overrun.
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 0, 2, one_iov(buf.data(), 4096)), -EINVAL);
}

INSTANTIATE_TEST_SUITE_P(Engines, EngineTest,
                         ::testing::Values(IoEngineKind::kUring, IoEngineKind::kThreads),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(FileDevice, InlineCachedReadsReturnTheData) {
  ScratchFile file(kMiB);
  auto data = random_bytes(kMiB, 10);
  file.write_at(0, data);
  auto rec = std::make_unique<RecordingEngine>(engine_of(IoEngineKind::kUring));
  RecordingEngine* seen = rec.get();
  auto dev = FileDevice::open(file.path(), FileDeviceOptions{}, std::move(rec));
  std::vector<uint8_t> back(kMiB);
  // Whatever path it takes (cache hit inline, or the engine), the data is right.
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 0, kMiB / 512, one_iov(back.data(), kMiB)), 0);
  EXPECT_EQ(back, data);
  // The file was just written through the page cache: a second read hits it inline.
  size_t before = seen->seen().size();
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 0, 8, one_iov(back.data(), 4096)), 0);
  EXPECT_EQ(seen->seen().size(), before);
}

TEST(FileDevice, MemoryBackedFilesRunInline) {
  if (access("/dev/shm", W_OK) != 0) GTEST_SKIP() << "no /dev/shm";
  ScratchFile file(kMiB, "/dev/shm");
  auto rec = std::make_unique<RecordingEngine>(engine_of(IoEngineKind::kUring));
  RecordingEngine* seen = rec.get();
  FileDeviceOptions o;
  o.thin = true;
  auto dev = FileDevice::open(file.path(), o, std::move(rec));
  auto data = random_bytes(8192, 13);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 8, 16, one_iov(data.data(), 8192), kBlockFua),
            0);
  std::vector<uint8_t> back(8192);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 8, 16, one_iov(back.data(), 8192)), 0);
  EXPECT_EQ(back, data);
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kFlush, 0, 0), 0);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kUnmap, 8, 16), 0);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 8, 16, one_iov(back.data(), 8192)), 0);
  EXPECT_EQ(back, std::vector<uint8_t>(8192, 0));
  EXPECT_TRUE(seen->seen().empty()) << "tmpfs requests went through the engine";
}

TEST(FileDevice, InlineWritesOfBufferedFilesLandInTheFile) {
  ScratchFile file(kMiB);
  auto dev = FileDevice::open(file.path(), FileDeviceOptions{});
  auto data = random_bytes(4096, 14);
  // Whether the filesystem takes RWF_NOWAIT writes or not, the data arrives.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 8 * i, 8, one_iov(data.data(), 4096)), 0);
    EXPECT_EQ(file.read_back(4096 * i, 4096), data);
  }
}

TEST(FileDevice, NullIoZeroesReadsAndDoesNoIo) {
  ScratchFile file(kMiB);
  auto data = random_bytes(4096, 11);
  file.write_at(0, data);
  FileDeviceOptions o;
  o.nullio = true;
  auto dev = FileDevice::open(file.path(), o);
  std::vector<uint8_t> buf(4096, 0xAA);  // stale memory must not leak to the initiator
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kRead, 0, 8, one_iov(buf.data(), 4096)), 0);
  EXPECT_EQ(buf, std::vector<uint8_t>(4096, 0));
  auto other = random_bytes(4096, 12);
  ASSERT_EQ(SyncRequest::run(*dev, BlockOp::kWrite, 0, 8, one_iov(other.data(), 4096)), 0);
  EXPECT_EQ(file.read_back(0, 4096), data) << "NULLIO writes nothing";
  EXPECT_EQ(SyncRequest::run(*dev, BlockOp::kFlush, 0, 0), 0);
}

TEST(FileDevice, CdromIs2048ByteReadOnlyRemovableType5) {
  ScratchFile file(2048 * 100);
  FileDeviceOptions o;
  o.cdrom = true;
  o.block_size = 512;  // ignored: MMC blocks are 2048 bytes
  auto dev = FileDevice::open(file.path(), o);
  EXPECT_EQ(dev->device_type(), 5);
  EXPECT_EQ(dev->geometry().block_size, 2048u);
  EXPECT_EQ(dev->geometry().blocks, 100u);
  EXPECT_TRUE(dev->capabilities().read_only);
  EXPECT_TRUE(dev->capabilities().removable);
}

TEST(FileDevice, RemovableFlag) {
  ScratchFile file(kMiB);
  FileDeviceOptions o;
  o.removable = true;
  EXPECT_TRUE(FileDevice::open(file.path(), o)->capabilities().removable);
  EXPECT_FALSE(FileDevice::open(file.path(), FileDeviceOptions{})->capabilities().removable);
}

TEST(FileDevice, ResyncSizeSeesGrowth) {
  ScratchFile file(kMiB);
  auto dev = FileDevice::open(file.path(), FileDeviceOptions{});
  EXPECT_FALSE(dev->resync_size());
  ASSERT_EQ(truncate(file.path().c_str(), 2 * kMiB), 0);
  EXPECT_EQ(dev->geometry().blocks, kMiB / 512) << "only on request";
  EXPECT_TRUE(dev->resync_size());
  EXPECT_EQ(dev->geometry().blocks, 2 * kMiB / 512);
}

TEST(FileDevice, PhysicalBlockSizeIsAnExponentOfLogicalBlocks) {
  ScratchFile file(kMiB);
  FileDeviceOptions o;
  EXPECT_EQ(FileDevice::open(file.path(), o)->physical_block_exponent(), 0) << "a file: none";
  o.physical_block_size = 4096;
  EXPECT_EQ(FileDevice::open(file.path(), o)->physical_block_exponent(), 3);
  o.block_size = 4096;
  EXPECT_EQ(FileDevice::open(file.path(), o)->physical_block_exponent(), 0);
  o.physical_block_size = 2048;  // smaller than a logical block
  EXPECT_THROW(FileDevice::open(file.path(), o), FileDeviceError);
  o.block_size = 512;
  o.physical_block_size = 3072;  // not a power of two
  EXPECT_THROW(FileDevice::open(file.path(), o), FileDeviceError);
  o.physical_block_size = 512u << 16;  // SBC-3: the exponent is 4 bits
  EXPECT_THROW(FileDevice::open(file.path(), o), FileDeviceError);
}

TEST(FileDevice, ErrorsNameTheFileAndTheCause) {
  try {
    FileDevice::open("/nonexistent/disk0.img", FileDeviceOptions{});
    FAIL() << "opened a missing file";
  } catch (const FileDeviceError& e) {
    EXPECT_STREQ(e.what(), "open /nonexistent/disk0.img: No such file or directory");
  }
  ScratchFile file(kMiB);
  FileDeviceOptions o;
  o.block_size = 1000;
  EXPECT_THROW(FileDevice::open(file.path(), o), FileDeviceError);
  o.block_size = 256;
  EXPECT_THROW(FileDevice::open(file.path(), o), FileDeviceError);
  ScratchFile empty(100);
  EXPECT_THROW(FileDevice::open(empty.path(), FileDeviceOptions{}), FileDeviceError);
  EXPECT_THROW(FileDevice::open("/dev/null", FileDeviceOptions{}), FileDeviceError);
}

TEST(FileDevice, AutoEngineIsUringHere) {
  ScratchFile file(kMiB);
  auto dev = FileDevice::open(file.path(), FileDeviceOptions{});
  // On a machine where io_uring is unavailable this is the thread pool, with a note why.
  if (dev->engine_kind() == IoEngineKind::kThreads) {
    EXPECT_FALSE(dev->engine_note().empty());
  } else {
    EXPECT_EQ(dev->engine_kind(), IoEngineKind::kUring);
  }
}

}  // namespace
}  // namespace scstu::io
