// The state database when things go wrong: a disk with no room left (the results recorded before
// stay, the message says which file, what it needed and what is free) and a damaged results.db
// (hearth run says so, hearth state check finds it, hearth state repair keeps every readable row,
// and the job resumes from them).
//
// No room is made without filling a disk: a child process with a file size limit (RLIMIT_FSIZE,
// SIGXFSZ ignored) writes as it would on a full disk, and fails with EFBIG where a full disk gives
// ENOSPC (store_test.cpp fills a real one, a tmpfs, where mount is allowed).

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fstream>
#include <map>
#include <random>

#include "real_backend/manager/result_store.hpp"
#include "real_backend/manager/state_repair.hpp"
#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;

namespace {

// Runs `work` in a child process whose files cannot grow past `limit` bytes; returns its exit
// status (what `work` returned).
int with_file_size_limit(rlim_t limit, const std::function<int()>& work) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    rlimit l{limit, limit};
    setrlimit(RLIMIT_FSIZE, &l);
    int status = 99;
    try {
      status = work();
    } catch (...) {
    }
    _exit(status);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

std::vector<std::uint64_t> rows_from(std::uint64_t first, std::uint64_t n) {
  std::vector<std::uint64_t> rows;
  for (std::uint64_t r = first; r < first + n; ++r)
    rows.push_back(r);
  return rows;
}

// (context, row) -> (result, error, worker, run, task) of every row of a state database, read
// with SQLite directly.
using Rows = std::map<std::pair<std::int64_t, std::int64_t>, std::string>;
Rows rows_of(const fs::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  Rows out;
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(h,
                             "SELECT context, row, quote(result) || quote(error) || quote(worker) "
                             "|| quote(run) || quote(task) FROM results",
                             -1, &s, nullptr) == SQLITE_OK);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    out[{sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1)}] =
        reinterpret_cast<const char*>(sqlite3_column_text(s, 2));
  }
  CHECK(rc == SQLITE_DONE);
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

// A leaf page of the results table in the middle of a two-level b-tree, and the keys it holds:
// the keys of a WITHOUT ROWID table are in its interior pages too, so the leaf j of the root's
// children holds the keys after the first (cells of leaves 0..j-1) + j ones.
struct Leaf {
  std::int64_t page = 0;
  std::int64_t first_key = 0;  // index of its first key in key order
  std::int64_t cells = 0;
};
Leaf middle_leaf(const fs::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(h,
                         "SELECT path, pageno, pagetype, ncell FROM dbstat WHERE name = 'results' "
                         "ORDER BY path",
                         -1, &s, nullptr) != SQLITE_OK) {
    sqlite3_close(h);
    SKIP("this SQLite has no dbstat table (SQLITE_ENABLE_DBSTAT_VTAB) to find a leaf page with");
  }
  struct Page {
    std::string path, type;
    std::int64_t page, cells;
  };
  std::vector<Page> pages;
  while (sqlite3_step(s) == SQLITE_ROW) {
    pages.push_back({reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                     reinterpret_cast<const char*>(sqlite3_column_text(s, 2)),
                     sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 3)});
  }
  sqlite3_finalize(s);
  sqlite3_close(h);
  REQUIRE(pages.size() >= 4);
  REQUIRE(pages[0].path == "/");
  REQUIRE(pages[0].type == "internal");
  for (std::size_t i = 1; i < pages.size(); ++i)
    REQUIRE(pages[i].type == "leaf");  // two levels: the root and its leaves
  const std::size_t j = pages.size() / 2;
  Leaf leaf{pages[j].page, 0, pages[j].cells};
  for (std::size_t i = 1; i < j; ++i)
    leaf.first_key += pages[i].cells + 1;
  return leaf;
}

// Overwrites page `page` of `db` with pseudo-random bytes.
void overwrite_page(const fs::path& db, std::int64_t page) {
  std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp((page - 1) * 4096);
  std::mt19937 random(7);
  std::string junk(4096, '\0');
  for (char& c : junk)
    c = static_cast<char>(random());
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  REQUIRE(f.good());
}

// An output's lines without the worker that ran each (another run picks other workers).
std::vector<std::string> without_workers(const std::string& output) {
  std::vector<std::string> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("worker");
    lines.push_back(j.dump());
  }
  return lines;
}

}  // namespace

TEST_CASE("no room to record a task says which file, what it needed and what is free") {
  TempDir dir;
  const fs::path db = dir / "results.db";
  { ResultStore(db, "job").record_task(0, 0, rows_from(0, 4), {"1", "2", "3", "4"}, "w1"); }
  // Tasks of 4 rows of 16 KB each, recorded until the database's files reach 256 KB.
  const std::string big = "\"" + std::string(16000, 'x') + "\"";
  int status = with_file_size_limit(256 * 1024, [&] {
    ResultStore s(db, "job");
    std::uint64_t task = 1;
    try {
      for (; task < 100; ++task)
        s.record_task(task, 0, rows_from(task * 4, 4), {big, big, big, big}, "w1");
      return 2;
    } catch (const NoSpace& e) {
      std::ofstream(dir / "message") << task << "\n" << e.what();
      return 0;
    } catch (const std::exception& e) {
      std::ofstream(dir / "message") << task << "\n" << e.what();
      return 1;
    }
  });
  std::string message = read_file(dir / "message");
  INFO(message);
  REQUIRE(status == 0);
  std::uint64_t failed_task = std::stoull(message);
  CHECK(failed_task > 1);
  CHECK_THAT(message, ContainsSubstring(db.string() + ": no room to record the results of task " +
                                        std::to_string(failed_task) + " ("));
  CHECK_THAT(message, ContainsSubstring("the file size limit (ulimit -f) of 262.1 KB is reached"));
  CHECK_THAT(message, ContainsSubstring("it needs about 64."));  // 4 x 16 KB
  CHECK_THAT(message, ContainsSubstring(" free. The results recorded before are intact"));
  // Every task before the one that did not fit is there, whole; that one left nothing.
  Rows rows = rows_of(db);
  CHECK(rows.size() == failed_task * 4);
  for (std::uint64_t r = 4; r < failed_task * 4; ++r)
    CHECK(rows[{0, static_cast<std::int64_t>(r)}].starts_with("'" + big + "'"));
  ResultStore again(db, "job");
  std::vector<std::vector<bool>> done = again.done_rows({400});
  for (std::uint64_t r = 0; r < 400; ++r)
    CHECK(done[0][r] == (r < failed_task * 4));
}

TEST_CASE("an output with no room says how much it needs, and the previous output stays") {
  TempDir dir;
  Dataset d;
  std::vector<std::string> results;
  for (int i = 0; i < 5; ++i) {
    d.rows.push_back(DatasetRow{});
    d.rows.back().id_json = std::to_string(i);
    results.push_back("\"" + std::string(100'000, 'a' + i) + "\"");
  }
  {
    ResultStore s(dir / "results.db", "job");
    s.record_task(0, 0, rows_from(0, 5), results, "w1");
  }
  write_file(dir / "out.jsonl", "the previous output\n");
  int status = with_file_size_limit(200 * 1000, [&] {
    ResultStore s(dir / "results.db", "job");
    try {
      s.write_output(dir / "out.jsonl", {"c"}, {&d});
      return 2;
    } catch (const NoSpace& e) {
      std::ofstream(dir / "message") << e.what();
      return 0;
    } catch (const std::exception& e) {
      std::ofstream(dir / "message") << e.what();
      return 1;
    }
  });
  std::string message = read_file(dir / "message");
  INFO(message);
  REQUIRE(status == 0);
  CHECK_THAT(message, ContainsSubstring((dir / "out.jsonl").string() +
                                        ": cannot write the output (File too large): it needs "
                                        "500.2 KB, and " +
                                        dir.path.string() + " has "));
  CHECK_THAT(message,
             ContainsSubstring("Every result is safe in " + (dir / "results.db").string()));
  CHECK(read_file(dir / "out.jsonl") == "the previous output\n");
  CHECK(!fs::exists(dir / "out.jsonl.tmp"));
}

TEST_CASE("a damaged results.db is found, repaired keeping every readable row, and resumed") {
  TempDir dir;
  write_classify_job(dir / "job.toml", 600, 10);
  const std::string job = (dir / "job.toml").string();
  REQUIRE(exit_status(start_hearth({"run", job, "--workers", "2", "-q"}, dir / "run1.log")) == 0);
  const std::string clean_output = read_file(dir / "out.jsonl");
  REQUIRE(without_workers(clean_output).size() == 600);
  const fs::path state = dir / "job.state";
  const fs::path db = state / "results.db";
  REQUIRE(fs::is_regular_file(db));
  Rows written = rows_of(db);
  REQUIRE(written.size() == 600);

  // One leaf page in the middle of the results is overwritten: its rows are lost, no other.
  Leaf leaf = middle_leaf(db);
  REQUIRE(!fs::exists(fs::path(db) += "-wal"));  // all of it is in results.db
  overwrite_page(db, leaf.page);
  Rows expected;
  std::int64_t i = 0;
  for (const auto& [key, value] : written) {
    if (i < leaf.first_key || i >= leaf.first_key + leaf.cells) expected[key] = value;
    ++i;
  }
  INFO("leaf page " << leaf.page << " holds " << leaf.cells << " rows");
  REQUIRE(leaf.cells > 0);

  // hearth run refuses it, saying which file, what SQLite says, and what to do.
  REQUIRE(exit_status(start_hearth({"run", job, "--workers", "1"}, dir / "run2.log")) == 2);
  std::string log = read_file(dir / "run2.log");
  INFO(log);
  CHECK_THAT(log, ContainsSubstring(db.string() + ": the state database is damaged (SQLite: "));
  CHECK_THAT(log,
             ContainsSubstring(std::to_string(expected.size()) +
                               " recorded rows can still be read, 1 stretches of rows cannot"));
  CHECK_THAT(log, ContainsSubstring("hearth state repair " + state.string()));

  REQUIRE(exit_status(start_hearth({"state", "check", state.string()}, dir / "check1.log")) == 1);
  std::string check = read_file(dir / "check1.log");
  INFO(check);
  CHECK_THAT(check, ContainsSubstring(db.string() + ": damaged"));
  CHECK_THAT(check, ContainsSubstring("  " + std::to_string(expected.size()) + " rows readable"));
  CHECK_THAT(check, ContainsSubstring("  unreadable: context 0 rows "));
  CHECK_THAT(check, ContainsSubstring("the output cannot be written from it"));

  REQUIRE(exit_status(start_hearth({"state", "repair", state.string()}, dir / "repair.log")) == 0);
  std::string repair = read_file(dir / "repair.log");
  INFO(repair);
  CHECK_THAT(repair, ContainsSubstring(": repaired: 1 runs and " + std::to_string(expected.size()) +
                                       " results kept; the damaged database is "));
  CHECK(rows_of(db) == expected);  // every intact row, exactly as it was
  int kept = 0;
  for (const auto& e : fs::directory_iterator(state))
    kept += e.path().filename().string().starts_with("results.db.corrupt-");
  CHECK(kept == 1);
  REQUIRE(exit_status(start_hearth({"state", "check", state.string()}, dir / "check2.log")) == 0);
  CHECK_THAT(read_file(dir / "check2.log"), ContainsSubstring(db.string() + ": whole"));

  // The job resumes from the rows kept, runs only the lost ones, and writes the same output.
  REQUIRE(exit_status(start_hearth({"run", job, "--workers", "2", "-q"}, dir / "run3.log")) == 0);
  CHECK_THAT(read_file(dir / "run3.log"),
             ContainsSubstring("resuming run 2: " + std::to_string(expected.size()) +
                               " of 600 inferences were done before"));
  CHECK(without_workers(read_file(dir / "out.jsonl")) == without_workers(clean_output));
}

TEST_CASE("hearth run with no room for its results stops saying so, and resumes with room") {
  TempDir dir;
  write_classify_job(dir / "job.toml", 600, 10);
  const std::string job = (dir / "job.toml").string();
  // The manager starts with a file size limit of 512 KiB, which the results' WAL reaches within
  // the run (a commit per task of 10 rows); its workers, started apart, have none.
  rlimit unlimited{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &unlimited) == 0);
  rlimit limited = unlimited;
  limited.rlim_cur = 512 * 1024;
  auto ignored = signal(SIGXFSZ, SIG_IGN);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &limited) == 0);
  pid_t manager = start_hearth({"run", job, "-q"}, dir / "run1.log");
  REQUIRE(setrlimit(RLIMIT_FSIZE, &unlimited) == 0);
  signal(SIGXFSZ, ignored);
  std::string address = manager_address(dir / "run1.log");
  std::vector<pid_t> workers;
  for (const char* name : {"w1", "w2"}) {
    workers.push_back(start_hearth(
        {"worker", "--manager", address, "--keys", (dir / "job.state/keys/worker.key").string(),
         "--name", name, "--device", "cpu"},
        dir / (std::string(name) + ".log")));
  }
  CHECK(exit_status(manager) == 1);
  for (pid_t w : workers) {
    kill(w, SIGKILL);
    exit_status(w);
  }
  const fs::path db = dir / "job.state" / "results.db";
  std::string log = read_file(dir / "run1.log");
  INFO(log);
  // Of the task whose rows did not fit, or of the tasks a pass of the manager's loop committed
  // together ("of 2 tasks").
  CHECK_THAT(log, ContainsSubstring(db.string() + ": no room to record the results of "));
  CHECK_THAT(log, ContainsSubstring("(the file size limit (ulimit -f) of 524.3 KB is reached; "));
  CHECK_THAT(log, ContainsSubstring(" free. The results recorded before are intact"));
  CHECK_THAT(log, !ContainsSubstring("cannot rollback"));
  std::size_t recorded = rows_of(db).size();
  CHECK(recorded > 0);
  CHECK(recorded < 600);

  REQUIRE(exit_status(start_hearth({"run", job, "--workers", "2", "-q"}, dir / "run2.log")) == 0);
  CHECK_THAT(read_file(dir / "run2.log"),
             ContainsSubstring("resuming run 2: " + std::to_string(recorded) +
                               " of 600 inferences were done before"));
  CHECK(without_workers(read_file(dir / "out.jsonl")).size() == 600);
}
