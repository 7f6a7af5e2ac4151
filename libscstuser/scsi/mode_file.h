// mode_file.h - saved mode pages (MODE SELECT with SP = 1) in a file, so
// they survive a restart of the handler: written atomically (temp file,
// fsync, rename), read when the LogicalUnit starts.
#pragma once

#include <string>

namespace scstu::scsi {

class ModePages;

// "" on success, else an error naming the file and the cause.
std::string save_mode_file(const ModePages& pages, const std::string& path);
// A missing file is not an error (nothing saved yet).
std::string load_mode_file(ModePages& pages, const std::string& path);

}  // namespace scstu::scsi
