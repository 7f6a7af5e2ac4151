// queue_runner.h - the handler side of one ring queue: reads submitted tags,
// validates each descriptor (a private copy of it), turns it into a
// CommandRequest + CommandHandle for the LowLevelHandler, and publishes the
// replies on the completion ring.
//
// Completions may come from any thread. Those made on the queue thread while
// it dispatches a batch are collected and published with one tail store per
// kPublishEvery commands (so the producer works on them while the batch goes
// on); others take the queue's completion spinlock (held for a handful of
// stores) and publish at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "handler/command.h"
#include "handler/session_registry.h"
#include "handler/unit_state.h"
#include "ring/entry_validation.h"
#include "ring/idle_spin.h"
#include "ring/region_layout.h"
#include "ring/spin_lock.h"
#include "ring/spsc_ring.h"

namespace scstu {

class RingAttachment;
class QueueRunner;

// What TMF processing needs to see of every queue's outstanding commands.
struct TaskRecord {
  enum : uint32_t { kIdle = 0, kOutstanding = 1, kAborted = 2 };
  std::atomic<uint32_t> state{kIdle};
  std::atomic<uint32_t> seq{0};
  std::atomic<uint64_t> lun{0};
  std::atomic<uint64_t> session_id{0};
  std::atomic<uint8_t> kind{0};
};

class QueueRunner final : public CommandSink {
 public:
  // Fatal outcomes of run(): the peer broke the protocol.
  struct Context {
    const RingAttachment* attachment;
    LowLevelHandler* handler;
    SessionRegistry* sessions;
    std::vector<std::unique_ptr<QueueRunner>>* queues;  // all queues, for TMF
    int exit_fd;                                        // readable: stop
    const std::atomic<bool>* stopping;                  // set before exit_fd is signalled
    std::atomic<uint32_t>* live_queues;                 // see release()
    void (*destroy)(void* owner);  // frees the owner when the last queue is released
    void* owner;
    UnitStatePublisher* unit_state;  // ABI 1.2 state block (enabled() or not)
  };

  QueueRunner(const Context& ctx, uint32_t queue);

  // The queue thread's loop. Returns 0 on stop, -EPROTO (and *error) when
  // the producer wrote something impossible.
  int run(std::string* error);

  // CommandSink: token is the tag.
  void complete(uint32_t token, const CommandReply& reply) override;

  // After the queue thread stopped: no more ring writes or kicks.
  void mark_dead();
  // Then: the owner is freed once every queue was released and every
  // outstanding command has completed.
  void release();

  // TMF support: marks matching outstanding commands aborted.
  bool abort_if(uint32_t tag, uint32_t seq);
  void abort_matching(bool any_lun, uint64_t lun, bool any_session, uint64_t session_id);
  bool is_outstanding(uint32_t tag, uint32_t seq) const;

 private:
  struct Slot {
    scstu_cmd cmd;  // private copy, validated
    CommandRequest request;
    std::vector<iovec> iov;
    std::vector<uint8_t> long_cdb;
  };
  enum class Outcome { kOk, kViolation };

  // Completions made on the queue thread are published every this many.
  static constexpr size_t kPublishEvery = 16;
  static constexpr uint32_t kPrefetchAhead = 4;

  Outcome process(uint32_t tag, std::string* error);
  void prefetch_cmd(uint32_t tag) const;
  void dispatch_scsi(uint32_t tag, Slot& slot);
  void handle_tmf(uint32_t tag, Slot& slot);
  void handle_session(uint32_t tag, Slot& slot);
  void handle_unit_event(uint32_t tag, Slot& slot);
  void fail_invalid(uint32_t tag, const char* why);
  // Completes `cpl` (tag, seq, TASK ABORTED) in place, then writes and publishes it.
  void post(uint32_t tag, scstu_cpl& cpl);
  void flush_batch();
  bool wait_for_work();
  void lock() { cq_lock_.lock(); }
  void unlock() { cq_lock_.unlock(); }
  void drop_refs(uint32_t n);

  Context ctx_;
  uint32_t queue_;
  uint32_t depth_;
  ring::RegionView region_;
  ring::CmdLimits limits_;
  ring::RingReader sq_;
  ring::RingWriter cq_;
  std::vector<Slot> slots_;
  std::unique_ptr<TaskRecord[]> tasks_;
  std::vector<scstu_iov> iov_scratch_;
  SessionRegistry::Cache session_cache_;
  ring::IdleSpin spin_;

  ring::SpinLock cq_lock_;
  bool dead_ = false;            // under cq_lock_
  std::vector<uint32_t> batch_;  // tags completed on the queue thread, not yet pushed
  // Outstanding commands, plus kDead once the queue is dead.
  static constexpr uint32_t kDead = 1u << 31;
  std::atomic<uint32_t> refs_{0};
};

}  // namespace scstu
