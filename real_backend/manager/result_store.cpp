#include "real_backend/manager/result_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "os/atomic_file.hpp"
#include "policy/errors.hpp"
#include "real_backend/manager/sqlite_util.hpp"
#include "real_backend/manager/state_repair.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

using sqlite::bytes_text;
using sqlite::free_space;
using sqlite::kSchema;
using sqlite::SqliteError;
using sqlite::Statement;

// Why `file` may not grow by `needed` bytes, when a write failed without saying (SQLite reports
// "disk I/O error" for a write cut short by a file size limit, and the errno may be gone): the
// file system is (nearly) full, or the process's file size limit is reached. Empty if neither.
std::string space_problem(const fs::path& file, double needed) {
  fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) == 0 &&
      static_cast<double>(v.f_bavail) * static_cast<double>(v.f_frsize) < needed + (1 << 20)) {
    return "the disk is full";
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    std::error_code ec;
    double largest = 0;
    for (const char* suffix : {"", "-wal", "-journal"}) {
      fs::path p = file;
      p += suffix;
      if (auto size = fs::file_size(p, ec); !ec) largest = std::max(largest, double(size));
    }
    if (largest + needed >= static_cast<double>(limit.rlim_cur)) {
      return fmt::format("the file size limit (ulimit -f) of {} is reached",
                         bytes_text(static_cast<double>(limit.rlim_cur)));
    }
  }
  return "";
}

// What a damaged database's message says: which file, SQLite's words, what can be saved.
std::string damaged_message(const fs::path& db, const std::string& why) {
  const std::string saved = readable_summary(db);
  const std::string dir = db.parent_path().string();
  return fmt::format(
      "{}: the state database is damaged ({}); {}.\n"
      "  hearth state check {}    says what is intact\n"
      "  hearth state repair {}   keeps every readable result (the damaged file is kept beside "
      "it); running the job again then resumes from them",
      db.string(), why, saved, dir, dir);
}

}  // namespace

struct ResultStore::Statements {
  explicit Statements(sqlite3* db)
      : begin(db, "BEGIN"),
        commit(db, "COMMIT"),
        insert_result(db,
                      "INSERT INTO results(context, row, result, error, worker, run, task) "
                      "VALUES (?, ?, ?, NULL, ?, ?, ?)"),
        insert_failed(db,
                      "INSERT INTO results(context, row, result, error, worker, run, task) "
                      "VALUES (?, ?, NULL, ?, NULL, ?, NULL)"),
        count_run(db,
                  "UPDATE runs SET tasks = tasks + 1, inferences = inferences + ? WHERE run = ?") {}
  Statement begin, commit, insert_result, insert_failed, count_run;
};

ResultStore::ResultStore(const std::filesystem::path& path, const std::string& job_fingerprint,
                         bool durable)
    : path_(path.string()) {
  // Created 0600 before SQLite opens it (its journal and WAL files take the database's mode).
  if (int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600); fd >= 0) {
    ::close(fd);
  }
  if (sqlite3_open(path_.c_str(), &db_) != SQLITE_OK) {
    std::string why = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    throw InputError(fmt::format("{}: cannot open the state database: {}", path_, why));
  }
  try {
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode = WAL");
    exec(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    transaction("create the state database", 16384, [&] {
      exec(kSchema);
      Statement get(db_, "SELECT value FROM meta WHERE key = 'job'");
      if (get.next()) {
        if (get.text(0) != job_fingerprint) {
          throw InputError(fmt::format(
              "{}: this state belongs to a different job (its contexts, datasets or models "
              "changed); remove it or choose another state directory",
              path_));
        }
        get.next();
      } else {
        Statement put(db_, "INSERT INTO meta(key, value) VALUES ('job', ?)");
        put.bind(1, job_fingerprint).run();
      }
    });
    // Rows given up by an earlier run are tried again.
    transaction("start a run", 4096, [&] {
      exec("DELETE FROM results WHERE error IS NOT NULL");
      exec("INSERT INTO runs(started) VALUES (datetime('now'))");
    });
    run_ = static_cast<int>(sqlite3_last_insert_rowid(db_));
    statements_ = std::make_unique<Statements>(db_);
  } catch (...) {
    statements_.reset();
    sqlite3_close(db_);
    throw;
  }
}

ResultStore::~ResultStore() {
  statements_.reset();
  sqlite3_close(db_);
}

void ResultStore::exec(const char* sql) {
  sqlite::exec(db_, sql);
}

template <class Write>
void ResultStore::transaction(const std::string& what, double needed_bytes, Write write) {
  try {
    if (!batch_open_) sqlite::exec(db_, "BEGIN");
    batch_open_ = batch_wanted_;
    try {
      write();
      if (batch_open_) {
        ++batch_writes_;
        batch_bytes_ += needed_bytes;
      } else {
        sqlite::exec(db_, "COMMIT");
      }
    } catch (...) {
      batch_open_ = batch_wanted_ = false;  // the whole batch goes
      // SQLite may have rolled back already (a full disk, an I/O error): then there is nothing to
      // roll back, and its error is the one to report.
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  } catch (const SqliteError& e) {
    fail(e, what, needed_bytes);
  }
}

void ResultStore::fail(const SqliteError& e, const std::string& what, double needed_bytes) const {
  if (e.damaged()) throw StateDamaged(damaged_message(path_, e.why()));
  std::string problem = e.io_error() ? space_problem(path_, needed_bytes) : "";
  if (e.no_space() || !problem.empty()) {
    throw NoSpace(fmt::format(
        "{}: no room to {} ({}{}): it needs about {} more, and {}. The results recorded before "
        "are intact: free some space and run the job again to resume",
        path_, what, problem.empty() ? "" : problem + "; ", e.why(), bytes_text(needed_bytes),
        free_space(path_)));
  }
  throw std::runtime_error(fmt::format("{}: cannot {}: {}", path_, what, e.what()));
}

void ResultStore::begin_batch() {
  if (batch_wanted_) return;
  batch_wanted_ = true;  // the transaction begins with the first write
  batch_writes_ = 0;
  batch_bytes_ = 0;
}

void ResultStore::commit_batch() {
  batch_wanted_ = false;
  if (!batch_open_) return;
  batch_open_ = false;
  try {
    sqlite::exec(db_, "COMMIT");
  } catch (const SqliteError& e) {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    fail(e, fmt::format("record the results of {} tasks", batch_writes_), batch_bytes_);
  }
}

std::vector<std::vector<bool>> ResultStore::done_rows(const std::vector<std::size_t>& row_counts) {
  std::vector<std::vector<bool>> done(row_counts.size());
  for (std::size_t c = 0; c < row_counts.size(); ++c)
    done[c].assign(row_counts[c], false);
  transaction("read the results", 0, [&] {
    Statement rows(db_, "SELECT context, row FROM results");
    while (rows.next()) {
      auto c = static_cast<std::size_t>(rows.integer(0));
      auto r = static_cast<std::size_t>(rows.integer(1));
      if (c >= done.size() || r >= done[c].size()) {
        throw InputError(
            fmt::format("{}: holds row {} of context {}, which the job lacks", path_, r, c));
      }
      done[c][r] = true;
    }
  });
  return done;
}

void ResultStore::record_task(std::uint64_t task, std::uint32_t context,
                              const std::vector<std::uint64_t>& rows,
                              const std::vector<std::string>& results, const std::string& worker) {
  assert(rows.size() == results.size());
  double bytes = 0;  // what the rows hold, without SQLite's own overhead
  for (const std::string& r : results)
    bytes += static_cast<double>(r.size() + worker.size() + 24);
  Statements& s = *statements_;
  transaction(fmt::format("record the results of task {}", task), bytes, [&] {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      s.insert_result.bind(1, context)
          .bind(2, static_cast<std::int64_t>(rows[i]))
          .bind(3, results[i])
          .bind(4, worker)
          .bind(5, run_)
          .bind(6, static_cast<std::int64_t>(task))
          .run();
    }
    s.count_run.bind(1, static_cast<std::int64_t>(rows.size())).bind(2, run_).run();
  });
}

void ResultStore::record_failed(std::uint32_t context, const std::vector<std::uint64_t>& rows,
                                const std::string& error) {
  Statements& s = *statements_;
  transaction("record rows given up", static_cast<double>(rows.size() * (error.size() + 24)), [&] {
    for (std::uint64_t row : rows) {
      s.insert_failed.bind(1, context)
          .bind(2, static_cast<std::int64_t>(row))
          .bind(3, error)
          .bind(4, run_)
          .run();
    }
  });
}

std::uint64_t ResultStore::discard_worker(const std::string& worker, const std::string& why) {
  std::uint64_t changed = 0;
  transaction("discard a worker's results", 4096, [&] {
    Statement q(db_,
                "UPDATE results SET result = NULL, error = ? WHERE worker = ? AND run = ? AND "
                "result IS NOT NULL");
    q.bind(1, why).bind(2, worker).bind(3, run_).run();
    changed = static_cast<std::uint64_t>(sqlite3_changes(db_));
  });
  return changed;
}

std::vector<ResultStore::RunRecord> ResultStore::runs() {
  std::vector<RunRecord> out;
  transaction("read the runs", 0, [&] {
    Statement q(db_, "SELECT run, tasks, inferences FROM runs ORDER BY run");
    while (q.next()) {
      out.push_back({static_cast<int>(q.integer(0)), static_cast<std::uint64_t>(q.integer(1)),
                     static_cast<std::uint64_t>(q.integer(2))});
    }
  });
  return out;
}

void ResultStore::write_output(const std::filesystem::path& path,
                               const std::vector<std::string>& contexts,
                               const std::vector<const Dataset*>& datasets) {
  os::AtomicFile file(path, os::temp_beside(path));
  std::ofstream& out = file.stream();
  if (!out) {
    throw InputError(
        fmt::format("{}: cannot write the output: {}", file.temp().string(), std::strerror(errno)));
  }
  // Every line is counted, written or not: a write that fails says how much the whole needs.
  double bytes = 0;
  int write_errno = 0;
  std::string line;
  auto put = [&] {
    bytes += static_cast<double>(line.size());
    if (!out) return;
    errno = 0;
    out << line;
    if (!out) write_errno = errno;
  };
  transaction("read the results", 0, [&] {
    Statement q(db_,
                "SELECT row, result, error, worker FROM results WHERE context = ? ORDER BY row");
    for (std::size_t c = 0; c < contexts.size(); ++c) {
      std::string context_json = nlohmann::json(contexts[c]).dump();
      std::size_t expected = 0;
      q.bind(1, static_cast<std::int64_t>(c));
      while (q.next()) {
        auto row = static_cast<std::size_t>(q.integer(0));
        assert(row == expected && "every row is recorded exactly once");
        ++expected;
        line = R"({"id":)" + datasets[c]->rows[row].id_json + R"(,"context":)" + context_json;
        if (q.null(1)) {
          line += R"(,"error":)" + nlohmann::json(q.text(2)).dump() + "}\n";
        } else {
          line += R"(,"result":)" + q.text(1) + R"(,"worker":)" + nlohmann::json(q.text(3)).dump() +
                  "}\n";
        }
        put();
      }
      assert(expected == datasets[c]->rows.size());
    }
  });
  if (out) {
    errno = 0;
    out.flush();
    if (!out) write_errno = errno;
  }
  if (!file.commit()) {
    if (write_errno == 0) write_errno = errno;
    const bool no_room = write_errno == ENOSPC || write_errno == EDQUOT || write_errno == EFBIG;
    std::string message = fmt::format(
        "{}: cannot write the output{}: it needs {}, and {}. Every result is safe in {}: {}run "
        "the job again, which writes the output without running anything again",
        path.string(), write_errno ? fmt::format(" ({})", std::strerror(write_errno)) : "",
        bytes_text(bytes), free_space(path), path_, no_room ? "free some space and " : "");
    if (no_room) throw NoSpace(message);
    throw InputError(message);
  }
}

}  // namespace hearth::real
