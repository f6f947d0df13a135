#pragma once
// The manager's record of finished work, in SQLite: one transaction per finished task, committed
// before the core hears that the task finished. A manager killed at any moment and started again
// finds every result it had acknowledged, and runs only the rest.
//
// Durability is against the manager process dying (WAL, synchronous=NORMAL); `durable` also
// survives the machine losing power (synchronous=FULL, an fsync per task).
//
// A write that finds no room (disk full, quota, file size limit) throws NoSpace naming the file,
// what it needed and what is free, the results recorded before it intact. A damaged database
// throws StateDamaged, pointing to `hearth state check` and `hearth state repair`
// (state_repair.hpp).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/errors.hpp"
#include "real_backend/manager/dataset.hpp"

struct sqlite3;

namespace hearth::real {

namespace sqlite {
class SqliteError;
}

// No room to write the state database or the output: the message says which file, how much it
// needed and how much its file system has free.
class NoSpace : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The state database is damaged (SQLite finds it corrupt, or not a database): the message says
// which file, what SQLite says, how many results can still be read, and how to repair it. An
// InputError: the user repairs the state before running again (exit status 2).
class StateDamaged : public InputError {
 public:
  using InputError::InputError;
};

class ResultStore {
 public:
  // Opens or creates the database. `job_fingerprint` names the job's contexts, datasets, models
  // and settings; a database made for a different job is refused (InputError).
  ResultStore(const std::filesystem::path& path, const std::string& job_fingerprint,
              bool durable = false);
  ~ResultStore();
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;

  // This run's number: 1 for the first run of the job, 2 after one restart, ...
  int run() const { return run_; }

  // For each context, which rows already have a result. Rows given up in an earlier run count as
  // not done: they are tried again.
  std::vector<std::vector<bool>> done_rows(const std::vector<std::size_t>& row_counts);

  // Between these, every write goes into one transaction, committed by commit_batch(): the
  // manager records all the tasks one pass over its inbox finished at once (a transaction costs
  // more than the rows of a no-op task). A write that fails rolls the whole batch back and
  // throws; so does a commit that fails.
  void begin_batch();
  void commit_batch();

  // Records the results of one task in one transaction (in the batch, if one is open).
  void record_task(std::uint64_t task, std::uint32_t context,
                   const std::vector<std::uint64_t>& rows, const std::vector<std::string>& results,
                   const std::string& worker);
  // Records rows given up after repeated failures, with the reason.
  void record_failed(std::uint32_t context, const std::vector<std::uint64_t>& rows,
                     const std::string& error);

  // Turns this run's results of `worker` into errors saying `why` (a worker caught returning wrong
  // results): they count as not done, and a later run redoes them. Returns how many rows.
  std::uint64_t discard_worker(const std::string& worker, const std::string& why);

  struct RunRecord {
    int run = 0;
    std::uint64_t tasks = 0;       // tasks finished in that run
    std::uint64_t inferences = 0;  // inferences finished in that run
  };
  std::vector<RunRecord> runs();

  // Writes one JSON line per row of every context, in context then row order:
  // {"id": ..., "context": "...", "result": ..., "worker": "..."} or, for rows given up,
  // {"id": ..., "context": "...", "error": "..."}. Written to a temporary file and renamed.
  // Requires every row to be recorded. Throws NoSpace if the output does not fit, leaving any
  // earlier output as it was.
  void write_output(const std::filesystem::path& path, const std::vector<std::string>& contexts,
                    const std::vector<const Dataset*>& datasets);

 private:
  struct Statements;
  void exec(const char* sql);
  // Runs `write` in one transaction, rolled back if it throws; SQLite's errors become NoSpace or
  // StateDamaged where they are that, saying that `what` needed about `needed_bytes`.
  template <class Write>
  void transaction(const std::string& what, double needed_bytes, Write write);
  // Throws what `e` is, as transaction() says.
  [[noreturn]] void fail(const sqlite::SqliteError& e, const std::string& what,
                         double needed_bytes) const;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Statements> statements_;
  std::string path_;
  int run_ = 0;
  bool batch_wanted_ = false;  // between begin_batch() and commit_batch()
  bool batch_open_ = false;    // ... and written to: its transaction has begun
  std::uint64_t batch_writes_ = 0;
  double batch_bytes_ = 0;
};

}  // namespace hearth::real
