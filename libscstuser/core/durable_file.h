// durable_file.h - state files that survive a crash of the process or the
// machine: the APTPL state of persistent reservations, saved mode pages, a
// sanitize operation's state. A crash leaves the old or the new content,
// never a mix, and a replaced or removed file stays so after power loss.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace scstu::core {

// Writes `text` to "<path>.tmp", fsyncs it, renames it over `path` and fsyncs
// the directory. Returns "" or an error naming the file, the step and the
// cause ("<path>.tmp: open: No such file or directory").
std::string replace_file_durably(const std::string& path, std::string_view text,
                                 mode_t mode = 0600);

// Unlinks `path` (absent is fine) and fsyncs the directory. Returns "" or an
// error naming the file and the cause.
std::string remove_file_durably(const std::string& path);

}  // namespace scstu::core
