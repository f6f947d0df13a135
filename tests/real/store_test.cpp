// The manager's record of finished work: what it keeps across restarts, and what it refuses.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "policy/errors.hpp"
#include "real_backend/manager/result_store.hpp"
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
