#include "real_backend/manager/result_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "os/atomic_file.hpp"
#include "policy/errors.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

// An error SQLite reported, with what is needed to tell a full disk or a damaged file from the
// rest.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(sqlite3* db, int rc, const std::string& doing)
      : std::runtime_error(fmt::format("{}: {}", doing, sqlite3_errmsg(db))),
        code(rc & 0xff),
        system_errno(sqlite3_system_errno(db)),
        sqlite_message(sqlite3_errmsg(db)) {}
  int code;
  int system_errno;
  std::string sqlite_message;

  bool damaged() const { return code == SQLITE_CORRUPT || code == SQLITE_NOTADB; }
  bool no_space() const {
    return code == SQLITE_FULL ||
           (code == SQLITE_IOERR &&
            (system_errno == ENOSPC || system_errno == EDQUOT || system_errno == EFBIG));
  }
  bool io_error() const { return code == SQLITE_IOERR; }
  // SQLite's words, and the system's where it gave an errno.
  std::string why() const {
    if (system_errno == 0) return "SQLite: " + sqlite_message;
    return fmt::format("SQLite: {}; {}", sqlite_message, std::strerror(system_errno));
  }
};

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (int rc = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); rc != SQLITE_OK) {
      throw SqliteError(db, rc, fmt::format("sqlite: {}", sql));
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
  Statement& bind(int i, const std::optional<std::string>& v) {
    if (!v) {
      sqlite3_bind_null(s_, i);
      return *this;
    }
    return bind(i, *v);
  }
  Statement& bind(int i, const std::optional<std::int64_t>& v) {
    if (!v) {
      sqlite3_bind_null(s_, i);
      return *this;
    }
    return bind(i, *v);
  }
  // Runs to the end of a statement that returns no rows.
  void run() {
    int rc = sqlite3_step(s_);
    if (rc != SQLITE_DONE) {
      SqliteError e(db_, rc, "sqlite");
      sqlite3_reset(s_);
      throw e;
    }
    sqlite3_reset(s_);
  }
  bool next() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) {
      SqliteError e(db_, rc, "sqlite");
      sqlite3_reset(s_);
      throw e;
    }
    sqlite3_reset(s_);
    return false;
  }
  void reset() { sqlite3_reset(s_); }
  std::int64_t integer(int col) { return sqlite3_column_int64(s_, col); }
  bool null(int col) { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string text(int col) {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : "";
  }
  std::optional<std::string> optional_text(int col) {
    if (null(col)) return std::nullopt;
    return text(col);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  if (int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    throw SqliteError(db, rc, sql);
  }
}

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS runs(run INTEGER PRIMARY KEY, started TEXT NOT NULL,"
    "  tasks INTEGER NOT NULL DEFAULT 0, inferences INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS results(context INTEGER NOT NULL, row INTEGER NOT NULL,"
    "  result TEXT, error TEXT, worker TEXT, run INTEGER NOT NULL, task INTEGER,"
    "  PRIMARY KEY(context, row)) WITHOUT ROWID;";

std::string bytes_text(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} KB", b / 1e3);
  return fmt::format("{:.0f} B", b);
}

// "DIR has N free", for the file system holding `file`.
std::string free_space(const fs::path& file) {
  fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) {
    return fmt::format("the free space of {} is unknown ({})", dir.string(), std::strerror(errno));
  }
  return fmt::format("{} has {} free", dir.string(),
                     bytes_text(static_cast<double>(v.f_bavail) * static_cast<double>(v.f_frsize)));
}

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

// A row of the results table as salvage_rows() reads it.
struct Row {
  std::int64_t context = 0;
  std::int64_t row = 0;
  std::optional<std::string> result, error, worker;
  std::int64_t run = 0;
  std::optional<std::int64_t> task;
};

// Rows are read in (context, row) order; a key is both in one number.
constexpr int kRowBits = 40;
constexpr std::uint64_t kLastKey = (std::uint64_t{1} << 63) - 1;
std::uint64_t key_of(std::int64_t context, std::int64_t row) {
  return (static_cast<std::uint64_t>(context) << kRowBits) | static_cast<std::uint64_t>(row);
}
std::int64_t context_of(std::uint64_t key) {
  return static_cast<std::int64_t>(key >> kRowBits);
}
std::int64_t row_of(std::uint64_t key) {
  return static_cast<std::int64_t>(key & ((std::uint64_t{1} << kRowBits) - 1));
}

std::string stretch(std::uint64_t from, std::optional<std::uint64_t> to, const std::string& why) {
  if (!to) return fmt::format("context {} from row {} on: {}", context_of(from), row_of(from), why);
  if (context_of(from) == context_of(*to)) {
    return fmt::format("context {} rows {} to {}: {}", context_of(from), row_of(from), row_of(*to),
                       why);
  }
  return fmt::format("context {} row {} to context {} row {}: {}", context_of(from), row_of(from),
                     context_of(*to), row_of(*to), why);
}

// The row a statement selecting (context, row, result, error, worker, run, task) is at.
Row row_at(Statement& s) {
  Row r;
  r.context = s.integer(0);
  r.row = s.integer(1);
  r.result = s.optional_text(2);
  r.error = s.optional_text(3);
  r.worker = s.optional_text(4);
  r.run = s.integer(5);
  if (!s.null(6)) r.task = s.integer(6);
  return r;
}

// Reads every row of the results table that can be read, in key order, handing each to `each`,
// and returns the stretches of keys it could not read. Past a damaged page it seeks the first
// readable key after it (doubling the step, then halving), so that a damaged page costs only the
// rows on it. Throws SqliteError if the table cannot be read at all (a damaged schema).
std::vector<std::string> salvage_rows(sqlite3* db, const std::function<void(const Row&)>& each) {
  Statement scan(db,
                 "SELECT context, row, result, error, worker, run, task FROM results "
                 "WHERE (context, row) >= (?, ?) ORDER BY context, row");
  Statement back(db,
                 "SELECT context, row, result, error, worker, run, task FROM results "
                 "WHERE (context, row) <= (?, ?) ORDER BY context DESC, row DESC LIMIT 1");
  Statement probe(db,
                  "SELECT context, row FROM results WHERE (context, row) >= (?, ?) "
                  "ORDER BY context, row LIMIT 1");
  // Whether seeking `key` reads a key (or the end); the key found, if any.
  auto seek = [&](std::uint64_t key, std::optional<std::uint64_t>* found) {
    probe.bind(1, context_of(key)).bind(2, row_of(key));
    try {
      bool row = probe.next();
      if (found)
        *found = row ? std::optional(key_of(probe.integer(0), probe.integer(1))) : std::nullopt;
      probe.reset();
      return true;
    } catch (const SqliteError&) {
      return false;
    }
  };
  std::vector<std::string> unreadable;
  std::uint64_t start = 0;
  for (;;) {
    std::optional<std::uint64_t> last;
    std::string why;
    scan.bind(1, context_of(start)).bind(2, row_of(start));
    try {
      while (scan.next()) {
        Row r;
        r.context = scan.integer(0);
        r.row = scan.integer(1);
        if (r.context < 0 || r.row < 0 || r.row >= (std::int64_t{1} << kRowBits) ||
            key_of(r.context, r.row) < start || (last && key_of(r.context, r.row) <= *last)) {
          continue;  // a damaged page's garbage: not a key of ours, or out of order
        }
        r = row_at(scan);
        last = key_of(r.context, r.row);
        each(r);
      }
      return unreadable;
    } catch (const SqliteError& e) {
      scan.reset();
      why = e.why();
    }
    std::uint64_t lo = last ? *last + 1 : start;
    std::optional<std::uint64_t> found;
    if (seek(lo, &found)) {
      // The key reads but its row does not (an overflow page): that row alone is lost.
      if (!found) return unreadable;
      unreadable.push_back(stretch(*found, *found, why));
      if (*found >= kLastKey) return unreadable;
      start = *found + 1;
      continue;
    }
    std::uint64_t step = 1;
    while (!seek(lo + step, nullptr)) {
      if (step > (kLastKey - lo) / 2) {
        unreadable.push_back(stretch(lo, std::nullopt, why));
        return unreadable;
      }
      step *= 2;
    }
    std::uint64_t bad = lo + step / 2, good = lo + step;  // seeking bad fails, good reads
    if (step == 1) bad = lo;
    while (good - bad > 1) {
      std::uint64_t mid = bad + (good - bad) / 2;
      (seek(mid, nullptr) ? good : bad) = mid;
    }
    // Seeking a key of an interior page reads through the damaged leaf before it, but reading
    // backwards from `good` finds it: the separator between that leaf and the next.
    back.bind(1, context_of(good - 1)).bind(2, row_of(good - 1));
    try {
      if (back.next()) {
        Row r = row_at(back);
        back.reset();
        std::uint64_t k = key_of(r.context, r.row);
        if (k >= lo && k < good) {
          if (k > lo) unreadable.push_back(stretch(lo, k - 1, why));
          each(r);
          lo = k + 1;
        }
      }
    } catch (const SqliteError&) {
      back.reset();
    }
    if (lo < good) unreadable.push_back(stretch(lo, good - 1, why));
    start = good;
  }
}

// Opens `db` as it is, read-only.
sqlite3* open_read_only(const fs::path& db) {
  sqlite3* h = nullptr;
  if (int rc = sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr); rc != SQLITE_OK) {
    SqliteError e(h, rc, db.string());
    sqlite3_close(h);
    throw e;
  }
  return h;
}

// What a damaged database's message says: which file, SQLite's words, what can be saved.
std::string damaged_message(const fs::path& db, const std::string& why) {
  std::string saved;
  try {
    sqlite3* h = open_read_only(db);
    std::uint64_t rows = 0;
    std::vector<std::string> lost;
    try {
      lost = salvage_rows(h, [&](const Row&) { ++rows; });
    } catch (const SqliteError& e) {
      lost = {e.why()};
    }
    sqlite3_close(h);
    saved =
        fmt::format("{} recorded rows can still be read{}", rows,
                    lost.empty() ? "" : fmt::format(", {} stretches of rows cannot", lost.size()));
  } catch (const SqliteError& e) {
    saved = "it cannot be opened to read what is left (" + e.why() + ")";
  }
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
  real::exec(db_, sql);
}

template <class Write>
void ResultStore::transaction(const std::string& what, double needed_bytes, Write write) {
  try {
    real::exec(db_, "BEGIN");
    try {
      write();
      real::exec(db_, "COMMIT");
    } catch (...) {
      // SQLite may have rolled back already (a full disk, an I/O error): then there is nothing to
      // roll back, and its error is the one to report.
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  } catch (const SqliteError& e) {
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

namespace {

// The job a state database belongs to, from its meta table; nullopt if unreadable (then `why`).
std::optional<std::string> job_of(sqlite3* db, std::string* why) {
  try {
    Statement get(db, "SELECT value FROM meta WHERE key = 'job'");
    if (!get.next()) {
      *why = "it records no job";
      return std::nullopt;
    }
    std::string job = get.text(0);
    get.reset();
    return job;
  } catch (const SqliteError& e) {
    *why = e.why();
    return std::nullopt;
  }
}

// The runs table as far as it reads: run -> (started, tasks, inferences).
struct RunRow {
  std::string started = "?";
  std::int64_t tasks = -1;
  std::int64_t inferences = -1;
};
std::map<int, RunRow> runs_of(sqlite3* db) {
  std::map<int, RunRow> out;
  try {
    Statement q(db, "SELECT run, started, tasks, inferences FROM runs ORDER BY run");
    while (q.next())
      out[static_cast<int>(q.integer(0))] = {q.text(1), q.integer(2), q.integer(3)};
  } catch (const SqliteError&) {
    // What was read before the damage is kept; the rest is rebuilt from the results.
  }
  return out;
}

std::string timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm t{};
  gmtime_r(&now, &t);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &t);
  return text;
}

fs::path with_suffix(const fs::path& p, const std::string& suffix) {
  fs::path out = p;
  out += suffix;
  return out;
}

}  // namespace

StateCheck check_state(const fs::path& db) {
  StateCheck out;
  if (!fs::is_regular_file(db)) {
    throw InputError(fmt::format("{}: no state database there (no run has started)", db.string()));
  }
  sqlite3* h = nullptr;
  try {
    h = open_read_only(db);
    std::vector<std::string> problems;
    try {
      Statement integrity(h, "PRAGMA integrity_check(20)");
      while (integrity.next())
        problems.push_back(integrity.text(0));
    } catch (const SqliteError& e) {
      if (!e.damaged()) throw;
      problems.push_back(e.why());  // too damaged to say more
    }
    if (problems != std::vector<std::string>{"ok"}) {
      out.integrity = fmt::format("{}", fmt::join(problems, "\n"));
    }
    Statement schema(h, "SELECT count(*) FROM sqlite_schema");
    while (schema.next()) {
    }
  } catch (const SqliteError& e) {
    out.open_error = e.why();
    sqlite3_close(h);
    return out;
  }
  std::string why;
  out.job = job_of(h, &why).value_or("");
  std::map<int, RunRow> recorded = runs_of(h);
  std::map<int, StateCheck::Run> runs;
  for (const auto& [run, r] : recorded) {
    runs[run].run = run;
    runs[run].started = r.started;
    runs[run].inferences = static_cast<std::uint64_t>(r.inferences);
  }
  try {
    out.unreadable = salvage_rows(h, [&](const Row& r) {
      StateCheck::Run& run = runs[static_cast<int>(r.run)];
      if (run.run == 0) {
        run.run = static_cast<int>(r.run);
        run.started = "?";
        run.inferences = static_cast<std::uint64_t>(-1);
      }
      ++(r.result ? run.results : run.given_up);
      ++out.rows_read;
    });
  } catch (const SqliteError& e) {
    out.unreadable.push_back("the results table: " + e.why());
  }
  sqlite3_close(h);
  for (auto& [n, r] : runs)
    out.runs.push_back(r);
  return out;
}

StateRepair repair_state(const fs::path& db) {
  if (!fs::is_regular_file(db)) {
    throw InputError(fmt::format("{}: no state database there (no run has started)", db.string()));
  }
  StateRepair out;
  // Opened as a run opens it, so that what a killed manager left in its WAL counts too.
  sqlite3* old = nullptr;
  if (int rc = sqlite3_open_v2(db.c_str(), &old, SQLITE_OPEN_READWRITE, nullptr); rc != SQLITE_OK) {
    SqliteError e(old, rc, db.string());
    sqlite3_close(old);
    throw StateDamaged(fmt::format("{}: cannot open it ({})", db.string(), e.why()));
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> old_closer(old, sqlite3_close);
  std::string why;
  std::optional<std::string> job = job_of(old, &why);
  if (!job) {
    throw StateDamaged(fmt::format(
        "{}: cannot read which job it belongs to ({}), so none of its results can be trusted; "
        "remove the state directory to run the job afresh",
        db.string(), why));
  }
  const fs::path fresh = with_suffix(db, ".repair");
  for (const char* s : {"", "-wal", "-shm", "-journal"})
    fs::remove(with_suffix(fresh, s));
  if (int fd = ::open(fresh.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      fd >= 0) {
    ::close(fd);
  } else {
    throw std::runtime_error(
        fmt::format("{}: cannot create it: {}", fresh.string(), std::strerror(errno)));
  }
  sqlite3* h = nullptr;
  try {
    if (int rc = sqlite3_open(fresh.c_str(), &h); rc != SQLITE_OK) throw SqliteError(h, rc, "open");
    exec(h, kSchema);
    exec(h, "BEGIN");
    {
      Statement put_job(h, "INSERT INTO meta(key, value) VALUES ('job', ?)");
      put_job.bind(1, *job).run();
      Statement put_row(h,
                        "INSERT INTO results(context, row, result, error, worker, run, task) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)");
      std::map<int, std::pair<std::set<std::int64_t>, std::int64_t>> seen;  // run -> tasks, rows
      try {
        out.unreadable = salvage_rows(old, [&](const Row& r) {
          put_row.bind(1, r.context)
              .bind(2, r.row)
              .bind(3, r.result)
              .bind(4, r.error)
              .bind(5, r.worker)
              .bind(6, r.run)
              .bind(7, r.task)
              .run();
          auto& [tasks, rows] = seen[static_cast<int>(r.run)];
          if (r.task) tasks.insert(*r.task);
          rows += r.result.has_value();
          ++out.rows_kept;
        });
      } catch (const SqliteError& e) {
        if (e.system_errno != 0 || e.code == SQLITE_FULL) throw;  // the new database's, not the old
        out.unreadable.push_back("the results table: " + e.why());
      }
      std::map<int, RunRow> runs = runs_of(old);
      for (const auto& [run, s] : seen) {
        if (!runs.count(run)) {
          runs[run] = {"?", static_cast<std::int64_t>(s.first.size()), s.second};
        }
      }
      Statement put_run(h, "INSERT INTO runs(run, started, tasks, inferences) VALUES (?, ?, ?, ?)");
      for (const auto& [run, r] : runs) {
        put_run.bind(1, run)
            .bind(2, r.started)
            .bind(3, std::max<std::int64_t>(r.tasks, 0))
            .bind(4, std::max<std::int64_t>(r.inferences, 0))
            .run();
        ++out.runs_kept;
      }
    }
    exec(h, "COMMIT");
    if (sqlite3_close(h) != SQLITE_OK) throw SqliteError(h, SQLITE_ERROR, "close");
    h = nullptr;
  } catch (const SqliteError& e) {
    sqlite3_close(h);
    for (const char* s : {"", "-wal", "-shm", "-journal"})
      fs::remove(with_suffix(fresh, s));
    if (e.no_space()) {
      throw NoSpace(
          fmt::format("{}: no room to write the repaired database ({}); {}; {} is as it was",
                      fresh.string(), e.why(), free_space(fresh), db.string()));
    }
    throw std::runtime_error(
        fmt::format("{}: cannot write the repaired database: {}", fresh.string(), e.what()));
  }
  old_closer.reset();
  // The damaged file and its WAL keep their names' pairing, so that SQLite can still open them.
  out.kept_as = with_suffix(db, ".corrupt-" + timestamp());
  fs::rename(db, out.kept_as);
  for (const char* s : {"-wal", "-shm"}) {
    if (fs::exists(with_suffix(db, s))) fs::rename(with_suffix(db, s), with_suffix(out.kept_as, s));
  }
  fs::rename(fresh, db);
  return out;
}

}  // namespace hearth::real
