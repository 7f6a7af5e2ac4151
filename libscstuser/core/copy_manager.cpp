#include "core/copy_manager.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>

#include "core/copy_job.h"
#include "core/exported_device.h"
#include "core/iovec_copy.h"
#include "core/lun.h"
#include "core/session.h"
#include "scsi/cdb.h"
#include "scsi/sense.h"

namespace scstu::core {

namespace {

void complete_check(TargetCommand& cmd, scsi::SenseCode code,
                    std::optional<scsi::FieldPointer> field = std::nullopt) {
  scsi::SenseBuilder b(scsi::SenseFormat::kFixed, code);
  if (field) b.field_pointer(*field);
  const scsi::SenseData s = b.build();
  complete_command(cmd, status::kCheckCondition, s.span(), 0);
}

void complete_data(TargetCommand& cmd, const std::vector<uint8_t>& data) {
  const size_t n = std::min<size_t>(data.size(), cmd.data_length);
  complete_command(cmd, status::kGood, {},
                   static_cast<uint32_t>(scatter(cmd.buffer, {data.data(), n})));
}

}  // namespace

CopyManager::CopyManager(TargetCore& core, CopyManagerOptions options)
    : core_(core), options_(options) {}

CopyManager::~CopyManager() {
  for (;;) {
    std::unique_lock lock(mutex_);
    for (CopyJob* j : jobs_) j->abort();
    if (idle_.wait_for(lock, std::chrono::milliseconds(100), [&] { return jobs_.empty(); })) {
      return;
    }
  }
}

bool CopyManager::take_extra_chunk() {
  int n = extra_chunks_.load(std::memory_order_acquire);
  while (n > 0) {
    if (extra_chunks_.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

size_t CopyManager::running() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

void CopyManager::submit(TargetCommand& cmd) {
  if (cmd.cdb[0] == 0x83) return extended_copy(cmd);
  receive_copy_results(cmd);
}

// SPC-4 6.4.1 EXTENDED COPY (LID1).
void CopyManager::extended_copy(TargetCommand& cmd) {
  const uint32_t length = scsi::get_be32(&cmd.cdb[10]);
  if (length == 0) return complete_command(cmd, status::kGood, {}, 0);  // 6.4.1: not an error
  if (cmd.data_length < length) return complete_check(cmd, scsi::kParameterListLengthError);
  auto parsed = scsi::parse_copy_parameter_list(gather(cmd.buffer, length));
  if (auto* e = std::get_if<scsi::CopyListError>(&parsed)) {
    return complete_check(cmd, e->code, e->has_field ? std::optional(e->field) : std::nullopt);
  }
  scsi::CopyParameterList& list = std::get<scsi::CopyParameterList>(parsed);
  std::optional<CopyResultRecords::Key> key;
  if (list.list_id_usage == 0x00) key = CopyResultRecords::Key{cmd.session->id(), list.list_id};
  CopyJob* job = nullptr;
  std::optional<scsi::SenseCode> refused;  // answered outside the lock
  {
    std::lock_guard lock(mutex_);
    if (jobs_.size() >= scsi::kMaxConcurrentCopies) refused = scsi::kInsufficientResources;
    // LIST ID USAGE 00b: results are held for RECEIVE COPY RESULTS; the list
    // identifier must not be in use by a copy still running (6.4.3.2).
    if (!refused && key) refused = records_.begin(*key);
    if (!refused) {
      job = new CopyJob(*this, cmd, std::move(list), key);
      jobs_.push_back(job);
    }
  }
  if (refused) return complete_check(cmd, *refused);
  job->start();
}

void CopyManager::retire(CopyJob* job) {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mutex_);
    std::erase(jobs_, job);
    waiters = std::move(job->waiters);
  }
  for (auto& w : waiters) w();
  std::lock_guard lock(mutex_);
  if (jobs_.empty()) idle_.notify_all();
}

// SPC-4 6.18: service action in byte 1; LIST IDENTIFIER byte 2; ALLOCATION
// LENGTH bytes 10-13 (the decoded data_length: the data-in is cut to it).
void CopyManager::receive_copy_results(TargetCommand& cmd) {
  const uint8_t action = cmd.cdb[1] & 0x1F;
  if (action == 0x03) {
    return complete_data(cmd, scsi::copy_operating_parameters_data(
                                  cmd.route->exported()->device().info().block_size));
  }
  const std::optional<scsi::CopyResult> r = records_.find({cmd.session->id(), cmd.cdb[2]});
  if (!r) {
    return complete_check(cmd, scsi::kInvalidFieldInCdb, scsi::FieldPointer{true, 2, scsi::kNoBit});
  }
  complete_data(
      cmd, action == 0x00 ? scsi::copy_status_data(*r) : scsi::failed_segment_details_data(*r));
}

// ---- task management -----------------------------------------------------------

namespace {

// A TMF's answer joined with the end of the copies it aborted: the
// transport's done runs once, after all of them.
struct TmfJoin {
  std::function<void(scstu_tmf_response)> done;
  std::atomic<size_t> remaining{0};
  std::atomic<uint8_t> response{SCSTU_TMF_COMPLETE};
  void arrive() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 && done) {
      done(static_cast<scstu_tmf_response>(response.load()));
    }
  }
};

}  // namespace

void CopyManager::task_management(TargetTmf& tmf) {
  std::unique_lock lock(mutex_);
  auto it = std::find_if(jobs_.begin(), jobs_.end(),
                         [&](CopyJob* j) { return &j->command() == tmf.ref; });
  if (it == jobs_.end()) {  // finished already (or a RECEIVE COPY RESULTS)
    lock.unlock();
    if (tmf.done) tmf.done(SCSTU_TMF_COMPLETE);
    return;
  }
  if (tmf.function == SCSTU_TMF_QUERY_TASK) {
    lock.unlock();
    if (tmf.done) tmf.done(SCSTU_TMF_SUCCEEDED);
    return;
  }
  (*it)->abort();
  (*it)->waiters.push_back([done = tmf.done] {
    if (done) done(SCSTU_TMF_COMPLETE);
  });
}

void CopyManager::abort_reached(TargetTmf& tmf, const ExportedDevice* device) {
  Session* session = tmf.session;
  const bool all_sessions =
      tmf.function != SCSTU_TMF_ABORT_TASK_SET && tmf.function != SCSTU_TMF_QUERY_TASK_SET &&
      tmf.function != SCSTU_TMF_QUERY_ASYNC_EVENT && tmf.function != SCSTU_TMF_CLEAR_ACA;
  const bool aborts = tmf.function == SCSTU_TMF_ABORT_TASK_SET ||
                      tmf.function == SCSTU_TMF_CLEAR_TASK_SET ||
                      tmf.function == SCSTU_TMF_LUN_RESET || tmf.function == SCSTU_TMF_TARGET_RESET;
  if (!aborts || session == nullptr) return;
  std::lock_guard lock(mutex_);
  std::vector<CopyJob*> reached;
  for (CopyJob* j : jobs_) {
    if (!all_sessions && j->session() != session) continue;
    if (device != nullptr && j->device() != device) continue;
    if (device == nullptr && j->session()->target_name() != session->target_name()) continue;
    reached.push_back(j);
  }
  if (reached.empty()) return;
  auto join = std::make_shared<TmfJoin>();
  join->done = std::move(tmf.done);
  join->remaining = reached.size() + 1;
  tmf.done = [join](scstu_tmf_response r) {
    join->response.store(r);
    join->arrive();
  };
  for (CopyJob* j : reached) {
    j->abort();
    j->waiters.push_back([join] { join->arrive(); });
  }
}

}  // namespace scstu::core
