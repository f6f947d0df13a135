#include "real_backend/manager/state_repair.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "policy/errors.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close(db); }
};

// Runs `sql` and hands each row's columns to `row`; returns SQLite's error, empty if none.
template <class Row>
std::string each(sqlite3* db, const std::string& sql, Row row) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) return sqlite3_errmsg(db);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW)
    row(s);
  std::string error = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db);
  sqlite3_finalize(s);
  return error;
}

std::string text(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s, col)) : "";
}

void open_read_only(const fs::path& path, Db& d) {
  if (!fs::is_regular_file(path)) throw InputError(fmt::format("{}: no such file", path.string()));
  if (sqlite3_open_v2(path.c_str(), &d.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    throw InputError(fmt::format("{}: cannot open: {}", path.string(), sqlite3_errmsg(d.db)));
  }
}

struct Row {
  std::int64_t context, row, run, task;
  std::optional<std::string> result, error, worker;
};

// Every row of `results` that can be read, in key order, stepping over what cannot.
std::vector<Row> readable_rows(sqlite3* db, std::vector<std::string>& problems) {
  std::vector<Row> rows;
  std::int64_t context = -1, row = -1;
  for (int skips = 0; skips < 2000;) {
    std::size_t before = rows.size();
    std::string e =
        each(db,
             fmt::format("SELECT context, row, result, error, worker, run, task FROM results WHERE "
                         "context > {0} OR (context = {0} AND row > {1}) ORDER BY context, row",
                         context, row),
             [&](sqlite3_stmt* s) {
               Row r{sqlite3_column_int64(s, 0),
                     sqlite3_column_int64(s, 1),
                     sqlite3_column_int64(s, 5),
                     sqlite3_column_int64(s, 6),
                     {},
                     {},
                     {}};
               if (sqlite3_column_type(s, 2) != SQLITE_NULL) r.result = text(s, 2);
               if (sqlite3_column_type(s, 3) != SQLITE_NULL) r.error = text(s, 3);
               if (sqlite3_column_type(s, 4) != SQLITE_NULL) r.worker = text(s, 4);
               context = r.context;
               row = r.row;
               rows.push_back(std::move(r));
             });
    if (e.empty()) break;
    if (problems.empty() || problems.back() != "reading results: " + e)
      problems.push_back("reading results: " + e);
    // Past the damaged part: the next rows, then the next context.
    if (rows.size() == before) {
      ++skips;
      row += 1000;
      if (skips % 20 == 0) {
        ++context;
        row = -1;
      }
    }
  }
  return rows;
}

}  // namespace

StateCheck check_state(const fs::path& path) {
  Db d;
  open_read_only(path, d);
  StateCheck c;
  std::string e = each(d.db, "PRAGMA integrity_check", [&](sqlite3_stmt* s) {
    if (text(s, 0) != "ok") c.problems.push_back(text(s, 0));
  });
  if (!e.empty()) c.problems.push_back("integrity check: " + e);
  e = each(d.db, "SELECT value FROM meta WHERE key = 'job'",
           [&](sqlite3_stmt*) { c.job_known = true; });
  if (!e.empty()) c.problems.push_back("reading the job: " + e);
  for (const Row& r : readable_rows(d.db, c.problems))
    ++(r.result ? c.results : c.errors);
  c.intact = c.problems.empty() && c.job_known;
  return c;
}

StateRepair repair_state(const fs::path& path) {
  Db old;
  open_read_only(path, old);
  std::string job;
  each(old.db, "SELECT value FROM meta WHERE key = 'job'",
       [&](sqlite3_stmt* s) { job = text(s, 0); });
  if (job.empty()) {
    throw InputError(
        fmt::format("{}: which job it belongs to cannot be read: nothing in it can be "
                    "resumed; remove the state directory to start afresh",
                    path.string()));
  }
  std::vector<std::string> problems;
  std::vector<Row> rows = readable_rows(old.db, problems);
  std::vector<std::pair<std::int64_t, std::string>> runs;
  each(old.db, "SELECT run, started FROM runs ORDER BY run",
       [&](sqlite3_stmt* s) { runs.emplace_back(sqlite3_column_int64(s, 0), text(s, 1)); });

  fs::path fresh = fs::path(path) += ".repairing";
  fs::remove(fresh);
  if (int fd = ::open(fresh.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      fd >= 0) {
    ::close(fd);
  }
  Db d;
  if (sqlite3_open(fresh.c_str(), &d.db) != SQLITE_OK) {
    throw InputError(fmt::format("{}: cannot create: {}", fresh.string(), sqlite3_errmsg(d.db)));
  }
  auto exec = [&](const std::string& sql) {
    if (sqlite3_exec(d.db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw std::runtime_error(fmt::format("{}: {}", fresh.string(), sqlite3_errmsg(d.db)));
    }
  };
  exec(
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE runs(run INTEGER PRIMARY KEY, started TEXT NOT NULL,"
      "  tasks INTEGER NOT NULL DEFAULT 0, inferences INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE results(context INTEGER NOT NULL, row INTEGER NOT NULL,"
      "  result TEXT, error TEXT, worker TEXT, run INTEGER NOT NULL, task INTEGER,"
      "  PRIMARY KEY(context, row)) WITHOUT ROWID;"
      "BEGIN");
  sqlite3_stmt* put = nullptr;
  sqlite3_prepare_v2(d.db, "INSERT INTO meta(key, value) VALUES ('job', ?)", -1, &put, nullptr);
  sqlite3_bind_text(put, 1, job.data(), static_cast<int>(job.size()), SQLITE_TRANSIENT);
  sqlite3_step(put);
  sqlite3_finalize(put);
  for (const auto& [run, started] : runs) {
    exec(fmt::format("INSERT INTO runs(run, started) VALUES ({}, '{}')", run,
                     started.find('\'') == std::string::npos ? started : "?"));
  }
  StateRepair report;
  sqlite3_prepare_v2(d.db,
                     "INSERT INTO results(context, row, result, error, worker, run, task) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?)",
                     -1, &put, nullptr);
  for (const Row& r : rows) {
    if (!r.result) continue;  // given up or discarded: redone anyway
    sqlite3_bind_int64(put, 1, r.context);
    sqlite3_bind_int64(put, 2, r.row);
    sqlite3_bind_text(put, 3, r.result->data(), static_cast<int>(r.result->size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_null(put, 4);
    if (r.worker) {
      sqlite3_bind_text(put, 5, r.worker->data(), static_cast<int>(r.worker->size()),
                        SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(put, 5);
    }
    sqlite3_bind_int64(put, 6, r.run);
    sqlite3_bind_int64(put, 7, r.task);
    if (sqlite3_step(put) == SQLITE_DONE) ++report.kept;
    sqlite3_reset(put);
  }
  sqlite3_finalize(put);
  exec("COMMIT");
  sqlite3_close(d.db);
  d.db = nullptr;
  sqlite3_close(old.db);
  old.db = nullptr;
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  report.old_copy = fs::path(path) += fmt::format(".damaged-{}", now);
  fs::rename(path, report.old_copy);
  for (const char* side : {"-wal", "-shm"}) {
    fs::path p = fs::path(path) += side;
    std::error_code ec;
    if (fs::exists(p, ec)) fs::rename(p, fs::path(report.old_copy) += side, ec);
  }
  fs::rename(fresh, path);
  return report;
}

}  // namespace hearth::real
