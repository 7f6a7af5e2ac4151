#include "transport/ring_device.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/session.h"
#include "ring/descriptor_store.h"
#include "ring/idle_spin.h"
#include "ring/spin_lock.h"

namespace scstu::transport {
namespace {

// SPC-4 4.5.6 fixed format: ABORTED COMMAND, LOGICAL UNIT COMMUNICATION
// FAILURE (0Bh/08h/00h): the initiator retries, and by then a handler may be back.
constexpr uint8_t kCommFailure[18] = {0x70, 0, 0x0B, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x08, 0x00};
// HARDWARE ERROR, INTERNAL TARGET FAILURE (44h/00h): a buffer this device did
// not allocate (a transport bug).
constexpr uint8_t kInternalFailure[18] = {0x70, 0, 0x04, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x44, 0x00};

constexpr int kControlTimeoutMs = 5000;

// Epoll data for the non-queue fds.
constexpr uint64_t kCtlEvent = 1ull << 32;
constexpr uint64_t kConnEvent = 2ull << 32;

// cmd.device_cookie: queue in bits 0-5; with a buffer, bit 63 set, the
// region's epoch in bits 55-62, the first page's index in bits 27-54 (data
// areas up to 1 TiB) and the page count in bits 6-26 (max_io_bytes < 4 GiB).
constexpr uint64_t kCookieHasBuffer = 1ull << 63;
constexpr uint64_t kCookieQueueMask = 0x3f;
static_assert(SCSTU_MAX_QUEUES <= kCookieQueueMask + 1);

uint64_t buffer_cookie(uint32_t queue, uint8_t epoch, uint64_t offset, uint64_t pages) {
  return kCookieHasBuffer | uint64_t{epoch} << 55 | (offset / SCSTU_DATA_ALIGN) << 27 | pages << 6 |
         queue;
}

// The device whose completion batch this thread is delivering, if any:
// submissions from inside `done` then wait for one publish at the batch end.
thread_local const RingDevice* t_completing = nullptr;

void kick(int fd) {
  uint64_t one = 1;
  if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
    // EAGAIN: the counter is saturated; the handler is due to wake anyway.
  }
}

// `fixed` (one of the constants above) in the unit's format: SPC-4 4.5.1,
// with D_SENSE the same sense key / ASC / ASCQ as descriptor-format sense
// (4.5.2) without descriptors.
void set_sense(core::TargetCommand& cmd, uint8_t status, const uint8_t (&fixed)[18],
               bool descriptor) {
  cmd.status = status;
  cmd.transferred = 0;
  if (descriptor) {
    const uint8_t d[8] = {0x72, fixed[2], fixed[12], fixed[13], 0, 0, 0, 0};
    cmd.sense_len = sizeof(d);
    std::memcpy(cmd.sense.data(), d, sizeof(d));
    return;
  }
  cmd.sense_len = sizeof(fixed);
  std::memcpy(cmd.sense.data(), fixed, sizeof(fixed));
}

}  // namespace

struct RingDevice::ControlWait {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool ok = false;
  bool resend = false;   // a re-announcement after attach: nobody waits
  uint8_t response = 0;  // the completion's tmf_response (unit events)
  void finish(bool success, uint8_t answer = 0) {
    std::lock_guard lock(mu);
    done = true;
    ok = success;
    response = answer;
    cv.notify_all();
  }
};

// One attach's shared memory (see ring_device.h).
struct RingDevice::Region {
  std::unique_ptr<SharedRegion> shm;
  ring::RegionView view;
  uint8_t epoch = 0;
  std::vector<ring::DataAllocator> alloc;  // per queue, under that queue's alloc_lock
  uint64_t pages_out = 0;                  // retired: pages still held (regions_mu_)
};

struct RingDevice::Queue {
  ring::SpinLock lock;
  // Under lock (and, to change it, alloc_lock too): the region commands go to.
  Region* region = nullptr;
  // Under lock.
  bool connected = false;  // rings live: control entries may be sent
  bool accepting = false;  // and SCSI commands too
  bool dirty = false;      // pushed, not yet published (completion batch)
  ring::RingWriter sq;
  std::vector<uint32_t> free_tags;
  std::vector<ring::Outstanding> outstanding;
  std::vector<Inflight> inflight;
  uint32_t next_seq = 0;
  int sq_kick = -1;  // producer -> handler
  int cq_kick = -1;  // handler -> producer
  // Event thread only.
  ring::RingReader cq;
  const scstu_cpl* cpls = nullptr;
  std::vector<Finished> finished;
  // The data allocator (region->alloc[q]) has its own lock: buffers come and
  // go outside submit.
  ring::SpinLock alloc_lock;
  // `region` for threads' run caches, read without either lock: a cached run
  // is handed out only while its region is this one.
  std::atomic<Region*> live{nullptr};
};

// One device's runs in one thread's cache ("Buffers" in ring_device.h). Only
// that thread touches it; its runs count as allocated in their region's
// bitmap (and in a retired region's pages_out, which keeps it mapped).
struct RingDevice::RunShelf {
  struct Run {
    Region* region;
    uint64_t offset;  // in the data area
    uint32_t pages;
    uint32_t queue;
  };
  uint64_t device_id = 0;  // 0: free
  std::weak_ptr<RingDevice> device;
  uint32_t n = 0;
  uint64_t pages = 0;  // in runs[0, n)
  Run runs[kCacheRuns];
};

struct RingDevice::RunCache {
  RunShelf shelves[kCacheDevices];
  bool closing = false;  // the thread is exiting: park nothing more
  // Thread exit: runs of devices still alive go back to their allocators.
  // (Dropping the last reference to a device here runs its destructor, whose
  // failed commands may release buffers on this thread: `closing` sends those
  // straight to the allocator.)
  ~RunCache() {
    closing = true;
    for (RunShelf& s : shelves) {
      if (s.device_id == 0) continue;
      if (std::shared_ptr<RingDevice> d = s.device.lock()) {
        d->flush_shelf(s);
        d->shelf_budget_.fetch_add(d->cache_page_limit_, std::memory_order_relaxed);
      }
    }
  }
};

std::shared_ptr<RingDevice> RingDevice::create(const RingDeviceConfig& config, std::string* error) {
  if (config.name.empty() || config.name.size() >= SCSTU_NAME_MAX ||
      config.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789_-") != std::string::npos) {
    if (error) *error = "ring device '" + config.name + "': name must be 1-31 of [a-zA-Z0-9_-]";
    return nullptr;
  }
  std::shared_ptr<RingDevice> dev(new RingDevice(config));
  ring::RegionParams& params = dev->params_;
  params.nr_queues = config.nr_queues;
  params.queue_depth = config.queue_depth;
  params.data_size = config.data_size;
  params.max_io_bytes = config.max_io_bytes;
  params.features = SCSTU_F_LONG_CDB | SCSTU_F_TMF | SCSTU_F_SESSION_EVENTS | SCSTU_F_UNIT_STATE;
  params.device_type = config.device_type < 0 ? 0 : static_cast<uint8_t>(config.device_type);
  std::unique_ptr<Region> region = dev->make_region(0, 0, error);
  if (!region) return nullptr;
  dev->layout_ = region->view.header();
  const scstu_region_header& h = dev->layout_;
  dev->current_ = region.get();
  dev->regions_.push_back(std::move(region));
  for (uint32_t q = 0; q < h.nr_queues; ++q) {
    auto queue = std::make_unique<Queue>();
    queue->region = dev->current_;
    queue->live.store(dev->current_, std::memory_order_release);
    queue->outstanding.resize(h.queue_depth);
    queue->inflight.resize(h.queue_depth);
    for (uint32_t t = h.queue_depth; t-- > 0;) queue->free_tags.push_back(t);
    queue->finished.reserve(h.queue_depth);
    dev->queues_.push_back(std::move(queue));
  }
  dev->dirty_queues_.reserve(h.nr_queues);
  dev->cache_page_limit_ =
      std::min<uint64_t>(kCacheRuns * kCacheMaxRunPages, h.data_per_queue / SCSTU_DATA_ALIGN / 16);
  dev->shelf_budget_.store(h.data_per_queue / SCSTU_DATA_ALIGN / 4, std::memory_order_relaxed);
  dev->set_info(static_cast<uint8_t>(params.device_type), 512);
  dev->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  dev->ctl_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{EPOLLIN, {.u64 = kCtlEvent}};
  if (dev->epoll_fd_ < 0 || dev->ctl_fd_ < 0 ||
      epoll_ctl(dev->epoll_fd_, EPOLL_CTL_ADD, dev->ctl_fd_, &ev) != 0) {
    if (error) *error = "ring device " + config.name + ": epoll/eventfd: " + std::strerror(errno);
    return nullptr;
  }
  dev->event_thread_ = std::thread([d = dev.get()] { d->event_loop(); });
  return dev;
}

namespace {
std::atomic<uint64_t> g_next_device_id{1};
}  // namespace

RingDevice::RingDevice(const RingDeviceConfig& config)
    : id_(g_next_device_id.fetch_add(1, std::memory_order_relaxed)), config_(config) {}

std::unique_ptr<RingDevice::Region> RingDevice::make_region(uint8_t epoch, uint64_t generation,
                                                            std::string* error) {
  auto r = std::make_unique<Region>();
  r->shm = SharedRegion::create(config_.name, params_, error);
  if (!r->shm) return nullptr;
  r->view = r->shm->view();
  r->epoch = epoch;
  r->shm->shared_header()->generation = generation;
  const scstu_region_header& h = r->view.header();
  for (uint32_t q = 0; q < h.nr_queues; ++q)
    r->alloc.emplace_back(q * h.data_per_queue, h.data_per_queue);
  return r;
}

// info() hands out references: each snapshot is immutable and kept for the
// device's lifetime. Reattaches mostly repeat a snapshot, so the list stays
// as short as the distinct (type, block size) pairs ever attached.
void RingDevice::set_info(uint8_t device_type, uint32_t block_size) {
  std::lock_guard lock(info_mu_);
  for (const auto& i : infos_) {
    if (i->device_type == device_type && i->block_size == block_size) {
      info_.store(i.get(), std::memory_order_release);
      return;
    }
  }
  auto i = std::make_unique<core::DeviceInfo>();
  i->name = config_.name;
  i->device_type = device_type;
  i->block_size = block_size;
  i->max_transfer_bytes = layout_.max_io_bytes;
  info_.store(i.get(), std::memory_order_release);
  infos_.push_back(std::move(i));
}

RingDevice::~RingDevice() {
  stopping_.store(true);
  kick(ctl_fd_);
  if (event_thread_.joinable()) event_thread_.join();
  // The event thread dropped the handler on its way out.
  {
    std::lock_guard lock(attach_mu_);
    if (pending_conn_ >= 0) close(pending_conn_);
  }
  for (auto& q : queues_) {
    if (q->sq_kick >= 0) close(q->sq_kick);
    if (q->cq_kick >= 0) close(q->cq_kick);
  }
  if (ctl_fd_ >= 0) close(ctl_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

uint64_t RingDevice::generation() const {
  std::lock_guard lock(attach_mu_);
  return current_->shm->shared_header()->generation;
}

std::string RingDevice::last_drop_reason() const {
  std::lock_guard lock(attach_mu_);
  return drop_reason_;
}

RingDevice::DataAreaUsage RingDevice::data_area_usage() const {
  DataAreaUsage u;
  for (uint32_t i = 0; i < queues_.size(); ++i) {
    const auto& q = queues_[i];
    {
      // The current region's allocator (a retired one only drains).
      std::lock_guard lock(q->alloc_lock);
      const ring::DataAllocator& a = q->region->alloc[i];
      u.total_bytes += a.total_pages() * SCSTU_DATA_ALIGN;
      u.free_bytes += a.free_pages() * SCSTU_DATA_ALIGN;
    }
    std::lock_guard lock(q->lock);
    u.slots += static_cast<uint32_t>(q->outstanding.size());
    u.outstanding += static_cast<uint32_t>(q->outstanding.size() - q->free_tags.size());
  }
  return u;
}

bool RingDevice::wait_ready(int timeout_ms) const {
  std::unique_lock lock(attach_mu_);
  return ready_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                            [&] { return ready_.load(); });
}

uint32_t RingDevice::pick_queue() const {
  // Each thread sticks to one queue, spreading threads round-robin.
  static std::atomic<uint32_t> next{0};
  thread_local uint32_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine % static_cast<uint32_t>(queues_.size());
}

// ---- handler attach -------------------------------------------------------

bool RingDevice::attach(int conn, const ring::AttachHello& hello, std::string* error) {
  ring::AttachReply reply;
  auto refuse = [&](int err, const std::string& why) {
    reply.error = err;
    std::snprintf(reply.message, sizeof(reply.message), "%s", why.c_str());
    send(conn, &reply, sizeof(reply), MSG_NOSIGNAL);
    close(conn);
    if (error) *error = why;
    return false;
  };
  if (hello.magic != ring::kHelloMagic || hello.abi_major != SCSTU_ABI_MAJOR)
    return refuse(EPROTO, "device " + config_.name + ": handler speaks ABI " +
                              std::to_string(hello.abi_major) + ", producer " +
                              std::to_string(SCSTU_ABI_MAJOR));
  if (config_.device_type >= 0 && hello.device_type != config_.device_type)
    return refuse(EMEDIUMTYPE, "device " + config_.name + " is configured as type " +
                                   std::to_string(config_.device_type) +
                                   " but the handler serves type " +
                                   std::to_string(hello.device_type));
  if (hello.block_size < 512 || hello.block_size > (1u << 20) ||
      (hello.block_size & (hello.block_size - 1)) != 0)
    return refuse(EINVAL, "device " + config_.name + ": block size " +
                              std::to_string(hello.block_size) + " is not a power of two >= 512");
  std::unique_lock lock(attach_mu_);
  if (conn_fd_ >= 0 || pending_conn_ >= 0) {
    lock.unlock();
    return refuse(EBUSY, "device " + config_.name + " already has a handler attached");
  }
  // No handler: the event thread and submitters leave the rings alone.
  const uint32_t nq = static_cast<uint32_t>(queues_.size());
  if (current_handed_) {
    // A fresh region: the last handler may be alive and still have the old
    // one mapped (ring_device.h).
    const uint8_t epoch = static_cast<uint8_t>(current_->epoch + 1);
    bool epoch_taken = false;
    {
      std::lock_guard rl(regions_mu_);
      for (const auto& r : regions_) epoch_taken |= r->epoch == epoch;
    }
    if (epoch_taken) {
      lock.unlock();
      return refuse(EBUSY, "device " + config_.name +
                               ": buffers of a region 256 attaches old are still held");
    }
    std::string err;
    std::unique_ptr<Region> fresh =
        make_region(epoch, current_->shm->shared_header()->generation, &err);
    if (!fresh) {
      lock.unlock();
      return refuse(ENOMEM, err);
    }
    std::unique_ptr<Region> unused;  // destroyed (unmapped) after the locks
    {
      std::lock_guard rl(regions_mu_);
      Region* old = current_;
      uint64_t out = 0;
      for (uint32_t i = 0; i < nq; ++i) {
        Queue& q = *queues_[i];
        std::lock_guard al(q.alloc_lock);
        std::lock_guard ql(q.lock);
        out += old->alloc[i].total_pages() - old->alloc[i].free_pages();
        q.region = fresh.get();
        q.live.store(fresh.get(), std::memory_order_release);
      }
      old->pages_out = out;
      current_ = fresh.get();
      regions_.push_back(std::move(fresh));
      if (out == 0) {
        for (auto it = regions_.begin(); it != regions_.end(); ++it) {
          if (it->get() == old) {
            unused = std::move(*it);
            regions_.erase(it);
            break;
          }
        }
      }
    }
  }
  Region& region = *current_;
  std::vector<int> fds{region.shm->fd()};
  for (auto& q : queues_) {
    std::lock_guard ql(q->lock);
    if (q->sq_kick >= 0) close(q->sq_kick);
    if (q->cq_kick >= 0) close(q->cq_kick);
    q->sq_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    q->cq_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->sq_kick < 0 || q->cq_kick < 0) {
      lock.unlock();
      return refuse(EMFILE, "device " + config_.name + ": eventfd: " + std::strerror(errno));
    }
  }
  for (auto& q : queues_) fds.push_back(q->sq_kick);
  for (auto& q : queues_) fds.push_back(q->cq_kick);
  region.shm->reset_queues();
  const ring::RegionView& v = region.view;
  for (uint32_t i = 0; i < nq; ++i) {
    std::lock_guard ql(queues_[i]->lock);
    queues_[i]->sq = ring::RingWriter(&v.ctl(i)->sq, v.sq_ring(i), v.header().queue_depth);
  }
  scstu_region_header* shared = region.shm->shared_header();
  shared->generation += 1;
  shared->device_type = hello.device_type;
  set_info(hello.device_type, hello.block_size);
  current_handed_ = true;  // from here on the handler may have it mapped

  reply.region_size = region.shm->size();
  reply.nr_queues = nq;
  reply.nr_fds = static_cast<uint32_t>(fds.size());
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * ring::kMaxAttachFds)] = {};
  iovec iov{&reply, sizeof(reply)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  if (sendmsg(conn, &msg, MSG_NOSIGNAL) != sizeof(reply)) {
    if (error) *error = "device " + config_.name + ": send attach reply: " + std::strerror(errno);
    close(conn);
    return false;
  }
  pending_conn_ = conn;
  lock.unlock();
  kick(ctl_fd_);
  return true;
}

// Event thread: a handler's attach went through; start feeding it.
void RingDevice::start_handler() {
  int conn;
  {
    std::lock_guard lock(attach_mu_);
    conn = pending_conn_;
    pending_conn_ = -1;
    conn_fd_ = conn;
    unit_d_sense_.store(-1, std::memory_order_relaxed);  // until this handler publishes
  }
  if (conn < 0) return;
  epoll_event ev{EPOLLIN | EPOLLRDHUP, {.u64 = kConnEvent}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, conn, &ev);
  ring::RegionView v;
  {
    std::lock_guard lock(attach_mu_);
    v = current_->view;
  }
  for (uint32_t i = 0; i < queues_.size(); ++i) {
    Queue& q = *queues_[i];
    q.cq = ring::RingReader(&v.ctl(i)->cq, v.cq_ring(i), v.header().queue_depth);
    q.cpls = v.cpls(i);
    std::lock_guard ql(q.lock);
    epoll_event qev{EPOLLIN, {.u64 = i}};
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, q.cq_kick, &qev);
    q.connected = true;
  }
  // Re-announce live sessions before any command flows, so the handler never
  // sees a command of a session it does not know.
  std::vector<SessionInfo> live;
  {
    std::lock_guard lock(sessions_mu_);
    for (auto& [id, info] : sessions_) live.push_back(info);
  }
  resend_pending_ = 0;
  for (const SessionInfo& s : live) {
    auto w = std::make_shared<ControlWait>();
    w->resend = true;
    if (send_control(0, SCSTU_KIND_SESS_ATTACH, &s, s.id, w)) ++resend_pending_;
  }
  flush_deferred(true);
  if (resend_pending_ == 0) control_finished();
}

// Event thread: one re-announcement done (or none were needed): open the gates.
void RingDevice::control_finished() {
  if (resend_pending_ > 0 && --resend_pending_ > 0) return;
  for (auto& q : queues_) {
    std::lock_guard ql(q->lock);
    if (q->connected) q->accepting = true;
  }
  std::lock_guard lock(attach_mu_);
  ready_.store(true, std::memory_order_release);
  ready_cv_.notify_all();
}

// Event thread: the handler is gone or misbehaved. Fail everything it held.
void RingDevice::drop_handler(const std::string& reason) {
  ready_.store(false);
  handler_state();  // its last published D_SENSE: the format of the failures below
  std::vector<Inflight> failed;
  for (auto& qp : queues_) {
    Queue& q = *qp;
    std::lock_guard ql(q.lock);
    q.connected = q.accepting = q.dirty = false;
    for (uint32_t tag = 0; tag < q.inflight.size(); ++tag) {
      if (!q.outstanding[tag].in_flight) continue;
      q.outstanding[tag].in_flight = false;
      failed.push_back(std::move(q.inflight[tag]));
      q.inflight[tag] = Inflight{};
      q.free_tags.push_back(tag);
    }
    // The handler process holds copies of these fds: unregister explicitly.
    if (q.cq_kick >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, q.cq_kick, nullptr);
  }
  {
    std::lock_guard lock(attach_mu_);
    if (conn_fd_ >= 0) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn_fd_, nullptr);
      close(conn_fd_);
    }
    conn_fd_ = -1;
    drop_reason_ = reason;
  }
  resend_pending_ = 0;
  next_tmf_scan_ns_ = 0;
  std::fprintf(stderr,
               "scstu: ring device %s: handler dropped: %s; %zu outstanding commands "
               "failed with LOGICAL UNIT COMMUNICATION FAILURE\n",
               config_.name.c_str(), reason.c_str(), failed.size());
  for (Inflight& f : failed) fail(f);
}

// ---- data buffers -----------------------------------------------------------

bool RingDevice::alloc_buffer(core::TargetCommand& cmd) {
  return alloc_buffer_on(cmd, pick_queue());
}

bool RingDevice::alloc_buffer_on(core::TargetCommand& cmd, uint32_t queue) {
  const uint32_t qi = queue % static_cast<uint32_t>(queues_.size());
  cmd.buffer.clear();
  cmd.device_cookie = qi;
  if (cmd.data_length == 0) return true;
  if (cmd.data_length > layout_.max_io_bytes) return false;
  Queue& q = *queues_[qi];
  const uint64_t pages = (cmd.data_length + SCSTU_DATA_ALIGN - 1) / SCSTU_DATA_ALIGN;
  RunShelf* s = pages <= kCacheMaxRunPages ? shelf(false) : nullptr;
  if (s && s->n) {
    // The thread's own cache, newest run first (the one just released is
    // the likeliest to be in this CPU's cache).
    Region* live = q.live.load(std::memory_order_acquire);
    for (uint32_t i = s->n; i-- > 0;) {
      const RunShelf::Run run = s->runs[i];
      if (run.region != live) {
        // Of a region a reattach retired: back to it (unmapped once all are in).
        s->runs[i] = s->runs[--s->n];
        s->pages -= run.pages;
        release_pages(run.queue, run.region->epoch, run.offset,
                      uint64_t{run.pages} * SCSTU_DATA_ALIGN);
        continue;
      }
      if (run.queue != qi || run.pages != pages) continue;
      s->runs[i] = s->runs[--s->n];
      s->pages -= run.pages;
      cmd.buffer.push_back(iovec{live->view.data() + run.offset, cmd.data_length});
      cmd.device_cookie = buffer_cookie(qi, live->epoch, run.offset, pages);
      return true;
    }
  }
  for (int attempt = 0;; ++attempt) {
    {
      std::lock_guard lock(q.alloc_lock);
      Region& r = *q.region;
      std::optional<uint64_t> off = r.alloc[qi].allocate(cmd.data_length);
      if (off) {
        cmd.buffer.push_back(iovec{r.view.data() + *off, cmd.data_length});
        cmd.device_cookie = buffer_cookie(qi, r.epoch, *off, pages);
        return true;
      }
    }
    // Full: the runs this thread parked may make the difference.
    if (!s) s = shelf(false);
    if (attempt > 0 || !s || s->n == 0) return false;
    flush_shelf(*s);
  }
}

void RingDevice::release_buffer(core::TargetCommand& cmd) {
  const uint64_t c = cmd.device_cookie;
  cmd.buffer.clear();
  cmd.device_cookie = 0;
  if (!(c & kCookieHasBuffer)) return;
  const uint32_t qi = c & kCookieQueueMask;
  const uint8_t epoch = static_cast<uint8_t>(c >> 55);
  const uint64_t offset = ((c >> 27) & ((1ull << 28) - 1)) * SCSTU_DATA_ALIGN;
  const uint64_t bytes = ((c >> 6) & ((1ull << 21) - 1)) * SCSTU_DATA_ALIGN;
  if (qi >= queues_.size()) return;
  const uint32_t pages = static_cast<uint32_t>(bytes / SCSTU_DATA_ALIGN);
  Queue& q = *queues_[qi];
  Region* live = q.live.load(std::memory_order_acquire);
  // Parked in the thread's cache: a run of the current region inside this
  // queue's share. release() would also refuse a run that is not allocated,
  // which the cache cannot see without the lock; a buffer released twice is
  // still caught while parked (the scan below), and the core cannot release
  // one twice (release_buffer clears device_cookie).
  if (pages <= kCacheMaxRunPages && live->epoch == epoch && offset >= qi * layout_.data_per_queue &&
      offset + bytes <= (uint64_t{qi} + 1) * layout_.data_per_queue) {
    if (RunShelf* s = shelf(true);
        s && s->n < kCacheRuns && s->pages + pages <= cache_page_limit_) {
      bool twice = false;
      for (uint32_t i = 0; i < s->n; ++i)
        twice |= s->runs[i].offset == offset && s->runs[i].queue == qi;
      if (twice) return;  // parked already: ignored, as the allocator ignores a free run
      s->runs[s->n++] = RunShelf::Run{live, offset, pages, qi};
      s->pages += pages;
      return;
    }
  }
  release_pages(qi, epoch, offset, bytes);
}

RingDevice::RunCache& RingDevice::run_cache() {
  thread_local RunCache cache;
  return cache;
}

RingDevice::RunShelf* RingDevice::shelf(bool claim) {
  RunCache& c = run_cache();
  if (c.closing) return nullptr;
  for (RunShelf& s : c.shelves)
    if (s.device_id == id_) return &s;
  if (!claim || cache_page_limit_ == 0) return nullptr;
  // A thread the budget left without a shelf comes here on every release:
  // one read of a line that changes once per thread, nothing more.
  if (shelf_budget_.load(std::memory_order_relaxed) < cache_page_limit_) return nullptr;
  std::weak_ptr<RingDevice> self = weak_from_this();
  if (self.expired()) return nullptr;  // being destroyed
  for (RunShelf& s : c.shelves) {
    // A free shelf, or one of a device that is gone (its memory with it).
    if (s.device_id != 0 && !s.device.expired()) continue;
    // This device's budget for all threads' shelves (see "Buffers"): once
    // per thread, not per command.
    uint64_t left = shelf_budget_.load(std::memory_order_relaxed);
    do {
      if (left < cache_page_limit_) return nullptr;  // idle threads hold it: go without
    } while (!shelf_budget_.compare_exchange_weak(left, left - cache_page_limit_,
                                                  std::memory_order_relaxed));
    s.n = 0;
    s.pages = 0;
    s.device_id = id_;
    s.device = std::move(self);
    return &s;
  }
  return nullptr;  // busy with other devices: this one goes without
}

void RingDevice::flush_shelf(RunShelf& s) {
  for (uint32_t i = 0; i < s.n; ++i) {
    const RunShelf::Run& run = s.runs[i];
    release_pages(run.queue, run.region->epoch, run.offset, uint64_t{run.pages} * SCSTU_DATA_ALIGN);
  }
  s.n = 0;
  s.pages = 0;
}

void RingDevice::release_pages(uint32_t qi, uint8_t epoch, uint64_t offset, uint64_t bytes) {
  Queue& q = *queues_[qi];
  {
    std::lock_guard lock(q.alloc_lock);
    if (q.region->epoch == epoch) {
      q.region->alloc[qi].release(offset, bytes);
      return;
    }
  }
  // A retired region: unmapped here once its last page comes back.
  std::unique_ptr<Region> unused;
  std::lock_guard rl(regions_mu_);
  for (auto it = regions_.begin(); it != regions_.end(); ++it) {
    Region& r = **it;
    if (r.epoch != epoch || &r == current_) continue;
    bool ok;
    {
      std::lock_guard lock(q.alloc_lock);
      ok = r.alloc[qi].release(offset, bytes);
    }
    if (ok) r.pages_out -= (bytes + SCSTU_DATA_ALIGN - 1) / SCSTU_DATA_ALIGN;
    if (r.pages_out == 0) {
      unused = std::move(*it);
      regions_.erase(it);
    }
    return;
  }
}

template <typename Write>
bool RingDevice::alloc_scratch(uint32_t qi, Write write, uint64_t* offset, uint8_t* epoch) {
  Queue& q = *queues_[qi];
  std::lock_guard lock(q.alloc_lock);
  Region& r = *q.region;
  std::optional<uint64_t> page = r.alloc[qi].allocate(SCSTU_DATA_ALIGN);
  if (!page) return false;
  write(r.view.data() + *page);
  *offset = *page;
  *epoch = r.epoch;
  return true;
}

void RingDevice::free_scratch(const Inflight& w) {
  if (w.scratch_offset == UINT64_MAX) return;
  // Scratch pages live in the queue whose allocator covers the offset.
  const uint64_t qi = w.scratch_offset / layout_.data_per_queue;
  if (qi < queues_.size())
    release_pages(static_cast<uint32_t>(qi), w.scratch_epoch, w.scratch_offset, SCSTU_DATA_ALIGN);
}

// ---- submission ---------------------------------------------------------------

template <typename Fill>
RingDevice::Submitted RingDevice::submit_entry(uint32_t qi, Inflight&& what, uint32_t data_length,
                                               bool control, Fill fill) {
  Queue& q = *queues_[qi];
  std::lock_guard lock(q.lock);
  if (!(control ? q.connected : q.accepting)) return Submitted::kNotAccepting;
  if (q.free_tags.empty()) return Submitted::kNoTag;
  Region& r = *q.region;
  // A scratch page from before a reattach belongs to the dropped handler's region.
  if (what.scratch_offset != UINT64_MAX && what.scratch_epoch != r.epoch)
    return Submitted::kNotAccepting;
  scstu_cmd c;
  ring::zero_fill<sizeof(c)>(&c);  // reserved fields and unused iovs are 0
  if (!fill(c, r)) return Submitted::kForeignBuffer;
  const uint32_t tag = q.free_tags.back();
  q.free_tags.pop_back();
  const uint32_t seq = ++q.next_seq;
  c.kind = what.kind;
  c.seq = seq;
  std::memcpy(&r.view.cmds(qi)[tag], &c, sizeof(c));
  q.outstanding[tag] = ring::Outstanding{true, what.kind, seq, data_length};
  q.inflight[tag] = std::move(what);
  q.sq.push(tag);
  if (t_completing == this) {
    // The event thread, inside a completion chunk: published when it ends.
    if (!q.dirty) dirty_queues_.push_back(qi);
    q.dirty = true;
    return Submitted::kOk;
  }
  if (q.sq.publish()) kick(q.sq_kick);
  return Submitted::kOk;
}

void RingDevice::submit(core::TargetCommand& cmd) {
  const uint32_t qi = static_cast<uint32_t>(cmd.device_cookie & kCookieQueueMask) % queues_.size();
  if (cmd.buffer.size() > SCSTU_INLINE_IOV || cmd.cdb_len < 1 || cmd.cdb_len > 255) {
    std::fprintf(stderr, "scstu: ring device %s: command with %zu buffer segments, cdb_len %u\n",
                 config_.name.c_str(), cmd.buffer.size(), cmd.cdb_len);
    complete_now(cmd, status::kCheckCondition, kInternalFailure);
    return;
  }
  Inflight what;
  what.kind = SCSTU_KIND_SCSI;
  what.cmd = &cmd;
  if (cmd.cdb_len > SCSTU_CDB_MAX &&
      !alloc_scratch(
          qi, [&](uint8_t* p) { std::memcpy(p, cmd.cdb.data(), cmd.cdb_len); },
          &what.scratch_offset, &what.scratch_epoch)) {
    cmd.status = status::kTaskSetFull;
    cmd.sense_len = 0;
    cmd.transferred = 0;
    if (cmd.done) cmd.done(cmd);
    return;
  }
  const uint64_t data_size = layout_.data_size;
  bool stale_buffer = false;
  auto fill = [&](scstu_cmd& c, const Region& r) {
    // The buffer must be ours, from this region: every iovec inside its data area.
    const uint8_t* data = r.view.data();
    uint64_t total = 0;
    for (const iovec& v : cmd.buffer) {
      const uint8_t* p = static_cast<const uint8_t*>(v.iov_base);
      if (p < data || v.iov_len > data_size || uint64_t(p - data) > data_size - v.iov_len) {
        // From alloc_buffer before a reattach: the region of a dropped handler.
        stale_buffer = (cmd.device_cookie & kCookieHasBuffer) &&
                       static_cast<uint8_t>(cmd.device_cookie >> 55) != r.epoch;
        return false;
      }
      total += v.iov_len;
    }
    if (total != cmd.data_length) return false;
    c.data_dir = static_cast<uint8_t>(cmd.direction);
    c.task_attr = static_cast<uint8_t>(cmd.task_attr);
    c.cdb_len = static_cast<uint8_t>(cmd.cdb_len);
    c.flags = cmd.read_only ? SCSTU_CMD_F_READ_ONLY : 0;
    if (cmd.cdb_len > SCSTU_CDB_MAX) {
      c.flags |= SCSTU_CMD_F_CDB_IN_DATA;
      c.cdb_offset = what.scratch_offset;
    } else {
      std::memcpy(c.cdb, cmd.cdb.data(), cmd.cdb_len);
    }
    c.nr_iov = static_cast<uint16_t>(cmd.buffer.size());
    for (size_t i = 0; i < cmd.buffer.size(); ++i) {
      c.iov[i].offset = static_cast<const uint8_t*>(cmd.buffer[i].iov_base) - data;
      c.iov[i].len = static_cast<uint32_t>(cmd.buffer[i].iov_len);
    }
    c.data_length = cmd.data_length;
    c.lun = cmd.lun;
    c.session_id = cmd.session ? cmd.session->id() : 0;
    c.expected_length = cmd.expected_length;
    c.out_length = cmd.direction == DataDirection::kBidi ? cmd.bidi_read_length : 0;
    return true;
  };
  // `what` is moved from only when the entry is sent.
  const Submitted result = submit_entry(qi, std::move(what), cmd.data_length, false, fill);
  if (result == Submitted::kOk) return;
  free_scratch(what);  // its scratch page, if any
  switch (result) {
    case Submitted::kNoTag:
      // More commands than queue_depth: SAM-5 5.3: TASK SET FULL.
      cmd.status = status::kTaskSetFull;
      cmd.sense_len = 0;
      cmd.transferred = 0;
      if (cmd.done) cmd.done(cmd);
      return;
    case Submitted::kForeignBuffer:
      if (!stale_buffer) {
        std::fprintf(stderr, "scstu: ring device %s: command with a buffer not from alloc_buffer\n",
                     config_.name.c_str());
        complete_now(cmd, status::kCheckCondition, kInternalFailure);
        return;
      }
      [[fallthrough]];
    default:
      complete_now(cmd, status::kCheckCondition, kCommFailure);
      return;
  }
}

void RingDevice::task_management(core::TargetTmf& tmf) {
  const bool by_ref = tmf.function == SCSTU_TMF_ABORT_TASK || tmf.function == SCSTU_TMF_QUERY_TASK;
  uint32_t qi = pick_queue();
  uint32_t ref_tag = 0, ref_seq = 0;
  if (by_ref) {
    bool found = false;
    for (uint32_t i = 0; i < queues_.size() && !found; ++i) {
      Queue& q = *queues_[i];
      std::lock_guard lock(q.lock);
      for (uint32_t tag = 0; tag < q.inflight.size(); ++tag) {
        if (q.outstanding[tag].in_flight && q.inflight[tag].cmd == tmf.ref && tmf.ref) {
          qi = i;
          ref_tag = tag;
          ref_seq = q.outstanding[tag].seq;
          found = true;
          break;
        }
      }
    }
    // SAM-5 7.2: the task already completed: function complete.
    if (!found) {
      if (tmf.done) tmf.done(SCSTU_TMF_COMPLETE);
      return;
    }
  }
  Inflight what;
  what.kind = SCSTU_KIND_TMF;
  what.tmf = &tmf;
  what.deadline_ns = ring::monotonic_nanos() + uint64_t{config_.tmf_timeout_ms} * 1000000;
  auto fill = [&](scstu_cmd& c, const Region&) {
    c.lun = tmf.lun;
    c.session_id = tmf.session ? tmf.session->id() : 0;
    c.tmf.function = static_cast<uint8_t>(tmf.function);
    c.tmf.ref_tag = static_cast<uint16_t>(ref_tag);
    c.tmf.ref_seq = ref_seq;
    c.tmf.ref_queue = qi;
    return true;
  };
  // Counted before it can complete; the event thread watches the deadline.
  tmfs_pending_.fetch_add(1, std::memory_order_relaxed);
  if (submit_entry(qi, std::move(what), 0, false, fill) == Submitted::kOk) {
    kick(ctl_fd_);
    return;
  }
  tmfs_pending_.fetch_sub(1, std::memory_order_relaxed);
  // No handler: its commands were all failed already, so there is nothing
  // left to abort; anything else cannot be carried out.
  if (tmf.done) tmf.done(by_ref ? SCSTU_TMF_COMPLETE : SCSTU_TMF_FAILED);
}

bool RingDevice::send_control(uint32_t qi, uint8_t kind, const SessionInfo* s, uint64_t session_id,
                              std::shared_ptr<ControlWait> wait, uint8_t event) {
  Inflight what;
  what.kind = kind;
  what.control = std::move(wait);
  uint32_t len = 0;
  if (kind == SCSTU_KIND_SESS_ATTACH) {
    scstu_session_info wire{};
    wire.session_id = s->id;
    wire.relative_port = s->relative_port;
    wire.protocol_id = s->protocol_id;
    std::snprintf(wire.initiator_name, sizeof(wire.initiator_name), "%s",
                  s->initiator_name.c_str());
    std::snprintf(wire.transport_id, sizeof(wire.transport_id), "%s", s->transport_id.c_str());
    std::snprintf(wire.target_name, sizeof(wire.target_name), "%s", s->target_name.c_str());
    if (!alloc_scratch(
            qi, [&](uint8_t* p) { std::memcpy(p, &wire, sizeof(wire)); }, &what.scratch_offset,
            &what.scratch_epoch))
      return false;
    len = sizeof(wire);
  }
  Inflight scratch_only;  // to give the page back when the entry is not sent
  scratch_only.scratch_offset = what.scratch_offset;
  scratch_only.scratch_epoch = what.scratch_epoch;
  auto fill = [&](scstu_cmd& c, const Region&) {
    c.session_id = session_id;
    if (kind == SCSTU_KIND_UNIT_EVENT) c.unit.event = event;
    if (len) {
      c.nr_iov = 1;
      c.iov[0].offset = scratch_only.scratch_offset;
      c.iov[0].len = len;
      c.data_length = len;
    }
    return true;
  };
  if (submit_entry(qi, std::move(what), len, true, fill) == Submitted::kOk) return true;
  free_scratch(scratch_only);
  return false;
}

void RingDevice::session_attached(const SessionInfo& session) {
  {
    std::lock_guard lock(sessions_mu_);
    sessions_[session.id] = session;
  }
  auto w = std::make_shared<ControlWait>();
  if (!send_control(pick_queue(), SCSTU_KIND_SESS_ATTACH, &session, session.id, w)) return;
  // The handler must know the session before its first command: wait (not
  // on the event thread, which is the one that would see the acknowledgement).
  if (std::this_thread::get_id() == event_thread_.get_id()) return;
  std::unique_lock lock(w->mu);
  if (!w->cv.wait_for(lock, std::chrono::milliseconds(kControlTimeoutMs), [&] { return w->done; }))
    std::fprintf(stderr,
                 "scstu: ring device %s: handler did not acknowledge session %llu "
                 "within %d ms\n",
                 config_.name.c_str(), static_cast<unsigned long long>(session.id),
                 kControlTimeoutMs);
}

void RingDevice::session_detached(const SessionInfo& session) {
  {
    std::lock_guard lock(sessions_mu_);
    sessions_.erase(session.id);
    luns_changed_taken_.erase(session.id);
  }
  auto w = std::make_shared<ControlWait>();
  if (!send_control(pick_queue(), SCSTU_KIND_SESS_DETACH, nullptr, session.id, w)) return;
  if (std::this_thread::get_id() == event_thread_.get_id()) return;
  std::unique_lock lock(w->mu);
  w->cv.wait_for(lock, std::chrono::milliseconds(kControlTimeoutMs), [&] { return w->done; });
}

// ---- unit state (ring ABI 1.2) ------------------------------------------------

void RingDevice::complete_now(core::TargetCommand& cmd, uint8_t status,
                              const uint8_t (&fixed)[18]) const {
  set_sense(cmd, status, fixed, unit_d_sense_.load(std::memory_order_relaxed) == 1);
  if (cmd.done) cmd.done(cmd);
}

bool RingDevice::control_round_trip(uint8_t kind, const SessionInfo* session, uint64_t session_id,
                                    uint8_t event, uint8_t* response) {
  // The event thread is the one that would see the acknowledgement.
  if (std::this_thread::get_id() == event_thread_.get_id()) return false;
  auto w = std::make_shared<ControlWait>();
  if (!send_control(pick_queue(), kind, session, session_id, w, event)) return false;
  std::unique_lock lock(w->mu);
  if (!w->cv.wait_for(lock, std::chrono::milliseconds(kControlTimeoutMs),
                      [&] { return w->done; })) {
    std::fprintf(stderr,
                 "scstu: ring device %s: handler did not acknowledge a unit event within %d ms\n",
                 config_.name.c_str(), kControlTimeoutMs);
    return false;
  }
  if (response) *response = w->response;
  return w->ok;
}

std::optional<scstu_handler_state> RingDevice::handler_state() const {
  scstu_handler_state state;
  {
    // current_ is the attached handler's region while conn_fd_ is open.
    std::lock_guard lock(attach_mu_);
    if (conn_fd_ < 0) return std::nullopt;
    state = ring::load_handler_state(current_->view.base());
  }
  if (const char* why = ring::validate_handler_state(state, params_.features)) {
    if (!bad_state_logged_.exchange(true))
      std::fprintf(stderr, "scstu: ring device %s: handler state block ignored: %s\n",
                   config_.name.c_str(), why);
    return std::nullopt;
  }
  if (!(state.features & SCSTU_F_UNIT_STATE)) return std::nullopt;
  unit_d_sense_.store((state.unit_flags & SCSTU_UNIT_F_D_SENSE) ? 1 : 0, std::memory_order_relaxed);
  return state;
}

// SAM-5 5.14: the handler queues the condition with its own unit attentions;
// only its acknowledgement ("taken") lets the core leave it to the handler.
bool RingDevice::reported_luns_changed(const SessionInfo& session) {
  // An ABI 1.1 handler, or one whose sessions are still being re-announced
  // (the event could overtake its nexus's attach): the core keeps it.
  if (!ready() || !handler_state()) return false;
  uint8_t response = 0;
  if (!control_round_trip(SCSTU_KIND_UNIT_EVENT, nullptr, session.id,
                          SCSTU_EVENT_REPORTED_LUNS_CHANGED, &response) ||
      response != SCSTU_TMF_SUCCEEDED)
    return false;
  std::lock_guard lock(sessions_mu_);
  luns_changed_taken_.insert(session.id);
  return true;
}

// SPC-4 6.33: REPORT LUNS clears the condition wherever it is kept. Waited
// for, so the initiator's next command does not report it again.
void RingDevice::reported_luns_read(const SessionInfo& session) {
  {
    std::lock_guard lock(sessions_mu_);
    if (luns_changed_taken_.erase(session.id) == 0) return;  // nothing handed over
  }
  if (!handler_state()) return;  // that handler is gone with its conditions
  if (!control_round_trip(SCSTU_KIND_UNIT_EVENT, nullptr, session.id,
                          SCSTU_EVENT_REPORTED_LUNS_READ, nullptr)) {
    std::lock_guard lock(sessions_mu_);
    luns_changed_taken_.insert(session.id);  // still there: the next REPORT LUNS tries again
  }
}

std::optional<bool> RingDevice::descriptor_sense() const {
  const std::optional<scstu_handler_state> state = handler_state();
  if (state) return (state->unit_flags & SCSTU_UNIT_F_D_SENSE) != 0;
  // No handler now: what the last one published, if it did.
  const int8_t last = unit_d_sense_.load(std::memory_order_relaxed);
  if (last >= 0 && !ready()) return last == 1;
  return std::nullopt;
}

// ---- completions ----------------------------------------------------------------

void RingDevice::flush_deferred(bool all) {
  size_t kept = 0;
  for (uint32_t qi : dirty_queues_) {
    Queue& q = *queues_[qi];
    std::lock_guard lock(q.lock);
    if (!q.dirty) continue;
    if (!all && q.sq.reader_sleeping()) {
      dirty_queues_[kept++] = qi;
      continue;
    }
    q.dirty = false;
    if (q.sq.publish()) kick(q.sq_kick);
  }
  dirty_queues_.resize(kept);
}

bool RingDevice::drain_completions(uint32_t qi) {
  // After a drop the rings may belong to a region a new attach retired.
  if (conn_fd_ < 0) return false;
  Queue& q = *queues_[qi];
  uint32_t n = q.cq.available();
  if (n == 0) return false;
  std::string violation;
  if (n == ring::RingReader::kCorrupt) {
    violation = "queue " + std::to_string(qi) + ": completion tail more than queue_depth ahead";
    n = 0;
  }
  // A chunk at a time: its resubmissions are published (and the handler
  // works on them) while this thread delivers the next chunk.
  n = std::min(n, kDeliverEvery);
  const scstu_cpl* cpls = q.cpls;
  const uint32_t depth = static_cast<uint32_t>(q.outstanding.size());
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t tag = q.cq.peek(i);  // the peer's: checked before it forms an address
    if (tag < depth) __builtin_prefetch(&cpls[tag]);
  }
  {
    std::lock_guard lock(q.lock);
    uint32_t i = 0;
    for (; i < n; ++i) {
      const uint32_t tag = q.cq.peek(i);
      Finished& f = q.finished.emplace_back();
      if (tag < depth) ring::copy_cpl(&f.cpl, &cpls[tag]);
      if (const char* why = ring::validate_cpl(f.cpl, tag, q.outstanding)) {
        violation = "queue " + std::to_string(qi) + " tag " + std::to_string(tag) + ": " + why;
        q.finished.pop_back();
        break;
      }
      q.outstanding[tag].in_flight = false;
      // The slot's other fields are dead until the tag is reused (and overwritten).
      f.what = std::move(q.inflight[tag]);
    }
    if (i > 0) q.cq.consume(i);
    // The freed tags are the next ones submit() uses (free_tags is LIFO):
    // fetch their descriptor lines for writing while the chunk is delivered.
    scstu_cmd* cmds = q.region->view.cmds(qi);
    for (const Finished& f : q.finished) {
      q.free_tags.push_back(f.cpl.tag);
      ring::prefetch_for_write(&cmds[f.cpl.tag]);
      ring::prefetch_for_write(reinterpret_cast<const char*>(&cmds[f.cpl.tag]) + 64);
    }
  }
  t_completing = this;
  for (Finished& f : q.finished) deliver(f);
  t_completing = nullptr;
  q.finished.clear();
  // Resubmissions go out per chunk while the handler polls (it works on them
  // while this thread delivers the next chunk); a sleeping handler is woken
  // once, when no completions are left (event_loop).
  flush_deferred(false);
  if (!violation.empty()) drop_handler("protocol violation: " + violation);
  return true;
}

void RingDevice::deliver(Finished& f) {
  Inflight& w = f.what;
  free_scratch(w);
  switch (w.kind) {
    case SCSTU_KIND_SCSI: {
      core::TargetCommand& cmd = *w.cmd;
      cmd.status = f.cpl.status;
      cmd.transferred = f.cpl.transferred;
      cmd.sense_len = f.cpl.sense_len;
      if (f.cpl.sense_len) std::memcpy(cmd.sense.data(), f.cpl.sense, f.cpl.sense_len);
      if (cmd.done) cmd.done(cmd);
      break;
    }
    case SCSTU_KIND_TMF:
      tmfs_pending_.fetch_sub(1, std::memory_order_relaxed);
      if (w.tmf->done) w.tmf->done(static_cast<scstu_tmf_response>(f.cpl.tmf_response));
      break;
    default:
      if (w.control->resend) control_finished();
      w.control->finish(true, f.cpl.tmf_response);
      break;
  }
}

void RingDevice::fail(Inflight& w) {
  free_scratch(w);
  switch (w.kind) {
    case SCSTU_KIND_SCSI:
      complete_now(*w.cmd, status::kCheckCondition, kCommFailure);
      break;
    case SCSTU_KIND_TMF:
      // SAM-5 7.10: SERVICE DELIVERY OR TARGET FAILURE.
      tmfs_pending_.fetch_sub(1, std::memory_order_relaxed);
      if (w.tmf->done) w.tmf->done(SCSTU_TMF_FAILED);
      break;
    default:
      if (w.control) w.control->finish(false);
      break;
  }
}

int RingDevice::check_tmf_deadlines() {
  const uint64_t now = ring::monotonic_nanos();
  if (next_tmf_scan_ns_ != 0 && now < next_tmf_scan_ns_)
    return static_cast<int>((next_tmf_scan_ns_ - now + 999999) / 1000000);
  // Deadlines are submission time + a constant, so the earliest one only
  // moves when it is answered: scanning again at that time is enough.
  uint64_t earliest = 0;
  std::string overdue;
  for (uint32_t qi = 0; qi < queues_.size(); ++qi) {
    Queue& q = *queues_[qi];
    std::lock_guard lock(q.lock);
    for (uint32_t tag = 0; tag < q.inflight.size(); ++tag) {
      const Inflight& w = q.inflight[tag];
      if (!q.outstanding[tag].in_flight || w.kind != SCSTU_KIND_TMF) continue;
      if (w.deadline_ns <= now && overdue.empty() && w.tmf) {
        char why[160];
        std::snprintf(why, sizeof(why),
                      "no answer to task management function %u (LUN 0x%016llx, queue %u tag "
                      "%u) within %u ms",
                      static_cast<unsigned>(w.tmf->function),
                      static_cast<unsigned long long>(w.tmf->lun), qi, tag, config_.tmf_timeout_ms);
        overdue = why;
      }
      earliest = earliest == 0 ? w.deadline_ns : std::min(earliest, w.deadline_ns);
    }
  }
  if (!overdue.empty()) {
    // Its queue thread is stuck (a TMF is answered synchronously): drop it;
    // its commands fail with LOGICAL UNIT COMMUNICATION FAILURE.
    drop_handler(overdue);
    next_tmf_scan_ns_ = 0;
    return -1;
  }
  next_tmf_scan_ns_ = earliest;
  if (earliest == 0) return tmfs_pending_.load(std::memory_order_relaxed) ? 1 : -1;
  return static_cast<int>((earliest - now + 999999) / 1000000);
}

void RingDevice::event_loop() {
  bool live = false;  // a handler is attached (event thread's view)
  ring::IdleSpin spin;
  epoll_event events[SCSTU_MAX_QUEUES + 2];
  while (!stopping_.load(std::memory_order_relaxed)) {
    int timeout_ms = -1;
    if (live && tmfs_pending_.load(std::memory_order_relaxed) != 0) {
      timeout_ms = check_tmf_deadlines();
      live = conn_fd_ >= 0;
    }
    if (live) {
      bool work = false;
      for (uint32_t q = 0; q < queues_.size(); ++q) work |= drain_completions(q);
      live = conn_fd_ >= 0;  // a violation may have dropped the handler
      if (work) continue;
      flush_deferred(true);  // nothing left to deliver: publish everything
      if (live && spin.spin([&] {
            for (auto& q : queues_)
              if (q->cq.available() != 0) return true;
            return stopping_.load(std::memory_order_relaxed);
          }))
        continue;
    }
    bool may_sleep = true;
    if (live)
      for (auto& q : queues_) may_sleep &= q->cq.prepare_sleep();
    const uint64_t t0 = ring::monotonic_nanos();
    int n = epoll_wait(epoll_fd_, events, SCSTU_MAX_QUEUES + 2, may_sleep ? timeout_ms : 0);
    if (live) spin.waited(may_sleep ? ring::monotonic_nanos() - t0 : 0);
    if (live)
      for (auto& q : queues_) q->cq.end_sleep();
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      uint64_t v;
      if (id == kCtlEvent) {
        if (read(ctl_fd_, &v, sizeof(v)) < 0) {
          // EAGAIN: already drained.
        }
        bool pending;
        {
          std::lock_guard lock(attach_mu_);
          pending = pending_conn_ >= 0;
        }
        if (pending && !stopping_) {
          start_handler();
          live = true;
        }
      } else if (id == kConnEvent) {
        // Nothing is sent after the handshake: readable means EOF or error.
        if (live) drop_handler("handler hung up");
        live = false;
      } else if (id < queues_.size() && queues_[id]->cq_kick >= 0) {
        if (read(queues_[id]->cq_kick, &v, sizeof(v)) < 0) {
          // EAGAIN: spurious.
        }
      }
    }
  }
  if (live) drop_handler("device shutting down");
}

}  // namespace scstu::transport
