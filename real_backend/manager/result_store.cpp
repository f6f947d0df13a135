#include "real_backend/manager/result_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cassert>
#include <fstream>
#include <nlohmann/json.hpp>

#include "os/atomic_file.hpp"
#include "policy/errors.hpp"

namespace hearth::real {

namespace {

// What SQLite's last error on `db` means for a user: a full disk (where, how much is free), a
// damaged database (what to do), or SQLite's own words.
std::string trouble(sqlite3* db, const std::string& path) {
  int code = sqlite3_errcode(db) & 0xff;
  if (code == SQLITE_FULL || code == SQLITE_IOERR) {
    struct statvfs fs {};
    std::string dir = std::filesystem::path(path).parent_path().string();
    std::string free =
        statvfs(dir.c_str(), &fs) == 0
            ? fmt::format("{:.1f} MB free",
                          static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize) / 1e6)
            : "free space unknown";
    return fmt::format(
        "{}: cannot write: the disk holding {} is full or failing ({}; SQLite: {}); every result "
        "committed before is kept: free some space and run again to resume",
        path, dir, free, sqlite3_errmsg(db));
  }
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
    return fmt::format(
        "{}: the state database is damaged (SQLite: {}); `hearth state check DIR` says what is "
        "intact, `hearth state repair DIR` keeps every result it can read",
        path, sqlite3_errmsg(db));
  }
  return fmt::format("{}: {}", path, sqlite3_errmsg(db));
}

// Undoes an open transaction, if it can: a failure to roll back (the disk is full) must not hide
// the error that made it necessary.
void roll_back(sqlite3* db) {
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(fmt::format("sqlite: {}: {}", sql, sqlite3_errmsg(db)));
    }
  }
  ~Statement() { sqlite3_finalize(s_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Runs to the end of a statement that returns no rows.
  void run() {
    int rc = sqlite3_step(s_);
    sqlite3_reset(s_);
    if (rc != SQLITE_DONE) throw std::runtime_error(trouble(db_, sqlite3_db_filename(db_, "main")));
  }
  bool next() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    sqlite3_reset(s_);
    if (rc != SQLITE_DONE) throw std::runtime_error(trouble(db_, sqlite3_db_filename(db_, "main")));
    return false;
  }
  std::int64_t integer(int col) { return sqlite3_column_int64(s_, col); }
  bool null(int col) { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string text(int col) {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

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
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode = WAL");
  exec(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  exec(
      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS runs(run INTEGER PRIMARY KEY, started TEXT NOT NULL,"
      "  tasks INTEGER NOT NULL DEFAULT 0, inferences INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE IF NOT EXISTS results(context INTEGER NOT NULL, row INTEGER NOT NULL,"
      "  result TEXT, error TEXT, worker TEXT, run INTEGER NOT NULL, task INTEGER,"
      "  PRIMARY KEY(context, row)) WITHOUT ROWID;");
  {
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
  }
  // Rows given up by an earlier run are tried again.
  exec("DELETE FROM results WHERE error IS NOT NULL");
  exec("INSERT INTO runs(started) VALUES (datetime('now'))");
  run_ = static_cast<int>(sqlite3_last_insert_rowid(db_));
  statements_ = std::make_unique<Statements>(db_);
}

ResultStore::~ResultStore() {
  statements_.reset();
  sqlite3_close(db_);
}

void ResultStore::exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    sqlite3_free(error);
    int code = sqlite3_errcode(db_) & 0xff;
    std::string why = trouble(db_, path_);
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) throw InputError(why);
    throw std::runtime_error(fmt::format("{} ({})", why, sql));
  }
}

std::vector<std::vector<bool>> ResultStore::done_rows(const std::vector<std::size_t>& row_counts) {
  std::vector<std::vector<bool>> done(row_counts.size());
  for (std::size_t c = 0; c < row_counts.size(); ++c)
    done[c].assign(row_counts[c], false);
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
  return done;
}

void ResultStore::record_task(std::uint64_t task, std::uint32_t context,
                              const std::vector<std::uint64_t>& rows,
                              const std::vector<std::string>& results, const std::string& worker) {
  assert(rows.size() == results.size());
  Statements& s = *statements_;
  s.begin.run();
  try {
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
    s.commit.run();
  } catch (...) {
    roll_back(db_);
    throw;
  }
}

void ResultStore::record_failed(std::uint32_t context, const std::vector<std::uint64_t>& rows,
                                const std::string& error) {
  Statements& s = *statements_;
  s.begin.run();
  try {
    for (std::uint64_t row : rows) {
      s.insert_failed.bind(1, context)
          .bind(2, static_cast<std::int64_t>(row))
          .bind(3, error)
          .bind(4, run_)
          .run();
    }
    s.commit.run();
  } catch (...) {
    roll_back(db_);
    throw;
  }
}

std::uint64_t ResultStore::discard_worker(const std::string& worker, const std::string& why) {
  Statement q(db_,
              "UPDATE results SET result = NULL, error = ? WHERE worker = ? AND run = ? AND "
              "result IS NOT NULL");
  q.bind(1, why).bind(2, worker).bind(3, run_).run();
  return static_cast<std::uint64_t>(sqlite3_changes(db_));
}

std::vector<ResultStore::RunRecord> ResultStore::runs() {
  std::vector<RunRecord> out;
  Statement q(db_, "SELECT run, tasks, inferences FROM runs ORDER BY run");
  while (q.next()) {
    out.push_back({static_cast<int>(q.integer(0)), static_cast<std::uint64_t>(q.integer(1)),
                   static_cast<std::uint64_t>(q.integer(2))});
  }
  return out;
}

void ResultStore::write_output(const std::filesystem::path& path,
                               const std::vector<std::string>& contexts,
                               const std::vector<const Dataset*>& datasets) {
  os::AtomicFile file(path, os::temp_beside(path));
  std::ofstream& out = file.stream();
  if (!out) throw InputError(fmt::format("{}: cannot write the output", file.temp().string()));
  std::uint64_t bytes = 0;  // what the output needs, for the message when it does not fit
  Statement q(db_, "SELECT row, result, error, worker FROM results WHERE context = ? ORDER BY row");
  for (std::size_t c = 0; c < contexts.size(); ++c) {
    std::string context_json = nlohmann::json(contexts[c]).dump();
    std::size_t expected = 0;
    q.bind(1, static_cast<std::int64_t>(c));
    while (q.next()) {
      auto row = static_cast<std::size_t>(q.integer(0));
      assert(row == expected && "every row is recorded exactly once");
      ++expected;
      std::string line =
          R"({"id":)" + datasets[c]->rows[row].id_json + R"(,"context":)" + context_json;
      if (q.null(1)) {
        line += R"(,"error":)" + nlohmann::json(q.text(2)).dump() + "}\n";
      } else {
        line += R"(,"result":)" + q.text(1) + R"(,"worker":)" + nlohmann::json(q.text(3)).dump() +
                "}\n";
      }
      bytes += line.size();
      out << line;
    }
    assert(expected == datasets[c]->rows.size());
  }
  if (!file.commit()) {
    // Most often a full disk: say how much the output needs and how much is free, and that
    // nothing is lost.
    std::string dir = path.parent_path().empty() ? "." : path.parent_path().string();
    struct statvfs fs {};
    bool known = statvfs(dir.c_str(), &fs) == 0;
    std::uint64_t free = known ? static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize : 0;
    throw std::runtime_error(fmt::format(
        "{}: cannot write the output{}: it needs {} bytes, {}; every result is kept in {}: free "
        "some space and run again to write it",
        file.temp().string(), known && free < bytes ? " (the disk is full)" : "", bytes,
        known ? fmt::format("{} bytes free on the disk holding {}", free, dir)
              : fmt::format("free space in {} unknown", dir),
        path_));
  }
}

}  // namespace hearth::real
