#include "core/task_set.h"

#include <utility>

namespace scstu::core {

TaskSet::TaskSet(Hooks hooks) : hooks_(std::move(hooks)) {}

TaskSet::~TaskSet() = default;

void TaskSet::link_locked(Task& t) {
  t.prev = tail_;
  t.next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = &t;
  } else {
    head_ = &t;
  }
  tail_ = &t;
  ++size_;
  if (t.attribute != TaskAttribute::kSimple) ++barriers_;
}

void TaskSet::unlink_locked(Task& t) {
  if (t.prev != nullptr) {
    t.prev->next = t.next;
  } else {
    head_ = t.next;
  }
  if (t.next != nullptr) {
    t.next->prev = t.prev;
  } else {
    tail_ = t.prev;
  }
  t.prev = t.next = nullptr;
  --size_;
  if (t.attribute != TaskAttribute::kSimple) --barriers_;
  if (t.state == Task::State::kQueued) --queued_;
  t.state = Task::State::kOutside;
}

TaskSet::Admission TaskSet::enter(Task& task, Outcome* rejection) {
  if (task.attribute == TaskAttribute::kAca) {
    // SAM-5 8.9: a command with the ACA attribute while no ACA condition
    // exists: ILLEGAL REQUEST / INVALID MESSAGE ERROR. None ever exists here:
    // ACA is not offered (NormACA = 0, and NACA = 1 in a CONTROL byte is
    // refused by scsi/cdb). Offering it would freeze the whole task set of a
    // unit shared by every I_T nexus behind one initiator's CHECK CONDITION
    // until CLEAR ACA; Linux, Windows and VMware initiators never ask for it.
    if (rejection != nullptr) *rejection = Outcome::check(scsi::kIllegalRequestInvalidMessage);
    return Admission::kRejected;
  }
  task.disposition = TaskDisposition::kDeliver;
  std::lock_guard lock(mutex_);
  bool run;
  switch (task.attribute) {
    case TaskAttribute::kHeadOfQueue:
      run = true;
      break;
    case TaskAttribute::kOrdered:
      run = size_ == 0;
      break;
    default:
      run = barriers_ == 0;
      break;
  }
  link_locked(task);
  if (run) {
    task.state = Task::State::kRunning;
    return Admission::kRun;
  }
  task.state = Task::State::kQueued;
  ++queued_;
  return Admission::kQueued;
}

void TaskSet::collect_startable_locked(std::vector<Task*>& out) {
  if (queued_ == 0) return;
  // Walk in arrival order: a queued task starts if nothing older blocks it.
  // Nothing after an ORDERED task can start, so the walk stops there.
  bool older_exists = false;
  bool older_barrier = false;
  for (Task* t = head_; t != nullptr; t = t->next) {
    if (t->state == Task::State::kQueued) {
      bool ok = t->attribute == TaskAttribute::kOrdered ? !older_exists : !older_barrier;
      if (ok) {
        t->state = Task::State::kRunning;
        --queued_;
        out.push_back(t);
      }
    }
    older_exists = true;
    if (t->attribute != TaskAttribute::kSimple) older_barrier = true;
    if (t->attribute == TaskAttribute::kOrdered) break;
  }
}

void TaskSet::run_hooks(std::vector<Task*>& start,
                        std::vector<std::pair<Task*, TaskDisposition>>& dropped) {
  for (auto& [t, d] : dropped) {
    if (hooks_.aborted) hooks_.aborted(*t, d);
  }
  for (Task* t : start) {
    if (hooks_.start) hooks_.start(*t);
  }
}

TaskDisposition TaskSet::finish(Task& task) {
  std::vector<Task*> start;
  std::vector<std::pair<Task*, TaskDisposition>> none;
  TaskDisposition d;
  {
    std::lock_guard lock(mutex_);
    d = task.disposition;
    if (task.state == Task::State::kOutside) return d;
    unlink_locked(task);
    if (d != TaskDisposition::kDeliver && --aborted_running_ == 0) aborted_done_.notify_all();
    collect_startable_locked(start);
  }
  run_hooks(start, none);
  return d;
}

template <typename Pred>
size_t TaskSet::abort_locked(Pred pred, uint64_t issuer, bool tas,
                             std::vector<std::pair<Task*, TaskDisposition>>& dropped,
                             std::vector<uint64_t>* cleared_nexuses) {
  size_t n = 0;
  for (Task* t = head_; t != nullptr;) {
    Task* next = t->next;
    if (pred(*t) && t->disposition == TaskDisposition::kDeliver) {
      ++n;
      // SAM-5 7.1 / SPC-4 7.5.8 (TAS): tasks of the nexus that asked end
      // silently; other nexuses' tasks end TASK ABORTED if TAS is set.
      TaskDisposition d =
          (t->nexus != issuer && tas) ? TaskDisposition::kTaskAborted : TaskDisposition::kDiscard;
      if (t->nexus != issuer && cleared_nexuses != nullptr) {
        bool seen = false;
        for (uint64_t x : *cleared_nexuses) seen |= x == t->nexus;
        if (!seen) cleared_nexuses->push_back(t->nexus);
      }
      if (t->state == Task::State::kQueued) {
        unlink_locked(*t);
        dropped.emplace_back(t, d);
      } else {
        t->disposition = d;
        ++aborted_running_;
      }
    }
    t = next;
  }
  return n;
}

size_t TaskSet::abort_task(uint64_t issuer, uint16_t queue, uint32_t tag) {
  std::vector<Task*> start;
  std::vector<std::pair<Task*, TaskDisposition>> dropped;
  size_t n;
  {
    std::lock_guard lock(mutex_);
    n = abort_locked(
        [&](const Task& t) { return t.nexus == issuer && t.queue == queue && t.tag == tag; },
        issuer, false, dropped, nullptr);
    collect_startable_locked(start);
  }
  run_hooks(start, dropped);
  return n;
}

size_t TaskSet::abort_task_set(uint64_t issuer) {
  std::vector<Task*> start;
  std::vector<std::pair<Task*, TaskDisposition>> dropped;
  size_t n;
  {
    std::lock_guard lock(mutex_);
    n = abort_locked([&](const Task& t) { return t.nexus == issuer; }, issuer, false, dropped,
                     nullptr);
    collect_startable_locked(start);
  }
  run_hooks(start, dropped);
  return n;
}

size_t TaskSet::clear_task_set(uint64_t issuer, bool tas, std::vector<uint64_t>* cleared_nexuses) {
  std::vector<Task*> start;
  std::vector<std::pair<Task*, TaskDisposition>> dropped;
  size_t n;
  {
    std::lock_guard lock(mutex_);
    n = abort_locked([](const Task&) { return true; }, issuer, tas, dropped, cleared_nexuses);
    collect_startable_locked(start);
  }
  run_hooks(start, dropped);
  return n;
}

size_t TaskSet::abort_nexuses(std::span<const uint64_t> nexuses, bool tas, const Task* except,
                              std::vector<uint64_t>* cleared_nexuses) {
  std::vector<Task*> start;
  std::vector<std::pair<Task*, TaskDisposition>> dropped;
  size_t n;
  {
    std::lock_guard lock(mutex_);
    // The issuer of PREEMPT AND ABORT is `except`'s nexus; its own other
    // tasks end silently, the preempted nexuses' ones per TAS.
    uint64_t issuer = except != nullptr ? except->nexus : ~uint64_t{0};
    n = abort_locked(
        [&](const Task& t) {
          if (&t == except) return false;
          for (uint64_t x : nexuses) {
            if (x == t.nexus) return true;
          }
          return false;
        },
        issuer, tas, dropped, tas ? nullptr : cleared_nexuses);
    collect_startable_locked(start);
  }
  run_hooks(start, dropped);
  return n;
}

bool TaskSet::aborted(const Task& task) const {
  std::lock_guard lock(mutex_);
  return task.state != Task::State::kOutside && task.disposition != TaskDisposition::kDeliver;
}

bool TaskSet::contains(uint64_t nexus, uint16_t queue, uint32_t tag) const {
  std::lock_guard lock(mutex_);
  for (const Task* t = head_; t != nullptr; t = t->next) {
    if (t->nexus == nexus && t->queue == queue && t->tag == tag) return true;
  }
  return false;
}

bool TaskSet::has_tasks(uint64_t nexus) const {
  std::lock_guard lock(mutex_);
  for (const Task* t = head_; t != nullptr; t = t->next) {
    if (t->nexus == nexus) return true;
  }
  return false;
}

size_t TaskSet::size() const {
  std::lock_guard lock(mutex_);
  return size_;
}

size_t TaskSet::queued() const {
  std::lock_guard lock(mutex_);
  return queued_;
}

bool TaskSet::wait_aborted_done(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return aborted_done_.wait_for(lock, timeout, [&] { return aborted_running_ == 0; });
}

scstu_tmf_response apply_task_management(const LogicalUnitState& lu,
                                         const TaskManagementRequest& req, bool tas) {
  const uint64_t nexus = req.session != nullptr ? req.session->id : 0;
  switch (req.function) {
    case SCSTU_TMF_ABORT_TASK:
      lu.tasks.abort_task(nexus, req.ref_queue, req.ref_tag);
      return SCSTU_TMF_COMPLETE;
    case SCSTU_TMF_ABORT_TASK_SET:
      lu.tasks.abort_task_set(nexus);
      return SCSTU_TMF_COMPLETE;
    case SCSTU_TMF_CLEAR_TASK_SET: {
      std::vector<uint64_t> cleared;
      lu.tasks.clear_task_set(nexus, tas, &cleared);
      // SAM-5 7.3: with TAS = 0 the other nexuses learn of it by a unit attention.
      if (!tas) {
        for (uint64_t other : cleared) {
          lu.unit_attentions.raise(other, UnitAttention::kCommandsClearedByAnotherInitiator);
        }
      }
      return SCSTU_TMF_COMPLETE;
    }
    case SCSTU_TMF_LUN_RESET:
    case SCSTU_TMF_TARGET_RESET:
      // SAM-5 7.7 / 6.3.3: abort all tasks, clear SPC-2 reservations (SPC-2
      // 5.5.1; persistent ones survive), BUS DEVICE RESET FUNCTION OCCURRED
      // for every nexus. The reset UA also supersedes COMMANDS CLEARED.
      lu.tasks.clear_task_set(nexus, tas, nullptr);
      lu.reservations.clear();
      lu.unit_attentions.raise_all(UnitAttention::kBusDeviceResetFunction);
      return SCSTU_TMF_COMPLETE;
    case SCSTU_TMF_I_T_NEXUS_LOSS:
      // SAM-5 6.3.4: the nexus's tasks are aborted, its SPC-2 reservation released.
      lu.tasks.abort_task_set(nexus);
      lu.reservations.nexus_lost(nexus);
      return SCSTU_TMF_COMPLETE;
    case SCSTU_TMF_QUERY_TASK:
      return lu.tasks.contains(nexus, req.ref_queue, req.ref_tag) ? SCSTU_TMF_SUCCEEDED
                                                                  : SCSTU_TMF_COMPLETE;
    case SCSTU_TMF_QUERY_TASK_SET:
      return lu.tasks.has_tasks(nexus) ? SCSTU_TMF_SUCCEEDED : SCSTU_TMF_COMPLETE;
    case SCSTU_TMF_QUERY_ASYNC_EVENT:
      // SAM-5 7.10: succeeded if a unit attention is pending for the nexus.
      return lu.unit_attentions.pending(nexus) ? SCSTU_TMF_SUCCEEDED : SCSTU_TMF_COMPLETE;
    case SCSTU_TMF_CLEAR_ACA:
      return SCSTU_TMF_COMPLETE;
  }
  return SCSTU_TMF_NOT_SUPPORTED;
}

}  // namespace scstu::core
