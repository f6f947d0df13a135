#pragma once
// `hearth state check|repair STATE`: what of a damaged results database (a disk that failed, a
// file cut short) is intact, and a fresh database holding every result that can still be read,
// so that the run resumes from there and redoes only what was lost.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hearth::real {

struct StateCheck {
  bool intact = false;
  std::vector<std::string> problems;  // what SQLite's integrity check or a read reported
  std::uint64_t results = 0;          // rows with a result that could be read
  std::uint64_t errors = 0;           // rows given up or discarded that could be read
  bool job_known = false;             // the job's fingerprint is readable (needed to resume)
};

// Reads `db` (STATE/results.db) without changing it. Throws InputError if it is missing.
StateCheck check_state(const std::filesystem::path& db);

struct StateRepair {
  std::uint64_t kept = 0;          // results copied into the new database
  std::filesystem::path old_copy;  // where the damaged database went
};

// Copies every readable result, the job's fingerprint and the runs of `db` into a new database
// that takes its place; the old one is kept beside it as results.db.damaged-UNIXTIME. Throws
// InputError if the job's fingerprint cannot be read (then nothing can be resumed).
StateRepair repair_state(const std::filesystem::path& db);

}  // namespace hearth::real
