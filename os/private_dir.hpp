#pragma once
// Directories only this user may write, for caches and state on machines shared with others
// (docs/real-backend.md, "Caches and file modes on shared nodes"): another user who could plant
// a link or a file in a cache could make a worker (perhaps root) write anywhere, or read
// another's model.

#include <filesystem>
#include <string>

namespace hearth::os {

// A new directory `prefix`XXXXXX (mode 0700) in $TMPDIR, or /tmp. Throws InputError on failure.
std::filesystem::path make_private_temp_dir(const std::string& prefix);

// `dir` made ready for private use: created with mode 0700 if missing (its parents as needed);
// if it exists, it must be a directory itself (not a link to one), owned by this process's
// effective user and writable by nobody else. Throws InputError saying which and why.
void require_private_dir(const std::filesystem::path& dir);

// Sets `path` to mode 0700 (a directory) or 0600 (a file) if it allows more; returns whether it
// changed anything. Throws InputError if it cannot.
bool tighten_mode(const std::filesystem::path& path);

}  // namespace hearth::os
