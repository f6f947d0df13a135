// The manager's record of a run (run_monitor.hpp) and its checks of workers' results
// (result_check.hpp), on hand-made events with a clock the test sets.

#include <catch2/catch_test_macros.hpp>

#include <nlohmann/json.hpp>
#include <sstream>

#include "real_backend/manager/result_check.hpp"
#include "real_backend/manager/run_monitor.hpp"
#include "tests/temp_dir.hpp"

using namespace hearth;
using namespace hearth::real;
using hearth::testing::TempDir;
using nlohmann::json;

namespace {

InferenceSettings classify_settings() {
  InferenceSettings s;
  s.task = TaskKind::classify;
  s.labels = {"yes", "no"};
  s.label_tokens = {{1}, {2}};
  return s;
}

}  // namespace

namespace {

// A problem as "what" when the context may be to blame, "malformed: what" when only the worker can.
std::string problem(const InferenceSettings& s, const std::vector<std::string>& results,
                    std::size_t count) {
  ResultProblem p = result_problem(s, results, count);
  return p.malformed ? "malformed: " + p.what : p.what;
}

}  // namespace

TEST_CASE("results are checked against the task: labels, scores, tokens, counts") {
  InferenceSettings c = classify_settings();
  const std::string good = R"({"label":"yes","scores":{"yes":-0.1,"no":-2.5}})";
  CHECK(problem(c, {good, R"({"error":"too long"})"}, 2).empty());
  CHECK(problem(c, {good}, 2) == "malformed: 1 results for 2 inputs");
  CHECK(problem(c, {"{"}, 1) == "malformed: result 0: not JSON");
  CHECK(problem(c, {R"({"error":3})"}, 1) == "malformed: result 0: an error that is not text");
  CHECK(problem(c, {"[]"}, 1) == "malformed: result 0: not an object");
  CHECK(problem(c, {R"({"label":"maybe","scores":{"yes":-1,"no":-2}})"}, 1) ==
        "malformed: result 0: label \"maybe\" is not one of the job's");
  CHECK(problem(c, {R"({"label":")" + std::string(5000, 'x') + R"(","scores":{}})"}, 1) ==
        "malformed: result 0: label \"" + std::string(60, 'x') +
            "... (5000 bytes)\" is not one of the job's");
  CHECK(problem(c, {R"({"label":"yes"})"}, 1) == "malformed: result 0: no scores");
  CHECK(problem(c, {R"({"label":"yes","scores":{"yes":-1}})"}, 1) ==
        "malformed: result 0: 1 scores for 2 labels");
  CHECK(problem(c, {R"({"label":"yes","scores":{"yes":-1,"maybe":-2}})"}, 1) ==
        "malformed: result 0: no score for label \"no\"");
  CHECK(problem(c, {R"({"label":"yes","scores":{"yes":-1,"no":"low"}})"}, 1) ==
        "malformed: result 0: the score of \"no\" is string, not a number");
  CHECK(problem(c, {R"({"label":"yes","scores":{"yes":-1,"no":[[[1,2,3]]]}})"}, 1) ==
        "malformed: result 0: the score of \"no\" is array, not a number");
  // What a model gone wrong gives (NaN is null in JSON): maybe the context's fault.
  CHECK(problem(c, {R"({"label":"yes","scores":{"yes":null,"no":null}})"}, 1) ==
        "result 0: the score of \"yes\" is not a number");
  CHECK(problem(c, {R"({"label":"yes","scores":{"yes":2,"no":1}})"}, 1) ==
        "result 0: the score of \"yes\" is 2, not a log-probability");
  CHECK(problem(c, {R"({"label":"no","scores":{"yes":-0.1,"no":-2}})"}, 1) ==
        "result 0: label \"no\" is not the best scored");
  // The first problem is the one told, with its blame.
  CHECK(problem(c, {good, R"({"label":"yes","scores":{"yes":null,"no":-1}})", "{"}, 3) ==
        "result 1: the score of \"yes\" is not a number");

  InferenceSettings g;
  g.task = TaskKind::generate;
  g.max_new_tokens = 3;
  CHECK(problem(g, {R"({"text":"ab","tokens":[5,6],"finish":"stop"})"}, 1).empty());
  CHECK(problem(g, {R"({"text":"ab","tokens":[5,6],"finish":"length"})"}, 1) ==
        "malformed: result 0: finish \"length\" after 2 of 3 tokens");
  CHECK(problem(g, {R"({"text":"abcd","tokens":[5,6,7,8],"finish":"stop"})"}, 1) ==
        "malformed: result 0: 4 tokens, more than max_new_tokens 3");
  CHECK(problem(g, {R"({"tokens":[5],"finish":"stop"})"}, 1) == "malformed: result 0: no text");

  InferenceSettings none;
  none.has_model = false;
  none.task = TaskKind::noop;
  CHECK(problem(none, {"null"}, 1).empty());
  CHECK(problem(none, {"1"}, 1) == "malformed: result 0: a value for no model");
}

TEST_CASE("two workers' results agree within the tolerance, or the first difference is named") {
  InferenceSettings c = classify_settings();
  const std::string a = R"({"label":"yes","scores":{"yes":-0.10,"no":-2.5}})";
  const std::string near = R"({"label":"yes","scores":{"yes":-0.12,"no":-2.5}})";
  const std::string other = R"({"label":"no","scores":{"yes":-3,"no":-0.1}})";
  CHECK(results_differ(c, {a}, {near}, 0.05).empty());
  CHECK(results_differ(c, {a}, {near}, 0.01).starts_with("result 0: the score of \"yes\""));
  CHECK(results_differ(c, {a, a}, {a, other}, 0.05) == R"(result 1: label "yes" against "no")");
  CHECK(results_differ(c, {a}, {R"({"error":"x"})"}, 0.05) ==
        "result 0: an error against a result");
}

TEST_CASE("the run's record follows each worker through its states, and writes every event") {
  TempDir dir;
  double now = 0;
  RunMonitorSetup setup;
  setup.total = 100;
  setup.done_before = 20;
  setup.contexts = {{"plain", 1e6}};
  setup.events_path = dir / "events.jsonl";
  RunMonitor m(setup, [&] { return now; });

  m.worker_joined(0, "w0", "h100", "10.0.0.1");
  now = 1;
  m.stage_started(0, 0, Tier::disk, "manager", kNoWorker);
  now = 3;
  m.stage_ready(0, 0, Tier::disk);
  m.stage_started(0, 0, Tier::gpu, "lower_tier", kNoWorker);
  now = 4;
  m.stage_ready(0, 0, Tier::gpu);
  m.task_started(0, TaskSpec{7, 11, 0, 0, 40}, false);
  now = 8;
  m.task_finished(0, 11);
  m.worker_joined(1, "w1", "a10", "10.0.0.2");
  m.stage_started(1, 0, Tier::disk, "peer", 0);
  now = 9;
  m.stage_failed(1, 0, Tier::disk, "the peer is gone");
  m.worker_lost(1, "its connection closed");
  now = 10;

  RunTotals t;
  t.done = 40;
  t.pending = 40;
  json s = m.snapshot(t);
  CHECK(s["progress"]["done"] == 60);
  CHECK(s["progress"]["total"] == 100);
  CHECK(s["progress"]["rate_per_s"] == 4.0);  // 40 in 10 s
  CHECK(s["progress"]["eta_s"] == 10.0);
  CHECK(s["bytes"]["manager"] == 1e6);
  CHECK(s["bytes"]["peer"] == 0.0);
  const json& w0 = s["workers"][0];
  CHECK(w0["state"] == "idle");
  CHECK(w0["contexts"]["gpu"] == json::array({"plain"}));
  CHECK(w0["speed"] == 10.0);  // 40 inferences in 4 s of computing
  CHECK(s["workers"][1]["state"] == "lost");
  CHECK(s["workers"][1]["left_s"] == 9.0);
  CHECK(s["gpu_types"][0]["gpu_type"] == "a10");
  CHECK(s["gpu_types"][1]["per_s"] == 10.0);
  CHECK(s["errors"][0]["what"] == "stage of plain to disk failed: the peer is gone");

  std::vector<std::string> w0_segments;
  for (const json& seg : s["timeline"]) {
    if (seg["worker"] == "w0") {
      w0_segments.push_back(seg["state"].get<std::string>() + " " +
                            std::to_string(seg["start_s"].get<int>()) + "-" +
                            std::to_string(seg["end_s"].get<int>()));
    }
  }
  CHECK(w0_segments ==
        std::vector<std::string>{"idle 0-1", "loading 1-4", "computing 4-8", "idle 8-10"});

  m.ended("finished", "", 60);
  std::istringstream events(testing::read_file(dir / "events.jsonl"));
  std::vector<std::string> kinds;
  for (std::string line; std::getline(events, line);)
    kinds.push_back(json::parse(line)["event"]);
  CHECK(kinds == std::vector<std::string>{
                     "run_started", "worker_joined", "stage_started", "stage_ready",
                     "stage_started", "stage_ready", "task_started", "task_finished",
                     "worker_joined", "stage_started", "stage_failed", "worker_lost", "run_ended"});
}
