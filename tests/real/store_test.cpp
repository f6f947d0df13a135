// The manager's record of finished work: what it keeps across restarts, and what it refuses.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "policy/errors.hpp"
#include "real_backend/manager/result_store.hpp"
#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;

namespace {

Dataset three_rows() {
  Dataset d;
  for (const char* id : {"\"a\"", "\"b\"", "7"}) {
    DatasetRow r;
    r.id_json = id;
    d.rows.push_back(r);
  }
  return d;
}

}  // namespace

TEST_CASE("results recorded by one run are there for the next, which retries given-up rows") {
  TempDir dir;
  {
    ResultStore s(dir / "r.db", "job-1");
    CHECK(s.run() == 1);
    s.record_task(0, 0, {0, 2}, {"{\"label\":\"X\"}", "null"}, "w1");
    s.record_failed(0, {1}, "poisoned");
  }
  ResultStore s(dir / "r.db", "job-1");
  CHECK(s.run() == 2);
  auto done = s.done_rows({3});
  CHECK(done == std::vector<std::vector<bool>>{{true, false, true}});
  auto runs = s.runs();
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].run == 1);
  CHECK(runs[0].tasks == 1);
  CHECK(runs[0].inferences == 2);
  CHECK(runs[1].inferences == 0);
}

TEST_CASE("a state made for another job is refused") {
  TempDir dir;
  { ResultStore s(dir / "r.db", "job-1"); }
  CHECK_THROWS_AS(ResultStore(dir / "r.db", "job-2"), InputError);
}

TEST_CASE("a row cannot be recorded twice") {
  TempDir dir;
  ResultStore s(dir / "r.db", "job-1");
  s.record_task(0, 0, {1}, {"1"}, "w1");
  CHECK_THROWS(s.record_task(1, 0, {0, 1}, {"2", "3"}, "w2"));
  // The failed transaction left nothing behind: row 0 is still free.
  CHECK(s.done_rows({2}) == std::vector<std::vector<bool>>{{false, true}});
}

TEST_CASE("tasks recorded in a batch are committed together, and a failed write drops the batch") {
  TempDir dir;
  // What another reader of the file sees: committed rows only.
  auto rows_on_disk = [&] {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2((dir / "r.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
            SQLITE_OK);
    sqlite3_stmt* count = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM results", -1, &count, nullptr) ==
            SQLITE_OK);
    REQUIRE(sqlite3_step(count) == SQLITE_ROW);
    int n = sqlite3_column_int(count, 0);
    sqlite3_finalize(count);
    sqlite3_close(db);
    return n;
  };
  ResultStore s(dir / "r.db", "job-1");
  s.begin_batch();
  s.record_task(0, 0, {0}, {"1"}, "w1");
  s.record_task(1, 0, {1}, {"2"}, "w1");
  CHECK(rows_on_disk() == 0);
  s.commit_batch();
  CHECK(rows_on_disk() == 2);
  s.begin_batch();
  s.record_task(2, 0, {2}, {"3"}, "w1");
  CHECK_THROWS(s.record_task(3, 0, {0}, {"4"}, "w2"));  // row 0 again: the whole batch goes
  s.commit_batch();
  CHECK(s.done_rows({3}) == std::vector<std::vector<bool>>{{true, true, false}});
  CHECK(rows_on_disk() == 2);
}

TEST_CASE("the output has one line per row, in row order, with id, context, result and worker") {
  TempDir dir;
  ResultStore s(dir / "r.db", "job-1");
  s.record_task(0, 0, {2, 0}, {"{\"n\":2}", "{\"n\":0}"}, "w1");
  s.record_failed(0, {1}, "bad \"input\"");
  Dataset d = three_rows();
  s.write_output(dir / "out.jsonl", {"ctx"}, {&d});
  CHECK(read_file(dir / "out.jsonl") ==
        "{\"id\":\"a\",\"context\":\"ctx\",\"result\":{\"n\":0},\"worker\":\"w1\"}\n"
        "{\"id\":\"b\",\"context\":\"ctx\",\"error\":\"bad \\\"input\\\"\"}\n"
        "{\"id\":7,\"context\":\"ctx\",\"result\":{\"n\":2},\"worker\":\"w1\"}\n");
}

TEST_CASE("a damaged state database is named, checked, repaired, and the run resumes") {
  TempDir dir;
  write_noop_job(dir.path, 400, 20);
  const std::string job = (dir / "job.toml").string();
  REQUIRE(exit_status(start_hearth({"run", job, "--workers", "2", "-q"}, dir / "run1.log")) == 0);
  const fs::path state = dir / "job.state";
  REQUIRE(exit_status(start_hearth({"state", "check", state.string()}, dir / "check1.log")) == 0);
  CHECK(lines_with(dir / "check1.log", "400 results and 0 rows given up") == 1);
  {
    // A disk that failed under it: pages in the middle overwritten.
    std::fstream f(state / "results.db", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3);
    f << std::string(8192, '\x5a');
  }
  CHECK(exit_status(start_hearth({"state", "check", state.string()}, dir / "check2.log")) == 1);
  CHECK(lines_with(dir / "check2.log", "results.db: damaged") == 1);
  CHECK(exit_status(start_hearth({"run", job, "--workers", "1", "-q"}, dir / "run2.log")) == 2);
  CHECK(lines_with(dir / "run2.log", "the state database is damaged") == 1);
  CHECK(lines_with(dir / "run2.log", "hearth state repair") == 1);
  REQUIRE(exit_status(start_hearth({"state", "repair", state.string()}, dir / "repair.log")) == 0);
  CHECK(lines_with(dir / "repair.log", "results kept; the damaged database is ") == 1);
  CHECK(exit_status(start_hearth({"state", "check", state.string()}, dir / "check3.log")) == 0);
  REQUIRE(exit_status(start_hearth({"run", job, "--workers", "2", "-q"}, dir / "run3.log")) == 0);
  CHECK(lines_with(dir / "out.jsonl", "\"id\":\"p") == 400);
}
TEST_CASE("a full disk names the database and the free space, and keeps what was recorded") {
  // A 256 KiB tmpfs stands for a full disk; mounting needs root (CI's container has it).
  TempDir dir;
  std::filesystem::path mnt = dir / "small";
  std::filesystem::create_directory(mnt);
  std::string mount = "mount -t tmpfs -o size=256k tmpfs " + mnt.string() + " 2>/dev/null";
  if (std::system(mount.c_str()) != 0) SKIP("cannot mount a small tmpfs here (needs root)");
  struct Unmount {
    std::string cmd;
    ~Unmount() { (void)std::system(cmd.c_str()); }
  } unmount{"umount " + mnt.string()};

  std::string big = "\"" + std::string(16 * 1024, 'x') + "\"";
  std::uint64_t recorded = 0;
  std::string message;
  {
    ResultStore s(mnt / "r.db", "job-1");
    try {
      for (std::uint64_t row = 0; row < 1000; ++row) {
        s.record_task(row, 0, {row}, {big}, "w1");
        ++recorded;
      }
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
  }
  REQUIRE(recorded < 1000);
  CHECK(recorded > 0);
  CHECK_THAT(message, Catch::Matchers::ContainsSubstring((mnt / "r.db").string()));
  CHECK_THAT(message,
             Catch::Matchers::ContainsSubstring(": no room to record the results of task "));
  CHECK_THAT(message, Catch::Matchers::ContainsSubstring("it needs about 16.4 KB more, and " +
                                                         mnt.string() + " has "));
  CHECK_THAT(message, !Catch::Matchers::ContainsSubstring("cannot rollback"));

  // Everything recorded before the disk filled is still there once there is room again.
  std::filesystem::copy_file(mnt / "r.db", dir / "r.db");
  if (std::filesystem::exists(mnt / "r.db-wal")) {
    std::filesystem::copy_file(mnt / "r.db-wal", dir / "r.db-wal");
  }
  ResultStore s(dir / "r.db", "job-1");
  std::vector<std::size_t> counts{1000};
  auto done = s.done_rows(counts);
  std::uint64_t found = 0;
  for (bool d : done[0])
    found += d ? 1 : 0;
  CHECK(found == recorded);

  // The output on the full disk: named, with what it needs and what is free; no partial file.
  Dataset d;
  for (std::uint64_t row = 0; row < recorded; ++row) {
    DatasetRow r;
    r.id_json = std::to_string(row);
    d.rows.push_back(r);
  }
  std::string output_message;
  try {
    s.write_output(mnt / "out.jsonl", {"ctx"}, {&d});
  } catch (const std::runtime_error& e) {
    output_message = e.what();
  }
  CHECK_THAT(output_message, Catch::Matchers::ContainsSubstring("cannot write the output"));
  CHECK_THAT(output_message,
             Catch::Matchers::ContainsSubstring("(No space left on device): it needs "));
  CHECK_THAT(output_message, Catch::Matchers::ContainsSubstring(" free. Every result is safe in "));
  CHECK(!std::filesystem::exists(mnt / "out.jsonl"));
}
