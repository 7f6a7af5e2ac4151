// Adversarial peers. A fake handler that writes garbage completions must be
// dropped by the producer (its commands failed with LOGICAL UNIT
// COMMUNICATION FAILURE); a fake producer that writes garbage submissions
// must get failed commands or a serve() that returns -EPROTO, never a crash or
// an access outside the region (run these under ASan: -DSCSTU_SANITIZE=ON).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <functional>
#include <optional>

#include "handler/ring_attachment.h"
#include "ring/attach_protocol.h"
#include "ring/spsc_ring.h"
#include "ring_test_support.h"
#include "transport/shared_region.h"

namespace scstu::ring_test {
namespace {

// ---- a hostile handler against RingDevice ------------------------------------

struct FakeHandler {
  explicit FakeHandler(Producer& p) {
    std::string err;
    att = RingAttachment::connect_socket(p.path, p.device->name(), 0, 512, &err);
    EXPECT_TRUE(att) << err;
    EXPECT_TRUE(p.device->wait_ready(10000));
    const ring::RegionView& v = att->region();
    sq = ring::RingReader(&v.ctl(0)->sq, v.sq_ring(0), v.header().queue_depth);
    cq = ring::RingWriter(&v.ctl(0)->cq, v.cq_ring(0), v.header().queue_depth);
  }
  // Waits for the next submitted tag.
  uint32_t next_tag() {
    for (int i = 0; i < 10000; ++i) {
      if (sq.available() > 0) {
        uint32_t tag = sq.peek(0);
        sq.consume(1);
        return tag;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ADD_FAILURE() << "no submission";
    return 0;
  }
  void publish(uint32_t tag) {
    cq.push(tag);
    cq.publish();
    att->kick(0);
  }
  std::unique_ptr<RingAttachment> att;
  ring::RingReader sq;
  ring::RingWriter cq;
};

struct BadCompletion {
  const char* name;
  const char* reason;  // expected in the producer's drop reason
  std::function<void(FakeHandler&, uint32_t tag, scstu_cpl&)> mutate;  // may publish itself
};

class HostileHandler : public ::testing::TestWithParam<BadCompletion> {};

TEST_P(HostileHandler, IsDroppedAndItsCommandsFail) {
  const BadCompletion& bc = GetParam();
  Producer p;
  FakeHandler fake(p);
  TestCommand c(kOpRead, 4096, DataDirection::kRead, 1);
  ASSERT_TRUE(p.device->alloc_buffer(c.cmd));
  p.device->submit(c.cmd);
  const uint32_t tag = fake.next_tag();
  const ring::RegionView& v = fake.att->region();
  scstu_cpl cpl{};
  cpl.tag = static_cast<uint16_t>(tag);
  cpl.seq = v.cmds(0)[tag].seq;
  cpl.transferred = 4096;
  bool published = false;
  bc.mutate(fake, tag, cpl);
  if (cpl.tag != 0xffff) {
    std::memcpy(&v.cpls(0)[tag], &cpl, sizeof(cpl));
    fake.publish(tag);
    published = true;
  }
  (void)published;
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.cmd.status, status::kCheckCondition);
  EXPECT_EQ(sense_code(c.cmd), kLuCommFailure);
  EXPECT_NE(p.device->last_drop_reason().find(bc.reason), std::string::npos)
      << p.device->last_drop_reason();
  EXPECT_FALSE(p.device->ready());
  p.device->release_buffer(c.cmd);
  // The device is usable again by a proper handler.
  fake.att.reset();
  PatternHandler h;
  HandlerThread t(p.options(), h);
  ASSERT_TRUE(p.device->wait_ready(10000));
  TestCommand r(kOpRead, 4096, DataDirection::kRead, 9);
  ASSERT_TRUE(p.device->alloc_buffer(r.cmd));
  p.device->submit(r.cmd);
  ASSERT_TRUE(r.wait());
  EXPECT_EQ(r.cmd.status, status::kGood);
  EXPECT_TRUE(check_pattern(DataBuffer(r.cmd.buffer), 9));
  p.device->release_buffer(r.cmd);
}

INSTANTIATE_TEST_SUITE_P(
    Garbage, HostileHandler,
    ::testing::Values(
        BadCompletion{"tag_out_of_range", "tag out of range",
                      [](FakeHandler& f, uint32_t, scstu_cpl& c) {
                        f.publish(5000);
                        c.tag = 0xffff;
                      }},
        BadCompletion{"tag_mismatch", "differs",
                      [](FakeHandler&, uint32_t tag, scstu_cpl& c) { c.tag = tag + 1; }},
        BadCompletion{"stale_seq", "stale", [](FakeHandler&, uint32_t, scstu_cpl& c) { c.seq--; }},
        BadCompletion{"sense_len", "sense_len",
                      [](FakeHandler&, uint32_t, scstu_cpl& c) { c.sense_len = 200; }},
        BadCompletion{"transferred", "transferred",
                      [](FakeHandler&, uint32_t, scstu_cpl& c) { c.transferred = 1 << 30; }},
        BadCompletion{"status", "status",
                      [](FakeHandler&, uint32_t, scstu_cpl& c) { c.status = 0x77; }},
        BadCompletion{"not_outstanding", "not outstanding",
                      [](FakeHandler& f, uint32_t tag, scstu_cpl& c) {
                        uint32_t other = (tag + 1) % f.att->header().queue_depth;
                        scstu_cpl o = c;
                        o.tag = static_cast<uint16_t>(other);
                        std::memcpy(&f.att->region().cpls(0)[other], &o, sizeof(o));
                        f.publish(other);
                        c.tag = 0xffff;
                      }},
        BadCompletion{"tail_jump", "more than queue_depth",
                      [](FakeHandler& f, uint32_t, scstu_cpl& c) {
                        scstu_ring_idx& idx = f.att->region().ctl(0)->cq;
                        std::atomic_ref<uint32_t>(idx.tail).store(idx.head + 1000);
                        f.att->kick(0);
                        c.tag = 0xffff;
                      }}),
    [](const auto& info) { return std::string(info.param.name); });

// A handler that takes a TMF and never answers it (its queue thread stuck)
// must not hang the initiator's TMF: after tmf_timeout_ms it is dropped, the
// TMF is answered SERVICE DELIVERY OR TARGET FAILURE and its commands fail
// with LOGICAL UNIT COMMUNICATION FAILURE.
TEST(HostileHandler, IgnoredTaskManagementIsAnsweredAfterTheTimeout) {
  transport::RingDeviceConfig cfg;
  cfg.tmf_timeout_ms = 300;
  Producer p(cfg);
  FakeHandler fake(p);
  TestCommand c(kOpHold, 4096, DataDirection::kRead, 1);
  ASSERT_TRUE(p.device->alloc_buffer(c.cmd));
  p.device->submit(c.cmd);
  fake.next_tag();

  std::mutex mu;
  std::condition_variable cv;
  std::optional<scstu_tmf_response> resp;
  core::TargetTmf tmf;
  tmf.function = SCSTU_TMF_LUN_RESET;
  tmf.done = [&](scstu_tmf_response r) {
    std::lock_guard lock(mu);
    resp = r;
    cv.notify_all();
  };
  p.device->task_management(tmf);
  const uint32_t tmf_tag = fake.next_tag();
  EXPECT_EQ(fake.att->region().cmds(0)[tmf_tag].kind, SCSTU_KIND_TMF);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return resp.has_value(); }));
  }
  EXPECT_EQ(*resp, SCSTU_TMF_FAILED);
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.cmd.status, status::kCheckCondition);
  EXPECT_EQ(sense_code(c.cmd), kLuCommFailure);
  EXPECT_NE(p.device->last_drop_reason().find("no answer to task management"), std::string::npos)
      << p.device->last_drop_reason();
  EXPECT_FALSE(p.device->ready());
  p.device->release_buffer(c.cmd);

  // A TMF the handler does answer is not affected by the timeout.
  fake.att.reset();
  PatternHandler h;
  HandlerThread t(p.options(), h);
  ASSERT_TRUE(p.device->wait_ready(10000));
  resp.reset();
  p.device->task_management(tmf);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return resp.has_value(); }));
  }
  EXPECT_EQ(*resp, SCSTU_TMF_COMPLETE);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // past the deadline
  EXPECT_TRUE(p.device->ready());
  EXPECT_EQ(t.stop(), 0);
}

// A dropped handler that is still alive keeps its mapping of the old region
// and may write on. Each attach gets a fresh region, so the next handler's
// rings, descriptors and data never see those writes; buffers allocated
// before the reattach fail with LOGICAL UNIT COMMUNICATION FAILURE.
TEST(HostileHandler, DroppedHandlerWritingOnCannotTouchTheNextHandlersRegion) {
  Producer p;
  FakeHandler fake(p);
  TestCommand early(kOpRead, 4096, DataDirection::kRead, 3);
  ASSERT_TRUE(p.device->alloc_buffer(early.cmd));  // held across the reattach
  fake.publish(5000);                              // garbage: dropped
  for (int i = 0; i < 1000 && p.device->last_drop_reason().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_NE(p.device->last_drop_reason().find("tag out of range"), std::string::npos);

  // The dropped handler scribbles over everything it has mapped, nonstop.
  const ring::RegionView old_view = fake.att->region();
  const uint64_t old_size = old_view.header().region_size;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> rounds{0};
  std::thread scribbler([&] {
    uint8_t b = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      std::memset(old_view.base(), ++b, old_size);
      rounds.fetch_add(1, std::memory_order_relaxed);
    }
  });
  while (rounds.load() == 0) std::this_thread::yield();

  PatternHandler h;
  HandlerThread t(p.options(), h);
  ASSERT_TRUE(p.device->wait_ready(10000));
  for (int i = 0; i < 200; ++i) {
    TestCommand w(kOpWrite, 8192, DataDirection::kWrite, 1000 + i);
    ASSERT_TRUE(p.device->alloc_buffer(w.cmd));
    // Never inside the old mapping.
    const uint8_t* b = static_cast<const uint8_t*>(w.cmd.buffer[0].iov_base);
    EXPECT_TRUE(b + 8192 <= old_view.base() || b >= old_view.base() + old_size);
    fill_pattern(DataBuffer(w.cmd.buffer), 1000 + i);
    p.device->submit(w.cmd);
    ASSERT_TRUE(w.wait());
    EXPECT_EQ(w.cmd.status, status::kGood) << i;
    p.device->release_buffer(w.cmd);
    TestCommand r(kOpRead, 8192, DataDirection::kRead, 2000 + i);
    ASSERT_TRUE(p.device->alloc_buffer(r.cmd));
    p.device->submit(r.cmd);
    ASSERT_TRUE(r.wait());
    EXPECT_EQ(r.cmd.status, status::kGood) << i;
    EXPECT_TRUE(check_pattern(DataBuffer(r.cmd.buffer), 2000 + i)) << i;
    p.device->release_buffer(r.cmd);
  }
  stop = true;
  scribbler.join();
  EXPECT_TRUE(p.device->ready()) << p.device->last_drop_reason();

  // The buffer from the dropped handler's region is refused, then released.
  p.device->submit(early.cmd);
  ASSERT_TRUE(early.wait());
  EXPECT_EQ(early.cmd.status, status::kCheckCondition);
  EXPECT_EQ(sense_code(early.cmd), kLuCommFailure);
  p.device->release_buffer(early.cmd);
  EXPECT_EQ(t.stop(), 0);
}

// info() returns a reference that other threads read while a handler
// (re)attaches: each attach publishes a new immutable snapshot instead of
// writing into the one readers hold.
TEST(RingTransport, InfoSnapshotsStayUnchangedAcrossReattach) {
  Producer p;
  std::string err;
  auto a = RingAttachment::connect_socket(p.path, p.device->name(), 0, 512, &err);
  ASSERT_TRUE(a) << err;
  ASSERT_TRUE(p.device->wait_ready(10000));
  const core::DeviceInfo& first = p.device->info();
  EXPECT_EQ(first.block_size, 512u);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> odd{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const core::DeviceInfo& i = p.device->info();
      if ((i.block_size != 512 && i.block_size != 4096) || i.name != "disk0") odd.fetch_add(1);
    }
  });
  for (int round = 0; round < 20; ++round) {
    a.reset();  // hang-up: dropped
    for (int i = 0; i < 1000 && p.device->ready(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const uint32_t bs = round % 2 ? 4096 : 512;  // ends with 4096
    a = RingAttachment::connect_socket(p.path, p.device->name(), 0, bs, &err);
    ASSERT_TRUE(a) << err;
    ASSERT_TRUE(p.device->wait_ready(10000));
    EXPECT_EQ(p.device->info().block_size, bs);
  }
  stop = true;
  reader.join();
  EXPECT_EQ(odd.load(), 0u);
  EXPECT_EQ(first.block_size, 512u);  // the old snapshot did not change under its reader
  EXPECT_EQ(first.name, "disk0");
}

// ---- a hostile producer against serve() ----------------------------------------

struct FakeProducer {
  explicit FakeProducer(std::function<void(scstu_region_header&)> corrupt = {},
                        uint64_t claimed_extra = 0) {
    path = temp_socket_path();
    ring::RegionParams params;
    params.queue_depth = 8;
    params.data_size = 1 << 20;
    params.max_io_bytes = 64 << 10;
    std::string err;
    region = transport::SharedRegion::create("fake", params, &err);
    EXPECT_TRUE(region) << err;
    if (corrupt) corrupt(*region->shared_header());
    sq_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    cq_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    EXPECT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    listen(lfd, 1);
    const ring::RegionView& v = region->view();
    sq = ring::RingWriter(&v.ctl(0)->sq, v.sq_ring(0), 8);
    cq = ring::RingReader(&v.ctl(0)->cq, v.cq_ring(0), 8);
    acceptor = std::thread([this, claimed_extra] {
      conn = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      ring::AttachHello hello;
      recv(conn, &hello, sizeof(hello), 0);
      ring::AttachReply reply;
      reply.region_size = region->size() + claimed_extra;
      reply.nr_queues = 1;
      reply.nr_fds = 3;
      int fds[3] = {region->fd(), sq_kick, cq_kick};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))] = {};
      iovec iov{&reply, sizeof(reply)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(fds));
      std::memcpy(CMSG_DATA(c), fds, sizeof(fds));
      sendmsg(conn, &msg, MSG_NOSIGNAL);
    });
  }
  ~FakeProducer() {
    if (acceptor.joinable()) acceptor.join();
    hang_up();
    close(lfd);
    unlink(path.c_str());
    close(sq_kick);
    close(cq_kick);
  }
  HandlerOptions options() const {
    HandlerOptions o;
    o.socket_path = path;
    o.device_name = "fake";
    return o;
  }
  void submit(uint32_t tag, const scstu_cmd& c) {
    std::memcpy(&region->view().cmds(0)[tag], &c, sizeof(c));
    sq.push(tag);
    if (sq.publish()) {
      uint64_t one = 1;
      (void)!write(sq_kick, &one, 8);
    }
  }
  bool wait_cpl(scstu_cpl* out) {
    for (int i = 0; i < 10000; ++i) {
      if (cq.available() > 0) {
        uint32_t tag = cq.peek(0);
        if (tag >= 8) return false;
        std::memcpy(out, &region->view().cpls(0)[tag], sizeof(*out));
        cq.consume(1);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  void hang_up() {
    if (acceptor.joinable()) acceptor.join();
    if (conn >= 0) close(conn);
    conn = -1;
  }
  scstu_cmd read_cmd(uint32_t len = 4096, uint64_t off = 0) {
    scstu_cmd c{};
    c.kind = SCSTU_KIND_SCSI;
    c.data_dir = SCSTU_DIR_READ;
    c.cdb_len = 10;
    c.cdb[0] = kOpRead;
    c.nr_iov = 1;
    c.iov[0] = {off, len, 0};
    c.data_length = len;
    c.seq = ++seq;
    return c;
  }

  std::string path;
  std::unique_ptr<transport::SharedRegion> region;
  int lfd = -1, conn = -1, sq_kick = -1, cq_kick = -1;
  std::thread acceptor;
  ring::RingWriter sq;
  ring::RingReader cq;
  uint32_t seq = 0;
};

TEST(HostileProducer, InvalidDescriptorFailsThatCommandOnly) {
  FakeProducer fp;
  PatternHandler h;
  HandlerThread t(fp.options(), h);
  scstu_cmd bad = fp.read_cmd(4096, (1 << 20) - 100);  // runs off the data area
  fp.submit(0, bad);
  scstu_cpl cpl;
  ASSERT_TRUE(fp.wait_cpl(&cpl));
  EXPECT_EQ(cpl.tag, 0);
  EXPECT_EQ(cpl.seq, bad.seq);
  EXPECT_EQ(cpl.status, status::kCheckCondition);
  EXPECT_EQ(cpl.sense[2] & 0xf, 0x04);  // HARDWARE ERROR
  EXPECT_EQ(cpl.sense[12], 0x44);       // INTERNAL TARGET FAILURE
  EXPECT_EQ(h.commands.load(), 0u) << "never reached the handler";
  scstu_cmd garbage;
  std::memset(&garbage, 0xA5, sizeof(garbage));
  fp.submit(1, garbage);
  ASSERT_TRUE(fp.wait_cpl(&cpl));
  EXPECT_EQ(cpl.status, status::kCheckCondition);
  // A good command still works.
  scstu_cmd good = fp.read_cmd(4096, 8192);
  std::memcpy(good.cdb + 2, "\x07\0\0\0\0\0\0\0", 8);
  fp.submit(2, good);
  ASSERT_TRUE(fp.wait_cpl(&cpl));
  EXPECT_EQ(cpl.status, status::kGood);
  EXPECT_EQ(cpl.transferred, 4096u);
  EXPECT_TRUE(check_pattern(DataBuffer(std::span<const iovec>(std::array<iovec, 1>{
                                iovec{fp.region->view().data() + 8192, 4096}})),
                            7));
  EXPECT_EQ(t.stop(), 0);
}

struct BadSubmission {
  const char* name;
  const char* reason;
  std::function<void(FakeProducer&)> act;
};

class HostileProducerFatal : public ::testing::TestWithParam<BadSubmission> {};

TEST_P(HostileProducerFatal, ServeReturnsEproto) {
  FakeProducer fp;
  PatternHandler h;
  HandlerThread t(fp.options(), h);
  GetParam().act(fp);
  t.thread.join();
  EXPECT_EQ(t.rc.load(), -EPROTO);
  EXPECT_NE(t.error.find(GetParam().reason), std::string::npos) << t.error;
}

INSTANTIATE_TEST_SUITE_P(
    Garbage, HostileProducerFatal,
    ::testing::Values(BadSubmission{"tag_out_of_range", "tag",
                                    [](FakeProducer& fp) {
                                      fp.sq.push(4096);
                                      fp.sq.publish();
                                      uint64_t one = 1;
                                      (void)!write(fp.sq_kick, &one, 8);
                                    }},
                      BadSubmission{
                          "tail_jump", "ahead",
                          [](FakeProducer& fp) {
                            std::atomic_ref<uint32_t>(fp.region->view().ctl(0)->sq.tail).store(999);
                            uint64_t one = 1;
                            (void)!write(fp.sq_kick, &one, 8);
                          }},
                      BadSubmission{"outstanding_tag_resubmitted", "outstanding",
                                    [](FakeProducer& fp) {
                                      scstu_cmd c = fp.read_cmd();
                                      c.cdb[0] = kOpHold;
                                      fp.submit(3, c);
                                      fp.submit(3, c);
                                    }}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(HostileProducer, ProducerDeathMidCommandEndsServeWithEpipe) {
  FakeProducer fp;
  PatternHandler h;
  HandlerThread t(fp.options(), h);
  scstu_cmd c = fp.read_cmd();
  c.cdb[0] = kOpHold;
  fp.submit(0, c);
  ASSERT_TRUE(h.wait([&] { return h.held.size() == 1; }));
  fp.hang_up();
  t.thread.join();
  EXPECT_EQ(t.rc.load(), -EPIPE);
  // The handler finishes its command after the producer is gone: harmless.
  CommandHandle held = std::move(h.held.front());
  h.held.pop_front();
  std::move(held).complete_good(4096);
}

TEST(HostileProducer, CorruptHeaderIsRefusedAtAttach) {
  struct Case {
    std::function<void(scstu_region_header&)> corrupt;
    uint64_t extra;
    const char* expect;
  } cases[] = {
      {[](scstu_region_header& h) { h.magic = 0; }, 0, "bad magic"},
      {[](scstu_region_header& h) { h.abi_major = 9; }, 0, "ABI major"},
      {[](scstu_region_header& h) { h.cpl_offset = h.queue_stride; }, 0, "cpl array"},
      {{}, 1ull << 30, "smaller than region_size"},
  };
  for (const Case& c : cases) {
    FakeProducer fp(c.corrupt, c.extra);
    PatternHandler h;
    std::string err;
    EXPECT_EQ(serve(fp.options(), h, &err), -ENODEV);
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace scstu::ring_test
