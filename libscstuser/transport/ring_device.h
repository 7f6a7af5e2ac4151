// ring_device.h - the producer side of one device's ring: a core::Device whose
// commands go to a handler process (ring_abi.h).
//
// Hot path, per command: one uncontended per-queue spinlock, a 128-byte
// descriptor, one tail store; the eventfd is written only when the handler
// announced NEED_WAKEUP. Completions are drained by one event thread per
// device, validated (tag, seq, sense_len, transferred) and delivered in
// chunks of kDeliverEvery; resubmissions from inside `done` are published with
// one tail store per chunk while the handler polls (it works on them while
// the next chunk is delivered), or once at the end for a sleeping handler.
//
// Handler loss (socket hang-up or a protocol violation): every outstanding
// command completes at once with CHECK CONDITION, ABORTED COMMAND / LOGICAL
// UNIT COMMUNICATION FAILURE (0Bh/08h/00h) so initiators retry, and so does
// every command submitted while no handler is attached. A new handler can
// attach to the same device (hdr.generation is bumped; live sessions are
// re-announced before commands flow again).
//
// Every attach gets a fresh region (a new memfd): a dropped handler that is
// still alive keeps its old mapping and may go on writing into it, but no
// later handler, and no new command, ever uses that memory again. The old
// region stays mapped here only until the transport has released the buffers
// it still holds in it (those commands fail with the same sense).
//
// Buffers: alloc_buffer/release_buffer take a queue's allocator lock only
// when the calling thread's own cache cannot serve them. Each thread keeps up
// to kCacheRuns runs of up to kCacheMaxRunPages pages it released, per device
// (at most 1/16 of a queue's share), and hands them out again to its own
// allocations of the same size on the same queue: the common pattern (a
// transport thread releasing a buffer and allocating the next, a completion
// callback resubmitting) costs no lock, no atomic read-modify-write and no
// cache line another thread writes. The runs go back to the allocator when
// the thread exits, when an allocation would otherwise fail, or once they
// belong to a region a reattach retired. An idle thread (a connection with
// nothing to do) keeps its runs, and no other thread can take them: so all
// threads' shelves together may hold at most a quarter of one queue's share
// (a shelf reserves its limit from that budget when a thread first takes
// one, and gives it back at the thread's exit; threads beyond the budget go
// without a cache). However many connections sit idle, at least three
// quarters of every queue's share stay with its allocator.
//
// Ring ABI 1.2 (SCSTU_F_UNIT_STATE, offered in every region): a handler that
// accepted it keeps REPORTED LUNS DATA HAS CHANGED with its own unit
// attentions (a unit event per nexus, acknowledged before the core goes on;
// REPORT LUNS clears it the same way) and publishes its D_SENSE in the
// header page, read (and validated) only when the core builds sense. With a
// handler that did not accept it, the core keeps the condition and guesses
// the format from the last sense returned (core/device.h defaults). Sense
// this device builds itself (LOGICAL UNIT COMMUNICATION FAILURE while no
// handler is attached) follows the D_SENSE the last handler published.
//
// A task management request the handler does not answer within
// tmf_timeout_ms means its queue thread is stuck: the handler is dropped as
// above, and the TMF is answered SERVICE DELIVERY OR TARGET FAILURE.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/device.h"
#include "ring/attach_protocol.h"
#include "ring/data_allocator.h"
#include "ring/entry_validation.h"
#include "ring/spsc_ring.h"
#include "transport/shared_region.h"

namespace scstu::transport {

struct RingDeviceConfig {
  std::string name;  // [a-zA-Z0-9_-], < 32 bytes: what handlers attach to
  uint32_t nr_queues = 1;
  uint32_t queue_depth = 128;        // power of two
  uint64_t data_size = 64u << 20;    // shared data area, split between queues
  uint32_t max_io_bytes = 1u << 20;  // largest data_length
  int device_type = -1;              // accept only handlers of this type; -1: any
  uint32_t tmf_timeout_ms = 30000;   // unanswered TMF: drop the handler (see above)
};

class RingDevice final : public core::Device, public std::enable_shared_from_this<RingDevice> {
 public:
  static std::shared_ptr<RingDevice> create(const RingDeviceConfig& config, std::string* error);
  ~RingDevice() override;

  // A handler sent `hello` on the connected socket `conn` (ownership taken).
  // Replies (fds over SCM_RIGHTS, or a refusal) and, on success, starts
  // feeding that handler. False, with *error, when refused.
  bool attach(int conn, const ring::AttachHello& hello, std::string* error);
  // Commands flow (a handler is attached and sessions were re-announced).
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // Waits up to timeout_ms for ready(); for tests and startup scripts.
  bool wait_ready(int timeout_ms) const;
  uint64_t generation() const;
  const std::string& name() const { return config_.name; }
  // alloc_buffer() on a chosen queue (the command is then submitted on it):
  // for transports that keep, e.g., one connection per queue. alloc_buffer()
  // itself spreads threads over queues round-robin, one queue per thread.
  bool alloc_buffer_on(core::TargetCommand& cmd, uint32_t queue);
  uint32_t nr_queues() const { return static_cast<uint32_t>(queues_.size()); }
  // Why the last handler was dropped ("" if none was).
  std::string last_drop_reason() const;
  // The shared data area's use now, summed over the queues (for tools: takes
  // each queue's allocator lock). Runs parked in threads' caches (see
  // "Buffers" above) count as in use.
  struct DataAreaUsage {
    uint64_t total_bytes = 0;
    uint64_t free_bytes = 0;
    uint32_t slots = 0;        // tags: commands that may be outstanding at once
    uint32_t outstanding = 0;  // tags in use
  };
  DataAreaUsage data_area_usage() const;

  // core::Device. The reference stays valid, and its contents unchanged, for
  // the device's lifetime; a later attach publishes a new snapshot.
  const core::DeviceInfo& info() const override { return *info_.load(std::memory_order_acquire); }
  bool alloc_buffer(core::TargetCommand& cmd) override;
  void release_buffer(core::TargetCommand& cmd) override;
  void submit(core::TargetCommand& cmd) override;
  void task_management(core::TargetTmf& tmf) override;
  void session_attached(const SessionInfo& session) override;
  void session_detached(const SessionInfo& session) override;
  bool reported_luns_changed(const SessionInfo& session) override;
  void reported_luns_read(const SessionInfo& session) override;
  std::optional<bool> descriptor_sense() const override;

 private:
  struct ControlWait;
  struct Region;
  struct RunCache;
  struct RunShelf;
  struct Inflight {
    uint8_t kind = 0;
    uint8_t scratch_epoch = 0;  // region of the scratch page
    core::TargetCommand* cmd = nullptr;
    core::TargetTmf* tmf = nullptr;
    std::shared_ptr<ControlWait> control;
    uint64_t scratch_offset = UINT64_MAX;  // page holding a long CDB or session info
    uint64_t deadline_ns = 0;              // TMF: answer due (monotonic)
  };
  struct Finished {
    // Not value-initialized: drain_completions fills cpl's fixed fields and
    // sense_len bytes of sense, and nothing reads more (zeroing 184 bytes per
    // completion was a `rep stos` in the profile).
    Finished() {}
    Inflight what;
    scstu_cpl cpl;
  };
  struct Queue;

  enum class Submitted { kOk, kNotAccepting, kNoTag, kForeignBuffer };

  explicit RingDevice(const RingDeviceConfig& config);
  uint32_t pick_queue() const;
  // Fills and publishes one descriptor on queue q. `fill(c, region)` writes
  // the kind-specific fields, or returns false when the command's buffers are
  // not in that (the current) region.
  template <typename Fill>
  // `what` is moved into the queue only when the result is kOk.
  Submitted submit_entry(uint32_t q, Inflight&& what, uint32_t data_length, bool control,
                         Fill fill);
  bool send_control(uint32_t q, uint8_t kind, const SessionInfo* session, uint64_t session_id,
                    std::shared_ptr<ControlWait> wait, uint8_t event = 0);
  // Sends a control entry and waits (bounded; not on the event thread) for
  // its acknowledgement. False when it was not sent or not acknowledged.
  bool control_round_trip(uint8_t kind, const SessionInfo* session, uint64_t session_id,
                          uint8_t event, uint8_t* response);
  // ABI 1.2: the attached handler's state block, when it accepted
  // SCSTU_F_UNIT_STATE (validated copy); nullopt otherwise.
  std::optional<scstu_handler_state> handler_state() const;
  // Completes `cmd` with sense this device builds (`fixed`, in the format
  // the unit last published).
  void complete_now(core::TargetCommand& cmd, uint8_t status, const uint8_t (&fixed)[18]) const;
  void event_loop();
  bool drain_completions(uint32_t q);
  void deliver(Finished& f);
  void fail(Inflight& what);
  // Publishes resubmissions made inside a completion chunk; unless `all`,
  // not to a handler that is asleep (more chunks follow).
  void flush_deferred(bool all);
  void drop_handler(const std::string& reason);
  void start_handler();
  void control_finished();
  // A scratch page on queue q of the current region: its offset and the
  // region's epoch, written to by `write(data_area_base + offset)`.
  template <typename Write>
  bool alloc_scratch(uint32_t q, Write write, uint64_t* offset, uint8_t* epoch);
  // Gives pages back to the region they came from (current or retired).
  void release_pages(uint32_t q, uint8_t epoch, uint64_t offset, uint64_t bytes);
  void free_scratch(const Inflight& w);
  // The calling thread's run cache (see "Buffers"); its shelf for this
  // device, or nullptr (with `claim`: a free shelf is taken if there is one).
  static RunCache& run_cache();
  RunShelf* shelf(bool claim);
  // Gives a shelf's runs back to the allocators.
  void flush_shelf(RunShelf& s);
  std::unique_ptr<Region> make_region(uint8_t epoch, uint64_t generation, std::string* error);
  void set_info(uint8_t device_type, uint32_t block_size);
  // Event thread: drops the handler when a TMF is overdue; returns the
  // milliseconds until the next TMF deadline, or -1 when none is pending.
  int check_tmf_deadlines();

  // Completions delivered (and their resubmissions published) per chunk.
  static constexpr uint32_t kDeliverEvery = 16;
  // Per-thread run cache bounds (see "Buffers").
  static constexpr uint32_t kCacheRuns = 8;
  static constexpr uint32_t kCacheMaxRunPages = 16;
  static constexpr uint32_t kCacheDevices = 4;

  const uint64_t id_;              // never reused: names this device in threads' run caches
  uint64_t cache_page_limit_ = 0;  // pages one thread may park per device
  // Pages not yet reserved by a thread's shelf (see "Buffers"): taken and
  // given back cache_page_limit_ at a time, once per thread and device.
  std::atomic<uint64_t> shelf_budget_{0};

  RingDeviceConfig config_;
  ring::RegionParams params_;
  scstu_region_header layout_{};  // sizes and offsets: the same in every region
  std::atomic<const core::DeviceInfo*> info_{nullptr};
  std::mutex info_mu_;
  std::vector<std::unique_ptr<core::DeviceInfo>> infos_;  // one per distinct snapshot, kept
  std::vector<std::unique_ptr<Queue>> queues_;
  // Regions: the current one and retired ones whose buffers the transport
  // still holds. A queue's `region` pointer changes under both its locks.
  std::mutex regions_mu_;
  std::vector<std::unique_ptr<Region>> regions_;
  Region* current_ = nullptr;    // under attach_mu_
  bool current_handed_ = false;  // under attach_mu_: some handler mapped current_
  std::atomic<uint32_t> tmfs_pending_{0};
  uint64_t next_tmf_scan_ns_ = 0;  // event thread
  int epoll_fd_ = -1;
  int ctl_fd_ = -1;  // eventfd: wake the event thread (new handler, shutdown)
  std::atomic<bool> stopping_{false};
  std::thread event_thread_;

  mutable std::mutex attach_mu_;  // conn_fd_, pending_conn_, drop reason, generation
  mutable std::condition_variable ready_cv_;
  int conn_fd_ = -1;       // the attached handler's socket (event thread owns it)
  int pending_conn_ = -1;  // handed from attach() to the event thread
  std::string drop_reason_;
  std::atomic<bool> ready_{false};
  uint32_t resend_pending_ = 0;         // event thread: session attaches in flight after attach
  std::vector<uint32_t> dirty_queues_;  // event thread: queues with unpublished submissions

  std::mutex sessions_mu_;
  std::map<uint64_t, SessionInfo> sessions_;
  // Nexuses whose REPORTED LUNS DATA HAS CHANGED a handler took and REPORT
  // LUNS has not cleared yet (under sessions_mu_): only they need a clear.
  std::set<uint64_t> luns_changed_taken_;
  mutable std::atomic<bool> bad_state_logged_{false};
  // The D_SENSE the handler last published, -1 before it did (kept over a
  // drop: sense built while no handler is attached follows it).
  mutable std::atomic<int8_t> unit_d_sense_{-1};
};

}  // namespace scstu::transport
