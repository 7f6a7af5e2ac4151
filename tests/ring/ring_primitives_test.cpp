// Unit tests of the ring primitives: layout and header validation, the SPSC
// tag rings (wrap-around, full ring, batching, doorbell suppression), the
// data-area allocator and the entry validators.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "ring/data_allocator.h"
#include "ring/entry_validation.h"
#include "ring/region_layout.h"
#include "ring/spsc_ring.h"

namespace scstu::ring {
namespace {

scstu_region_header layout(uint32_t nq, uint32_t depth, uint64_t data, uint32_t max_io) {
  RegionParams p;
  p.nr_queues = nq;
  p.queue_depth = depth;
  p.data_size = data;
  p.max_io_bytes = max_io;
  scstu_region_header h;
  std::string err;
  EXPECT_TRUE(compute_layout(p, &h, &err)) << err;
  return h;
}

TEST(RegionLayout, ComputedLayoutValidates) {
  for (uint32_t nq : {1u, 3u, 64u})
    for (uint32_t depth : {1u, 32u, 4096u}) {
      scstu_region_header h = layout(nq, depth, uint64_t{nq} << 20, 1 << 20);
      std::string err;
      EXPECT_TRUE(validate_header(h, h.region_size, &err)) << err;
      EXPECT_EQ(h.data_offset % SCSTU_DATA_ALIGN, 0u);
      EXPECT_GE(h.data_per_queue, h.max_io_bytes);
    }
}

TEST(RegionLayout, RejectsBadParameters) {
  RegionParams p;
  scstu_region_header h;
  std::string err;
  p.queue_depth = 100;  // not a power of two
  EXPECT_FALSE(compute_layout(p, &h, &err));
  EXPECT_NE(err.find("power of two"), std::string::npos);
  p = RegionParams{};
  p.nr_queues = 65;
  EXPECT_FALSE(compute_layout(p, &h, &err));
  p = RegionParams{};
  p.max_io_bytes = 1000;
  EXPECT_FALSE(compute_layout(p, &h, &err));
  p = RegionParams{};
  p.data_size = 4096;  // less than max_io_bytes per queue
  EXPECT_FALSE(compute_layout(p, &h, &err));
}

TEST(RegionLayout, HeaderValidationNamesTheCause) {
  const scstu_region_header good = layout(2, 64, 8 << 20, 1 << 20);
  struct Case {
    const char* expect;
    void (*mutate)(scstu_region_header&);
  } cases[] = {
      {"magic", [](scstu_region_header& h) { h.magic ^= 1; }},
      {"ABI major", [](scstu_region_header& h) { h.abi_major = 2; }},
      {"sizes", [](scstu_region_header& h) { h.cmd_size = 64; }},
      {"exceeds the mapping", [](scstu_region_header& h) { h.region_size += 4096; }},
      {"nr_queues", [](scstu_region_header& h) { h.nr_queues = 0; }},
      {"power of two", [](scstu_region_header& h) { h.queue_depth = 65; }},
      {"cpl array", [](scstu_region_header& h) { h.cpl_offset = h.queue_stride - 8; }},
      {"overlaps", [](scstu_region_header& h) { h.cq_ring_offset = h.sq_ring_offset + 4; }},
      {"queues overlap",
       [](scstu_region_header& h) { h.data_offset = h.queues_offset + h.queue_stride; }},
      {"data area", [](scstu_region_header& h) { h.data_size = ~0ull - 100; }},
      {"data_per_queue", [](scstu_region_header& h) { h.data_per_queue = h.data_size; }},
      {"max_io_bytes", [](scstu_region_header& h) { h.max_io_bytes = ~0u; }},
      {"queue_stride", [](scstu_region_header& h) { h.queue_stride = ~0ull; }},
  };
  for (const Case& c : cases) {
    scstu_region_header h = good;
    c.mutate(h);
    std::string err;
    EXPECT_FALSE(validate_header(h, good.region_size, &err)) << c.expect;
    EXPECT_NE(err.find(c.expect), std::string::npos) << "got: " << err;
  }
}

// A ring in private memory.
struct TestRing {
  explicit TestRing(uint32_t depth) : slots(depth) { std::memset(&idx, 0, sizeof(idx)); }
  scstu_ring_idx idx;
  std::vector<uint32_t> slots;
};

TEST(SpscRing, WrapAroundKeepsOrder) {
  TestRing r(8);
  RingWriter w(&r.idx, r.slots.data(), 8);
  RingReader rd(&r.idx, r.slots.data(), 8);
  uint32_t next_in = 0, next_out = 0;
  // Indices are free-running u32: start near the wrap to cross it.
  r.idx.head = r.idx.tail = 0xfffffff0u;
  w = RingWriter(&r.idx, r.slots.data(), 8);
  rd = RingReader(&r.idx, r.slots.data(), 8);
  for (int round = 0; round < 100; ++round) {
    uint32_t n = 1 + round % 8;
    for (uint32_t i = 0; i < n; ++i) w.push(next_in++ % 8);
    w.publish();
    ASSERT_EQ(rd.available(), n);
    for (uint32_t i = 0; i < n; ++i) EXPECT_EQ(rd.peek(i), next_out++ % 8);
    rd.consume(n);
    EXPECT_EQ(w.in_flight(), 0u);
  }
}

TEST(SpscRing, FullRingAndBatchedPublish) {
  TestRing r(16);
  RingWriter w(&r.idx, r.slots.data(), 16);
  RingReader rd(&r.idx, r.slots.data(), 16);
  for (uint32_t t = 0; t < 16; ++t) w.push(t);
  EXPECT_EQ(w.unpublished(), 16u);
  EXPECT_EQ(rd.available(), 0u) << "nothing visible before publish";
  w.publish();  // one tail store for the whole batch
  EXPECT_EQ(r.idx.tail, 16u);
  EXPECT_EQ(rd.available(), 16u);
  EXPECT_EQ(w.in_flight(), 16u);
  rd.consume(10);
  EXPECT_EQ(w.in_flight(), 6u);
}

TEST(SpscRing, CorruptPeerIndicesAreDetected) {
  TestRing r(16);
  RingReader rd(&r.idx, r.slots.data(), 16);
  r.idx.tail = 17;  // more than depth ahead
  EXPECT_EQ(rd.available(), RingReader::kCorrupt);
  r.idx.tail = 0xffffffffu;  // "behind" the head
  EXPECT_EQ(rd.available(), RingReader::kCorrupt);
  RingWriter w(&r.idx, r.slots.data(), 16);
  r.idx.tail = 0;
  w = RingWriter(&r.idx, r.slots.data(), 16);
  r.idx.head = 5;  // reader claims to have consumed entries never written
  EXPECT_EQ(w.in_flight(), UINT32_MAX);
}

TEST(SpscRing, PublishReportsNeedWakeupOnlyWhenReaderSleeps) {
  TestRing r(4);
  RingWriter w(&r.idx, r.slots.data(), 4);
  RingReader rd(&r.idx, r.slots.data(), 4);
  w.push(1);
  EXPECT_FALSE(w.publish());
  rd.consume(1);
  EXPECT_TRUE(rd.prepare_sleep());  // empty: may sleep, flag set
  w.push(2);
  EXPECT_TRUE(w.publish()) << "reader announced sleep: writer must kick";
  rd.end_sleep();
  EXPECT_FALSE(rd.prepare_sleep()) << "entry present: must not sleep";
  EXPECT_EQ(r.idx.reader_flags, 0u);
}

// Two threads, an eventfd doorbell, many rounds with the reader going to
// sleep often. A lost wakeup shows up as a poll() timeout (bounded).
TEST(SpscRing, DoorbellSuppressionLosesNoWakeup) {
  constexpr uint32_t kDepth = 8;
  constexpr uint32_t kItems = 300000;
  TestRing r(kDepth);
  int doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int space = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // reader -> writer when full
  ASSERT_GE(doorbell, 0);
  std::atomic<uint32_t> kicks{0};
  std::atomic<bool> lost{false};
  std::thread writer([&] {
    RingWriter w(&r.idx, r.slots.data(), kDepth);
    std::mt19937 rng(1);
    for (uint32_t i = 0; i < kItems;) {
      uint32_t room = kDepth - w.in_flight();
      if (room == 0) {
        pollfd p{space, POLLIN, 0};
        poll(&p, 1, 1);  // the reader frees slots without kicking us: just re-check
        uint64_t v;
        (void)!read(space, &v, 8);
        continue;
      }
      uint32_t n = std::min<uint32_t>({room, 1 + static_cast<uint32_t>(rng() % 3), kItems - i});
      for (uint32_t k = 0; k < n; ++k) w.push(i++ % kDepth);
      if (w.publish()) {
        uint64_t one = 1;
        (void)!write(doorbell, &one, 8);
        kicks.fetch_add(1, std::memory_order_relaxed);
      }
      if (rng() % 16 == 0) std::this_thread::yield();
    }
  });
  RingReader rd(&r.idx, r.slots.data(), kDepth);
  uint32_t got = 0;
  while (got < kItems && !lost) {
    uint32_t n = rd.available();
    ASSERT_NE(n, RingReader::kCorrupt);
    if (n == 0) {
      if (rd.prepare_sleep()) {
        pollfd p{doorbell, POLLIN, 0};
        if (poll(&p, 1, 10000) == 0) lost = true;  // 10 s with data pending = lost wakeup
        uint64_t v;
        (void)!read(doorbell, &v, 8);
      }
      rd.end_sleep();
      continue;
    }
    for (uint32_t k = 0; k < n; ++k) ASSERT_EQ(rd.peek(k), (got + k) % kDepth);
    got += n;
    rd.consume(n);
    uint64_t one = 1;
    (void)!write(space, &one, 8);
  }
  writer.join();
  EXPECT_FALSE(lost) << "reader slept through a published entry";
  EXPECT_EQ(got, kItems);
  EXPECT_GT(kicks.load(), 0u);
  close(doorbell);
  close(space);
}

TEST(DataAllocator, AllocatesAlignedRunsAndReportsFull) {
  DataAllocator a(1 << 20, 16 * 4096);
  std::vector<uint64_t> offs;
  for (int i = 0; i < 16; ++i) {
    auto o = a.allocate(100);
    ASSERT_TRUE(o);
    EXPECT_EQ(*o % 4096, 0u);
    EXPECT_GE(*o, 1u << 20);
    offs.push_back(*o);
  }
  EXPECT_FALSE(a.allocate(1)) << "full";
  EXPECT_TRUE(a.release(offs[3], 100));
  EXPECT_FALSE(a.release(offs[3], 100)) << "double free rejected";
  EXPECT_FALSE(a.allocate(8192)) << "no 2-page run";
  EXPECT_TRUE(a.release(offs[4], 4096));
  auto o = a.allocate(8192);
  ASSERT_TRUE(o);
  EXPECT_EQ(*o, offs[3]);
  EXPECT_FALSE(a.release(12345, 4096)) << "misaligned";
  EXPECT_FALSE(a.release(0, 4096)) << "outside";
}

TEST(DataAllocator, RandomChurnNeverOverlaps) {
  constexpr uint64_t kPages = 300;  // not a multiple of 64
  DataAllocator a(0, kPages * 4096);
  std::vector<int> owner(kPages, -1);
  std::vector<std::pair<uint64_t, uint64_t>> live;
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    if (!live.empty() && (rng() % 2 || live.size() > 60)) {
      size_t k = rng() % live.size();
      auto [off, bytes] = live[k];
      ASSERT_TRUE(a.release(off, bytes));
      for (uint64_t p = off / 4096; p < (off + bytes + 4095) / 4096; ++p) owner[p] = -1;
      live.erase(live.begin() + k);
    } else {
      uint64_t bytes = 1 + rng() % (16 * 4096);
      auto off = a.allocate(bytes);
      if (!off) continue;
      for (uint64_t p = *off / 4096; p < (*off + bytes + 4095) / 4096; ++p) {
        ASSERT_LT(p, kPages);
        ASSERT_EQ(owner[p], -1) << "overlap at page " << p;
        owner[p] = i;
      }
      live.emplace_back(*off, bytes);
    }
  }
}

CmdLimits limits() { return CmdLimits{1 << 20, 65536, SCSTU_F_SGL_INDIRECT | SCSTU_F_LONG_CDB}; }

scstu_cmd good_read() {
  scstu_cmd c{};
  c.kind = SCSTU_KIND_SCSI;
  c.data_dir = SCSTU_DIR_READ;
  c.cdb_len = 10;
  c.nr_iov = 2;
  c.data_length = 8192;
  c.iov[0] = {0, 4096, 0};
  c.iov[1] = {8192, 4096, 0};
  return c;
}

TEST(EntryValidation, AcceptsWellFormedCommands) {
  EXPECT_EQ(validate_cmd(good_read(), limits()), nullptr);
  scstu_cmd tmf{};
  tmf.kind = SCSTU_KIND_TMF;
  tmf.tmf.function = SCSTU_TMF_LUN_RESET;
  EXPECT_EQ(validate_cmd(tmf, limits()), nullptr);
}

TEST(EntryValidation, RejectsHostileCommands) {
  struct Case {
    const char* what;
    void (*mutate)(scstu_cmd&);
  } cases[] = {
      {"kind", [](scstu_cmd& c) { c.kind = 9; }},
      {"data_dir", [](scstu_cmd& c) { c.data_dir = 4; }},
      {"task_attr", [](scstu_cmd& c) { c.task_attr = 7; }},
      {"cdb_len 0", [](scstu_cmd& c) { c.cdb_len = 0; }},
      {"cdb_len 33", [](scstu_cmd& c) { c.cdb_len = 33; }},
      {"flags", [](scstu_cmd& c) { c.flags = 0x80; }},
      {"nr_iov", [](scstu_cmd& c) { c.nr_iov = 4; }},
      {"sum", [](scstu_cmd& c) { c.data_length = 8191; }},
      {"bounds", [](scstu_cmd& c) { c.iov[1].offset = (1 << 20) - 100; }},
      {"overflow", [](scstu_cmd& c) { c.iov[1].offset = ~0ull - 10; }},
      {"max_io",
       [](scstu_cmd& c) {
         c.data_length = 1 << 17;
         c.iov[0].len = c.iov[1].len = 1 << 16;
       }},
      {"dir none with data", [](scstu_cmd& c) { c.data_dir = SCSTU_DIR_NONE; }},
      {"long cdb outside",
       [](scstu_cmd& c) {
         c.flags = SCSTU_CMD_F_CDB_IN_DATA;
         c.cdb_len = 40;
         c.cdb_offset = (1 << 20) - 10;
       }},
      {"indirect list outside",
       [](scstu_cmd& c) {
         c.flags = SCSTU_CMD_F_IOV_INDIRECT;
         c.iov[0] = {(1 << 20) - 16, 32, 0};
       }},
      {"indirect too long",
       [](scstu_cmd& c) {
         c.flags = SCSTU_CMD_F_IOV_INDIRECT;
         c.nr_iov = 257;
         c.iov[0] = {0, 257 * 16, 0};
       }},
      {"bidi out_length",
       [](scstu_cmd& c) {
         c.data_dir = SCSTU_DIR_BIDI;
         c.out_length = 9000;
       }},
  };
  for (const Case& c : cases) {
    scstu_cmd cmd = good_read();
    c.mutate(cmd);
    EXPECT_NE(validate_cmd(cmd, limits()), nullptr) << c.what;
  }
  scstu_cmd tmf{};
  tmf.kind = SCSTU_KIND_TMF;
  tmf.tmf.function = 0;
  EXPECT_NE(validate_cmd(tmf, limits()), nullptr);
  // Found by ring_entry_fuzz: an indirect flag with no iovs behind it.
  scstu_cmd detach{};
  detach.kind = SCSTU_KIND_SESS_DETACH;
  detach.flags = SCSTU_CMD_F_IOV_INDIRECT;
  EXPECT_NE(validate_cmd(detach, limits()), nullptr);
  scstu_cmd none = good_read();
  none.data_dir = SCSTU_DIR_NONE;
  none.nr_iov = 0;
  none.data_length = 0;
  none.flags = SCSTU_CMD_F_IOV_INDIRECT;
  EXPECT_NE(validate_cmd(none, limits()), nullptr);
  scstu_cmd attach{};
  attach.kind = SCSTU_KIND_SESS_ATTACH;
  attach.nr_iov = 1;
  attach.iov[0] = {0, 100, 0};  // smaller than scstu_session_info
  attach.data_length = 100;
  EXPECT_NE(validate_cmd(attach, limits()), nullptr);
}

TEST(EntryValidation, IndirectListsAreCheckedEntryByEntry) {
  std::vector<scstu_iov> list = {{0, 4096, 0}, {4096, 4096, 0}, {65536, 100, 0}};
  EXPECT_EQ(validate_iov_list(list, 8292, limits()), nullptr);
  EXPECT_NE(validate_iov_list(list, 8291, limits()), nullptr);
  list[2].offset = (1 << 20) - 50;
  EXPECT_NE(validate_iov_list(list, 8292, limits()), nullptr);
}

TEST(EntryValidation, CompletionsMustMatchOutstandingTags) {
  std::vector<Outstanding> out(8);
  out[3] = {true, SCSTU_KIND_SCSI, 77, 4096};
  out[4] = {true, SCSTU_KIND_TMF, 78, 0};
  scstu_cpl c{};
  c.tag = 3;
  c.seq = 77;
  c.transferred = 4096;
  EXPECT_EQ(validate_cpl(c, 3, out), nullptr);
  scstu_cpl bad = c;
  EXPECT_NE(validate_cpl(bad, 9, out), nullptr) << "tag >= depth";
  EXPECT_NE(validate_cpl(bad, 2, out), nullptr) << "tag differs from ring entry";
  bad.tag = 2;
  EXPECT_NE(validate_cpl(bad, 2, out), nullptr) << "not outstanding";
  bad = c;
  bad.seq = 76;
  EXPECT_NE(validate_cpl(bad, 3, out), nullptr) << "stale seq";
  bad = c;
  bad.sense_len = 97;
  EXPECT_NE(validate_cpl(bad, 3, out), nullptr) << "sense_len";
  bad = c;
  bad.transferred = 4097;
  EXPECT_NE(validate_cpl(bad, 3, out), nullptr) << "transferred";
  bad = c;
  bad.status = 0x77;
  EXPECT_NE(validate_cpl(bad, 3, out), nullptr) << "status";
  scstu_cpl t{};
  t.tag = 4;
  t.seq = 78;
  t.tmf_response = SCSTU_TMF_FAILED + 1;
  EXPECT_NE(validate_cpl(t, 4, out), nullptr) << "tmf response";
}

// ABI 1.2 unit events: only where the producer offered SCSTU_F_UNIT_STATE,
// a known event, nothing in the data area; answered taken / declined / done.
TEST(EntryValidation, UnitEvents) {
  CmdLimits with = limits();
  with.features |= SCSTU_F_UNIT_STATE;
  scstu_cmd e{};
  e.kind = SCSTU_KIND_UNIT_EVENT;
  e.session_id = 7;
  e.unit.event = SCSTU_EVENT_REPORTED_LUNS_CHANGED;
  EXPECT_EQ(validate_cmd(e, with), nullptr);
  e.unit.event = SCSTU_EVENT_REPORTED_LUNS_READ;
  EXPECT_EQ(validate_cmd(e, with), nullptr);
  EXPECT_NE(validate_cmd(e, limits()), nullptr) << "not offered";
  struct Case {
    const char* what;
    void (*mutate)(scstu_cmd&);
  } cases[] = {
      {"event 0", [](scstu_cmd& c) { c.unit.event = 0; }},
      {"event 3", [](scstu_cmd& c) { c.unit.event = 3; }},
      {"flags", [](scstu_cmd& c) { c.flags = SCSTU_CMD_F_READ_ONLY; }},
      {"iov", [](scstu_cmd& c) { c.nr_iov = 1; }},
      {"data", [](scstu_cmd& c) { c.data_length = 16; }},
      {"indirect", [](scstu_cmd& c) { c.flags = SCSTU_CMD_F_IOV_INDIRECT; }},
  };
  for (const Case& c : cases) {
    scstu_cmd cmd = e;
    c.mutate(cmd);
    EXPECT_NE(validate_cmd(cmd, with), nullptr) << c.what;
  }

  std::vector<Outstanding> out(4);
  out[1] = {true, SCSTU_KIND_UNIT_EVENT, 5, 0};
  scstu_cpl cpl{};
  cpl.tag = 1;
  cpl.seq = 5;
  for (int r : {SCSTU_TMF_COMPLETE, SCSTU_TMF_SUCCEEDED, SCSTU_TMF_NOT_SUPPORTED}) {
    cpl.tmf_response = static_cast<uint8_t>(r);
    EXPECT_EQ(validate_cpl(cpl, 1, out), nullptr) << int(r);
  }
  for (int r : {int{SCSTU_TMF_REJECTED}, int{SCSTU_TMF_FAILED}, 200}) {
    cpl.tmf_response = static_cast<uint8_t>(r);
    EXPECT_NE(validate_cpl(cpl, 1, out), nullptr) << int(r);
  }
  cpl.tmf_response = SCSTU_TMF_SUCCEEDED;
  scstu_cpl bad = cpl;
  bad.status = 0x02;
  EXPECT_NE(validate_cpl(bad, 1, out), nullptr) << "status";
  bad = cpl;
  bad.sense_len = 18;
  EXPECT_NE(validate_cpl(bad, 1, out), nullptr) << "sense";
}

// The handler's state block: bits the producer did not offer, or unit flags
// it does not know, void the whole block.
TEST(EntryValidation, HandlerStateBlock) {
  const uint64_t offered = SCSTU_F_TMF | SCSTU_F_UNIT_STATE;
  std::vector<uint8_t> page(SCSTU_HEADER_BYTES, 0);
  auto* shared = reinterpret_cast<scstu_handler_state*>(page.data() + SCSTU_HANDLER_STATE_OFFSET);
  scstu_handler_state s = load_handler_state(page.data());
  EXPECT_EQ(validate_handler_state(s, offered), nullptr);
  EXPECT_EQ(s.features, 0u) << "an older handler writes nothing";
  shared->unit_flags = SCSTU_UNIT_F_D_SENSE;
  shared->features = SCSTU_F_UNIT_STATE;
  s = load_handler_state(page.data());
  EXPECT_EQ(validate_handler_state(s, offered), nullptr);
  EXPECT_EQ(s.unit_flags, SCSTU_UNIT_F_D_SENSE);
  EXPECT_NE(validate_handler_state(s, SCSTU_F_TMF), nullptr) << "accepted what was not offered";
  shared->unit_flags = 0x2;
  EXPECT_NE(validate_handler_state(load_handler_state(page.data()), offered), nullptr)
      << "unknown unit flag";
  shared->unit_flags = 0;
  shared->features = SCSTU_F_UNIT_STATE | (1ull << 40);
  EXPECT_NE(validate_handler_state(load_handler_state(page.data()), offered), nullptr);
}

}  // namespace
}  // namespace scstu::ring
