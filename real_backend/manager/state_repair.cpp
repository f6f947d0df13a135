#include "real_backend/manager/state_repair.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "policy/errors.hpp"
#include "real_backend/manager/result_store.hpp"
#include "real_backend/manager/sqlite_util.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

using sqlite::exec;
using sqlite::free_space;
using sqlite::kSchema;
using sqlite::SqliteError;
using sqlite::Statement;

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

std::string readable_summary(const fs::path& db) {
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
    return fmt::format(
        "{} recorded rows can still be read{}", rows,
        lost.empty() ? "" : fmt::format(", {} stretches of rows cannot", lost.size()));
  } catch (const SqliteError& e) {
    return "it cannot be opened to read what is left (" + e.why() + ")";
  }
}

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
      bool writing = false;  // an error then is the new database's, not the old one's
      try {
        out.unreadable = salvage_rows(old, [&](const Row& r) {
          if (!r.result) return;  // given up or discarded: a run tries it again anyway
          writing = true;
          put_row.bind(1, r.context)
              .bind(2, r.row)
              .bind(3, r.result)
              .bind(4, r.error)
              .bind(5, r.worker)
              .bind(6, r.run)
              .bind(7, r.task)
              .run();
          writing = false;
          auto& [tasks, rows] = seen[static_cast<int>(r.run)];
          if (r.task) tasks.insert(*r.task);
          ++rows;
          ++out.rows_kept;
        });
      } catch (const SqliteError& e) {
        if (writing) throw;
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
