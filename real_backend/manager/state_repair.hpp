#pragma once
// `hearth state check|repair STATE`: what of a damaged results database (a disk that failed, a
// file cut short) is intact, and a fresh database holding every result that can still be read,
// so that the run resumes from there and redoes only what was lost.
//
// Rows are read in key order; past a damaged page the reader seeks the first readable key after
// it (doubling the step, then halving it, then reading back from there for the key an interior
// page holds), so that a damaged leaf page costs only the rows on it.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hearth::real {

// What `hearth state check` finds in a state database (STATE/results.db).
struct StateCheck {
  std::string integrity = "ok";  // "ok", or SQLite's integrity_check messages, one a line
  std::string job;               // the job's fingerprint; empty if unreadable
  std::string open_error;        // nonempty: the database cannot be read at all (why)
  struct Run {
    int run = 0;
    std::string started;           // as recorded, "?" where the runs table lost it
    std::uint64_t results = 0;     // rows with a result, as read now
    std::uint64_t given_up = 0;    // rows given up or discarded (an "error")
    std::uint64_t inferences = 0;  // as the runs table recorded them (-1: unreadable)
  };
  std::vector<Run> runs;
  std::uint64_t rows_read = 0;  // readable rows, results and errors
  // Each stretch of rows that cannot be read: "context C from row R to row S: what SQLite said".
  std::vector<std::string> unreadable;
  // Whether the database is whole: integrity ok and every row readable (the output can be
  // written from it once every row is done).
  bool ok() const { return open_error.empty() && integrity == "ok" && unreadable.empty(); }
};
StateCheck check_state(const std::filesystem::path& db);

// What repair_state() did.
struct StateRepair {
  std::filesystem::path kept_as;  // the damaged database, renamed (with its -wal and -shm)
  std::uint64_t rows_kept = 0;    // results and errors copied into the new database
  std::uint64_t runs_kept = 0;
  std::vector<std::string> unreadable;  // as StateCheck::unreadable
};
// Copies every readable result of `db`, its job and its runs into a fresh database, renames the
// old one to DB.corrupt-YYYYmmddTHHMMSSZ (with its -wal and -shm) and puts the new one in its
// place: a run of the job then resumes from the results kept (rows given up are not kept: a run
// tries them again anyway). Throws StateDamaged if not even the job it belongs to can be read,
// InputError if there is no database.
StateRepair repair_state(const std::filesystem::path& db);

// "N recorded rows can still be read[, M stretches of rows cannot]", or why `db` cannot be read:
// what a damaged database's message says is salvageable.
std::string readable_summary(const std::filesystem::path& db);

}  // namespace hearth::real
