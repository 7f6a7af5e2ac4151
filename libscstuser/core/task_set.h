// task_set.h - the task set of one logical unit (SAM-5 8: task attributes and
// their ordering) and the effects of task management functions on the
// logical unit's state (SAM-5 7).
//
// One task set per logical unit shared by all I_T nexuses (TST = 000b).
// A Task is owned by the caller (LogicalUnit keeps it in its per-command
// context, so entering and leaving the set never allocates) from enter()
// until finish(). Ordering (SAM-5 8.6):
//   SIMPLE        starts when no older ORDERED or HEAD OF QUEUE task remains;
//   ORDERED       starts when no older task remains, and holds back newer ones;
//   HEAD OF QUEUE starts at once; newer SIMPLE/ORDERED tasks wait for it;
//   ACA           rejected: NACA is not supported (the caller answers the
//                 Outcome enter() gives).
// A task that cannot start yet is queued; a finish() that unblocks it calls
// Hooks::start from the finishing thread, outside the lock (no thread waits).
//
// Aborts: a queued task is removed at once and handed to Hooks::aborted; a
// running one is marked and stays until the caller calls finish(), whose
// answer says what to do with the reply (deliver, discard, TASK ABORTED).
//
// Thread-safe; one mutex, held briefly by enter() and finish().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "core/reservations.h"
#include "core/unit_attentions.h"
#include "handler/command.h"
#include "ring/ring_abi.h"

namespace scstu::core {

// What becomes of a task's reply.
enum class TaskDisposition : uint8_t {
  kDeliver,      // not aborted: complete it normally
  kDiscard,      // aborted: the reply is discarded (the initiator knows, or TAS = 0)
  kTaskAborted,  // aborted by another nexus with TAS = 1: complete with TASK ABORTED
};

class TaskSet {
 public:
  struct Task {
    // Filled by the caller before enter().
    uint64_t nexus = 0;
    uint16_t queue = 0;
    uint32_t tag = 0;
    TaskAttribute attribute = TaskAttribute::kSimple;
    void* context = nullptr;  // the caller's

   private:
    friend class TaskSet;
    enum class State : uint8_t { kOutside, kQueued, kRunning };
    Task* prev = nullptr;
    Task* next = nullptr;
    State state = State::kOutside;
    TaskDisposition disposition = TaskDisposition::kDeliver;
  };

  struct Hooks {
    // A queued task may run now. Called once per queued task that starts.
    std::function<void(Task&)> start;
    // A queued task was aborted before it started; it has left the set (do
    // not call finish()). Complete its command according to the disposition.
    std::function<void(Task&, TaskDisposition)> aborted;
  };

  enum class Admission : uint8_t { kRun, kQueued, kRejected };

  explicit TaskSet(Hooks hooks);
  TaskSet(const TaskSet&) = delete;
  TaskSet& operator=(const TaskSet&) = delete;
  ~TaskSet();

  // Add a task. kRun: the caller runs it now. kQueued: Hooks::start (or
  // Hooks::aborted) will be called later. kRejected: the task did not enter
  // (ACA attribute); complete it with *rejection.
  Admission enter(Task& task, Outcome* rejection = nullptr);
  // The task's command is done (its reply is about to be sent). Returns what
  // to do with the reply; starts the tasks this unblocks.
  TaskDisposition finish(Task& task);

  // Task management on the set (SAM-5 7). `issuer` is the nexus of the TMF.
  // Each returns the number of tasks it aborted.
  size_t abort_task(uint64_t issuer, uint16_t queue, uint32_t tag);
  size_t abort_task_set(uint64_t issuer);
  // Every task of every nexus. Tasks of other nexuses end TASK ABORTED when
  // `tas`, else silently. `cleared_nexuses` receives the other nexuses that
  // lost tasks (for COMMANDS CLEARED BY ANOTHER INITIATOR).
  size_t clear_task_set(uint64_t issuer, bool tas, std::vector<uint64_t>* cleared_nexuses);
  // Every task of these nexuses, as if aborted by another nexus (PREEMPT AND
  // ABORT, SPC-4 5.13.11.2.6): `except` (the PR OUT command) is spared.
  // `cleared_nexuses` receives the other nexuses that lost tasks only when
  // `tas` is clear: they are owed COMMANDS CLEARED BY ANOTHER INITIATOR
  // (SAM-5 5.6); with TAS set their tasks end TASK ABORTED instead.
  size_t abort_nexuses(std::span<const uint64_t> nexuses, bool tas, const Task* except,
                       std::vector<uint64_t>* cleared_nexuses);
  // Has a task management function aborted this running task? (Its command
  // may then be completed early: finish() discards the reply anyway.)
  bool aborted(const Task& task) const;
  // QUERY TASK: is the task in the set and not completed?
  bool contains(uint64_t nexus, uint16_t queue, uint32_t tag) const;
  // QUERY TASK SET: does the nexus have a task in the set?
  bool has_tasks(uint64_t nexus) const;

  size_t size() const;
  size_t queued() const;
  // Wait until no aborted task is still running (SAM-5 7.1: a TMF completes
  // after the tasks it aborted have ended). False on timeout.
  bool wait_aborted_done(std::chrono::milliseconds timeout);

 private:
  void link_locked(Task& t);
  void unlink_locked(Task& t);
  // Collect queued tasks that may now start.
  void collect_startable_locked(std::vector<Task*>& out);
  // Abort every task matching pred; queued ones go to `dropped`.
  template <typename Pred>
  size_t abort_locked(Pred pred, uint64_t issuer, bool tas,
                      std::vector<std::pair<Task*, TaskDisposition>>& dropped,
                      std::vector<uint64_t>* cleared_nexuses);
  void run_hooks(std::vector<Task*>& start,
                 std::vector<std::pair<Task*, TaskDisposition>>& dropped);

  Hooks hooks_;
  mutable std::mutex mutex_;
  std::condition_variable aborted_done_;
  Task* head_ = nullptr;
  Task* tail_ = nullptr;
  size_t size_ = 0;
  size_t queued_ = 0;
  size_t barriers_ = 0;  // ORDERED and HEAD OF QUEUE tasks in the set
  size_t aborted_running_ = 0;
};

// The effect of one task management function on a logical unit's state
// (SAM-5 7, SPC-4 5.13): the task set, unit attentions, SPC-2 reservations.
// Persistent reservations are not affected by resets (SPC-4 5.13.1).
struct LogicalUnitState {
  TaskSet& tasks;
  UnitAttentions& unit_attentions;
  Reservations& reservations;
};
// `tas`: the control mode page's TAS bit. Returns the SAM-5 service response.
// ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LUN RESET, TARGET RESET (as LUN
// RESET of this unit), I_T NEXUS LOSS, QUERY TASK, QUERY TASK SET, QUERY
// ASYNCHRONOUS EVENT; CLEAR ACA completes (no ACA is ever established).
scstu_tmf_response apply_task_management(const LogicalUnitState& lu,
                                         const TaskManagementRequest& req, bool tas);

}  // namespace scstu::core
