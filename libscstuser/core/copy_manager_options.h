// copy_manager_options.h - how the copy manager (core/copy_manager.h) treats
// a copy target that answers BUSY or TASK SET FULL. SAM-5 5.3: both mean
// "not now" (a queue-depth limit of the device or of the initiator's
// session, core/flow_control.h), so the READ or WRITE is sent again after a
// pause that doubles from busy_first_delay up to busy_max_delay; once the
// chunk has been refused for busy_retry_limit in a row, the copy ends as for
// any other error of a copy target (COPY ABORTED, the status at the sense
// data offset). An abort of the copy (TMF) ends the waiting at once; so does
// the failure of an earlier chunk for the commands of later ones.
#pragma once

#include <chrono>

namespace scstu::core {

struct CopyManagerOptions {
  std::chrono::milliseconds busy_first_delay{1};
  std::chrono::milliseconds busy_max_delay{100};
  std::chrono::milliseconds busy_retry_limit{10000};
};

}  // namespace scstu::core
