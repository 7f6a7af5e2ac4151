#include "core/task_set.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace scstu::core {
namespace {

using Task = TaskSet::Task;

struct Recorder {
  std::mutex mutex;
  std::vector<uint32_t> started;  // tags, in the order the hooks started them
  std::vector<std::pair<uint32_t, TaskDisposition>> aborted;
  TaskSet::Hooks hooks() {
    return {[this](Task& t) {
              std::lock_guard l(mutex);
              started.push_back(t.tag);
            },
            [this](Task& t, TaskDisposition d) {
              std::lock_guard l(mutex);
              aborted.emplace_back(t.tag, d);
            }};
  }
};

Task make(uint64_t nexus, uint32_t tag, TaskAttribute attr = TaskAttribute::kSimple) {
  Task t;
  t.nexus = nexus;
  t.tag = tag;
  t.attribute = attr;
  return t;
}

TEST(TaskSet, SimpleTasksRunTogether) {
  Recorder rec;
  TaskSet ts(rec.hooks());
  Task a = make(1, 1), b = make(1, 2), c = make(2, 3);
  EXPECT_EQ(ts.enter(a), TaskSet::Admission::kRun);
  EXPECT_EQ(ts.enter(b), TaskSet::Admission::kRun);
  EXPECT_EQ(ts.enter(c), TaskSet::Admission::kRun);
  EXPECT_EQ(ts.size(), 3u);
  EXPECT_EQ(ts.finish(b), TaskDisposition::kDeliver);
  EXPECT_EQ(ts.finish(a), TaskDisposition::kDeliver);
  EXPECT_EQ(ts.finish(c), TaskDisposition::kDeliver);
  EXPECT_EQ(ts.size(), 0u);
  EXPECT_TRUE(rec.started.empty());
}

TEST(TaskSet, OrderedWaitsForOlderAndBlocksNewer) {
  Recorder rec;
  TaskSet ts(rec.hooks());
  Task s1 = make(1, 1), s2 = make(2, 2), o = make(1, 3, TaskAttribute::kOrdered), s3 = make(2, 4),
       s4 = make(1, 5);
  ASSERT_EQ(ts.enter(s1), TaskSet::Admission::kRun);
  ASSERT_EQ(ts.enter(s2), TaskSet::Admission::kRun);
  EXPECT_EQ(ts.enter(o), TaskSet::Admission::kQueued);
  EXPECT_EQ(ts.enter(s3), TaskSet::Admission::kQueued);
  EXPECT_EQ(ts.enter(s4), TaskSet::Admission::kQueued);
  EXPECT_EQ(ts.queued(), 3u);
  ts.finish(s2);
  EXPECT_TRUE(rec.started.empty());
  ts.finish(s1);
  EXPECT_EQ(rec.started, std::vector<uint32_t>{3});  // the ORDERED task alone
  ts.finish(o);
  EXPECT_EQ(rec.started, (std::vector<uint32_t>{3, 4, 5}));
  ts.finish(s3);
  ts.finish(s4);
  EXPECT_EQ(ts.size(), 0u);
}

TEST(TaskSet, OrderedAfterOrdered) {
  Recorder rec;
  TaskSet ts(rec.hooks());
  Task o1 = make(1, 1, TaskAttribute::kOrdered), o2 = make(1, 2, TaskAttribute::kOrdered),
       s = make(1, 3);
  EXPECT_EQ(ts.enter(o1), TaskSet::Admission::kRun);  // nothing older
  EXPECT_EQ(ts.enter(o2), TaskSet::Admission::kQueued);
  EXPECT_EQ(ts.enter(s), TaskSet::Admission::kQueued);
  ts.finish(o1);
  EXPECT_EQ(rec.started, std::vector<uint32_t>{2});
  ts.finish(o2);
  EXPECT_EQ(rec.started, (std::vector<uint32_t>{2, 3}));
  ts.finish(s);
}

TEST(TaskSet, HeadOfQueueRunsAtOnceAndHoldsBackNewerSimple) {
  Recorder rec;
  TaskSet ts(rec.hooks());
  Task s1 = make(1, 1), o = make(1, 2, TaskAttribute::kOrdered),
       h = make(2, 3, TaskAttribute::kHeadOfQueue), s2 = make(2, 4);
  ASSERT_EQ(ts.enter(s1), TaskSet::Admission::kRun);
  ASSERT_EQ(ts.enter(o), TaskSet::Admission::kQueued);
  EXPECT_EQ(ts.enter(h), TaskSet::Admission::kRun);  // ahead of the waiting ORDERED
  EXPECT_EQ(ts.enter(s2), TaskSet::Admission::kQueued);
  ts.finish(h);
  EXPECT_TRUE(rec.started.empty());  // s2 still behind the ORDERED task
  ts.finish(s1);
  EXPECT_EQ(rec.started, std::vector<uint32_t>{2});
  ts.finish(o);
  EXPECT_EQ(rec.started, (std::vector<uint32_t>{2, 4}));
  ts.finish(s2);
}

TEST(TaskSet, AcaRejected) {
  TaskSet ts({});
  Task a = make(1, 1, TaskAttribute::kAca);
  Outcome why;
  EXPECT_EQ(ts.enter(a, &why), TaskSet::Admission::kRejected);
  EXPECT_EQ(why.status, status::kCheckCondition);
  EXPECT_EQ(why.sense.key, 0x05);
  EXPECT_EQ(ts.size(), 0u);
}

TEST(TaskSet, AbortTaskQueuedAndRunning) {
  Recorder rec;
  TaskSet ts(rec.hooks());
  Task s1 = make(1, 1), o = make(1, 2, TaskAttribute::kOrdered), s2 = make(2, 3);
  ts.enter(s1);
  ts.enter(o);
  ts.enter(s2);
  // Another nexus cannot abort nexus 1's task by tag.
  EXPECT_EQ(ts.abort_task(2, 0, 2), 0u);
  EXPECT_TRUE(ts.contains(1, 0, 2));
  EXPECT_EQ(ts.abort_task(1, 0, 2), 1u);  // queued: dropped at once
  ASSERT_EQ(rec.aborted.size(), 1u);
  EXPECT_EQ(rec.aborted[0], std::make_pair(2u, TaskDisposition::kDiscard));
  // s2 was waiting only for the ORDERED task, which is gone.
  EXPECT_EQ(rec.started, std::vector<uint32_t>{3});
  EXPECT_FALSE(ts.contains(1, 0, 2));
  EXPECT_EQ(ts.abort_task(1, 0, 1), 1u);  // running: marked
  EXPECT_TRUE(ts.contains(1, 0, 1));      // until its handler finishes it
  EXPECT_FALSE(ts.wait_aborted_done(std::chrono::milliseconds(0)));
  EXPECT_EQ(ts.finish(s1), TaskDisposition::kDiscard);
  EXPECT_TRUE(ts.wait_aborted_done(std::chrono::milliseconds(0)));
  EXPECT_EQ(ts.finish(s2), TaskDisposition::kDeliver);
  // Aborting an unknown task is not an error (SAM-5 7.2).
  EXPECT_EQ(ts.abort_task(1, 0, 99), 0u);
}

TEST(TaskSet, AbortTaskSetOnlyThatNexus) {
  TaskSet ts({});
  Task a = make(1, 1), b = make(2, 2);
  ts.enter(a);
  ts.enter(b);
  EXPECT_EQ(ts.abort_task_set(1), 1u);
  EXPECT_TRUE(ts.has_tasks(1));  // running until finished
  EXPECT_EQ(ts.finish(a), TaskDisposition::kDiscard);
  EXPECT_FALSE(ts.has_tasks(1));
  EXPECT_EQ(ts.finish(b), TaskDisposition::kDeliver);
}

TEST(TaskSet, ClearTaskSetHonoursTas) {
  for (bool tas : {false, true}) {
    Recorder rec;
    TaskSet ts(rec.hooks());
    Task mine = make(1, 1), other = make(2, 2), o = make(3, 3, TaskAttribute::kOrdered);
    ts.enter(mine);
    ts.enter(other);
    ts.enter(o);
    std::vector<uint64_t> cleared;
    EXPECT_EQ(ts.clear_task_set(1, tas, &cleared), 3u);
    std::sort(cleared.begin(), cleared.end());
    EXPECT_EQ(cleared, (std::vector<uint64_t>{2, 3}));
    TaskDisposition other_d = tas ? TaskDisposition::kTaskAborted : TaskDisposition::kDiscard;
    ASSERT_EQ(rec.aborted.size(), 1u);
    EXPECT_EQ(rec.aborted[0], std::make_pair(3u, other_d));
    EXPECT_EQ(ts.finish(mine), TaskDisposition::kDiscard);
    EXPECT_EQ(ts.finish(other), other_d);
    EXPECT_EQ(ts.size(), 0u);
  }
}

TEST(TaskSet, AbortNexusesSparesThePreemptingCommand) {
  TaskSet ts({});
  Task prout = make(1, 1), mine = make(1, 2), victim = make(2, 3), bystander = make(3, 4);
  for (Task* t : {&prout, &mine, &victim, &bystander}) ts.enter(*t);
  std::vector<uint64_t> nexuses = {2, 1};
  std::vector<uint64_t> cleared;
  EXPECT_EQ(ts.abort_nexuses(nexuses, true, &prout, &cleared), 2u);
  // TAS = 1: the victim learns by TASK ABORTED, not by a unit attention.
  EXPECT_TRUE(cleared.empty());
  EXPECT_EQ(ts.finish(prout), TaskDisposition::kDeliver);
  EXPECT_EQ(ts.finish(mine), TaskDisposition::kDiscard);
  EXPECT_EQ(ts.finish(victim), TaskDisposition::kTaskAborted);
  EXPECT_EQ(ts.finish(bystander), TaskDisposition::kDeliver);
}

// SAM-5 5.6: with TAS = 0 the preempted nexus's tasks end silently and the
// nexus is owed COMMANDS CLEARED BY ANOTHER INITIATOR.
TEST(TaskSet, AbortNexusesWithoutTasReportsTheClearedNexuses) {
  TaskSet ts({});
  Task prout = make(1, 1), victim = make(2, 3), bystander = make(3, 4);
  for (Task* t : {&prout, &victim, &bystander}) ts.enter(*t);
  std::vector<uint64_t> nexuses = {2};
  std::vector<uint64_t> cleared;
  EXPECT_EQ(ts.abort_nexuses(nexuses, false, &prout, &cleared), 1u);
  EXPECT_EQ(cleared, std::vector<uint64_t>{2});
  EXPECT_EQ(ts.finish(prout), TaskDisposition::kDeliver);
  EXPECT_EQ(ts.finish(victim), TaskDisposition::kDiscard);
  EXPECT_EQ(ts.finish(bystander), TaskDisposition::kDeliver);
}

TEST(TaskManagement, LunResetClearsTasksReservationsAndRaisesUa) {
  TaskSet ts({});
  UnitAttentions ua;
  Reservations resv;
  LogicalUnitState lu{ts, ua, resv};
  for (uint64_t n : {1, 2}) {
    ua.attach(n);
    ua.take(n);
  }
  const uint8_t reserve6[6] = {0x16};
  ASSERT_TRUE(resv.reserve(2, reserve6).ok());
  Task t = make(2, 7);
  ts.enter(t);
  SessionInfo s1;
  s1.id = 1;
  TaskManagementRequest req;
  req.function = SCSTU_TMF_LUN_RESET;
  req.session = &s1;
  EXPECT_EQ(apply_task_management(lu, req, false), SCSTU_TMF_COMPLETE);
  EXPECT_FALSE(resv.reserved());
  EXPECT_EQ(ts.finish(t), TaskDisposition::kDiscard);
  EXPECT_EQ(ua.take(1), UnitAttention::kBusDeviceResetFunction);
  EXPECT_EQ(ua.take(2), UnitAttention::kBusDeviceResetFunction);
}

TEST(TaskManagement, ClearTaskSetTellsOthersWhenTasIsOff) {
  TaskSet ts({});
  UnitAttentions ua;
  Reservations resv;
  LogicalUnitState lu{ts, ua, resv};
  for (uint64_t n : {1, 2, 3}) {
    ua.attach(n);
    ua.take(n);
  }
  Task t2 = make(2, 1);
  ts.enter(t2);
  SessionInfo s1;
  s1.id = 1;
  TaskManagementRequest req{SCSTU_TMF_CLEAR_TASK_SET, 0, &s1, 0, 0};
  EXPECT_EQ(apply_task_management(lu, req, false), SCSTU_TMF_COMPLETE);
  EXPECT_EQ(ua.take(2), UnitAttention::kCommandsClearedByAnotherInitiator);
  EXPECT_FALSE(ua.pending(1));
  EXPECT_FALSE(ua.pending(3));  // had no tasks
  ts.finish(t2);
  Task t3 = make(2, 2);
  ts.enter(t3);
  EXPECT_EQ(apply_task_management(lu, req, true), SCSTU_TMF_COMPLETE);
  EXPECT_FALSE(ua.pending(2));  // TAS: told by TASK ABORTED status instead
  EXPECT_EQ(ts.finish(t3), TaskDisposition::kTaskAborted);
}

TEST(TaskManagement, QueriesAndNexusLoss) {
  TaskSet ts({});
  UnitAttentions ua;
  Reservations resv;
  LogicalUnitState lu{ts, ua, resv};
  ua.attach(1);
  SessionInfo s1;
  s1.id = 1;
  Task t = make(1, 5);
  t.queue = 2;
  ts.enter(t);
  TaskManagementRequest q{SCSTU_TMF_QUERY_TASK, 0, &s1, 2, 5};
  EXPECT_EQ(apply_task_management(lu, q, false), SCSTU_TMF_SUCCEEDED);
  q.ref_tag = 6;
  EXPECT_EQ(apply_task_management(lu, q, false), SCSTU_TMF_COMPLETE);
  q.function = SCSTU_TMF_QUERY_TASK_SET;
  EXPECT_EQ(apply_task_management(lu, q, false), SCSTU_TMF_SUCCEEDED);
  q.function = SCSTU_TMF_QUERY_ASYNC_EVENT;
  EXPECT_EQ(apply_task_management(lu, q, false), SCSTU_TMF_SUCCEEDED);  // power on pending
  ua.take(1);
  EXPECT_EQ(apply_task_management(lu, q, false), SCSTU_TMF_COMPLETE);
  q.function = SCSTU_TMF_CLEAR_ACA;
  EXPECT_EQ(apply_task_management(lu, q, false), SCSTU_TMF_COMPLETE);

  const uint8_t reserve6[6] = {0x16};
  ASSERT_TRUE(resv.reserve(1, reserve6).ok());
  q.function = SCSTU_TMF_I_T_NEXUS_LOSS;
  EXPECT_EQ(apply_task_management(lu, q, false), SCSTU_TMF_COMPLETE);
  EXPECT_FALSE(resv.reserved());
  EXPECT_EQ(ts.finish(t), TaskDisposition::kDiscard);
  q.function = SCSTU_TMF_ABORT_TASK;
  q.ref_tag = 5;
  EXPECT_EQ(apply_task_management(lu, q, false), SCSTU_TMF_COMPLETE);  // gone: still complete
}

// Many threads submit SIMPLE/ORDERED/HEAD OF QUEUE tasks and finish them on
// worker threads while other threads abort at random. Every task must end
// exactly once (finished, or dropped by the aborted hook), ORDERED tasks must
// never overlap another SIMPLE or ORDERED task, and the set must end empty.
TEST(TaskSet, AbortRacesWithManyThreads) {
  constexpr int kSubmitters = 4;
  constexpr int kPerSubmitter = 3000;
  struct Slot {
    Task task;
    std::atomic<int> ended{0};
  };
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < kSubmitters * kPerSubmitter; ++i) slots.push_back(std::make_unique<Slot>());

  std::mutex work_mutex;
  std::deque<Task*> work;
  std::atomic<int> running{0};
  std::atomic<int> ordered_running{0};
  std::atomic<bool> overlap{false};
  std::atomic<int> ended{0};

  // HEAD OF QUEUE tasks may overlap anything (SAM-5 8.6.4): not counted.
  auto start = [&](Task& t) {
    int r = t.attribute == TaskAttribute::kHeadOfQueue ? 1 : ++running;
    if (t.attribute == TaskAttribute::kHeadOfQueue) {
    } else if (t.attribute == TaskAttribute::kOrdered) {
      if (r != 1) overlap = true;
      ++ordered_running;
    } else if (ordered_running.load() > 0) {
      overlap = true;
    }
    std::lock_guard l(work_mutex);
    work.push_back(&t);
  };
  TaskSet::Hooks hooks;
  hooks.start = start;
  hooks.aborted = [&](Task& t, TaskDisposition) {
    static_cast<Slot*>(t.context)->ended++;
    ended++;
  };
  TaskSet ts(hooks);

  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&] {
      while (true) {
        Task* t = nullptr;
        {
          std::lock_guard l(work_mutex);
          if (!work.empty()) {
            t = work.front();
            work.pop_front();
          }
        }
        if (t == nullptr) {
          if (stop.load() && ended.load() == kSubmitters * kPerSubmitter) return;
          std::this_thread::yield();
          continue;
        }
        if (t->attribute == TaskAttribute::kOrdered) --ordered_running;
        if (t->attribute != TaskAttribute::kHeadOfQueue) --running;
        ts.finish(*t);
        static_cast<Slot*>(t->context)->ended++;
        ended++;
      }
    });
  }
  std::vector<std::thread> aborters;
  for (int a = 0; a < 2; ++a) {
    aborters.emplace_back([&, a] {
      std::mt19937 rng(a);
      while (!stop.load()) {
        uint64_t nexus = rng() % kSubmitters;
        switch (rng() % 3) {
          case 0:
            ts.abort_task(nexus, 0, rng() % kPerSubmitter);
            break;
          case 1:
            ts.abort_task_set(nexus);
            break;
          default:
            ts.clear_task_set(nexus, rng() % 2, nullptr);
            break;
        }
        std::this_thread::yield();
      }
    });
  }
  std::vector<std::thread> submitters;
  for (int s = 0; s < kSubmitters; ++s) {
    submitters.emplace_back([&, s] {
      std::mt19937 rng(100 + s);
      for (int i = 0; i < kPerSubmitter; ++i) {
        Slot& slot = *slots[s * kPerSubmitter + i];
        slot.task.nexus = s;
        slot.task.tag = i;
        slot.task.context = &slot;
        unsigned r = rng() % 10;
        slot.task.attribute = r == 0   ? TaskAttribute::kOrdered
                              : r == 1 ? TaskAttribute::kHeadOfQueue
                                       : TaskAttribute::kSimple;
        if (ts.enter(slot.task) == TaskSet::Admission::kRun) start(slot.task);
      }
    });
  }
  for (auto& t : submitters) t.join();
  stop = true;
  for (auto& t : aborters) t.join();
  for (auto& t : workers) t.join();
  for (auto& s : slots) EXPECT_EQ(s->ended.load(), 1);
  EXPECT_FALSE(overlap.load());
  EXPECT_EQ(ts.size(), 0u);
  EXPECT_EQ(ts.queued(), 0u);
  EXPECT_TRUE(ts.wait_aborted_done(std::chrono::milliseconds(0)));
}

}  // namespace
}  // namespace scstu::core
