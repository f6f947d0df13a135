// The hearth executable end to end: a manager and worker processes on this machine, with workers
// killed at random, the manager itself killed and restarted, a trace replayed, a worker preempted
// with notice. Every input id must come out exactly once, with the result a run without faults
// (or the model itself) gives.

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "real_backend/model/model_runtime.hpp"
#include "real_backend/wire/key_registry.hpp"
#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::testing;
using nlohmann::json;

namespace {

// A 2,000-prompt classification and a 200-prompt generation with the built-in model, in `dir`.
fs::path write_job(const TempDir& dir) {
  write_prompts(dir / "short.jsonl", 200);
  return write_classify_job(dir / "job.toml", 2000, 20, R"([[contexts]]
name = "continue"
model = "tiny.pt"
source = "shared"
task = "generate"
max_new_tokens = 6
dataset = "short.jsonl"
)");
}

// (context, id) -> result, from an output file; every key must appear once.
std::map<std::pair<std::string, std::string>, json> results_of(const fs::path& output) {
  std::map<std::pair<std::string, std::string>, json> out;
  std::istringstream in(read_file(output));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    auto key = std::pair{j.at("context").get<std::string>(), j.at("id").dump()};
    CHECK(out.count(key) == 0);
    out[key] = j.contains("result") ? j["result"] : json{{"error", j["error"]}};
  }
  return out;
}

void check_every_id_once(const std::map<std::pair<std::string, std::string>, json>& r) {
  CHECK(r.size() == 2200);
  for (int i = 0; i < 2000; ++i)
    CHECK(r.count({"verdict", "\"p" + std::to_string(i) + "\""}) == 1);
  for (int i = 0; i < 200; ++i)
    CHECK(r.count({"continue", "\"p" + std::to_string(i) + "\""}) == 1);
}

// The runs table of a state database: inferences finished by each run, in run order.
std::vector<int> inferences_per_run(const fs::path& db) {
  sqlite3* h = nullptr;
  std::vector<int> out;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_exec(
      h, "SELECT inferences FROM runs ORDER BY run",
      [](void* v, int, char** values, char**) {
        static_cast<std::vector<int>*>(v)->push_back(std::atoi(values[0]));
        return 0;
      },
      &out, nullptr);
  sqlite3_close(h);
  return out;
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(file));
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);
  return lines;
}

bool has_line(const std::vector<std::string>& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

// The id the manager gave the worker named `name`, from an events.log.
std::string worker_id(const std::vector<std::string>& events, const std::string& name) {
  for (const std::string& l : events) {
    std::istringstream in(l);
    std::string time, verb, id, n;
    in >> time >> verb >> id >> n;
    if (verb == "joined" && n == name) return id;
  }
  return "?";
}

}  // namespace

TEST_CASE("4 workers killed at random lose no input, run none twice and change no output",
          "[liveness]") {
  TempDir clean, faulty;
  write_job(clean);
  write_job(faulty);
  REQUIRE(exit_status(start_hearth({"run", (clean / "job.toml").string(), "--workers", "4", "-q"},
                                   clean / "run.log")) == 0);

  // Six kills, each of a worker in the middle of a task, after 150 more inferences: at most 900
  // of the 2,200 are done before the last kill, so the run cannot end before it.
  Gate gate(faulty / "gate");
  pid_t manager = start_hearth({"run", (faulty / "job.toml").string(), "--workers", "4"},
                               faulty / "run.log", behind(gate));
  kill_blocked_workers(manager, gate, 150, 6, 20251128);
  gate.open();
  CHECK(exit_status(manager) == 0);
  CHECK(lines_with(faulty / "run.log", ") lost: ") == 6);

  auto expected = results_of(clean / "out.jsonl");
  auto got = results_of(faulty / "out.jsonl");
  check_every_id_once(got);
  CHECK(got == expected);
}

TEST_CASE("a manager killed mid-run resumes where it was and reruns no finished task",
          "[liveness]") {
  TempDir dir;
  write_job(dir);
  fs::path db = dir / "job.state/results.db";
  // 600 inferences let through; of these, at most 19 on each of the 4 workers belong to a task
  // not finished yet (tasks of 20): at least 524 rows are recorded, and then the run waits.
  Gate gate(dir / "gate");
  gate.allow(600);
  pid_t manager = start_hearth({"run", (dir / "job.toml").string(), "--workers", "4", "-q"},
                               dir / "run1.log", behind(gate));
  REQUIRE(wait_for([&] { return recorded_rows(db) >= 500; }, 120));
  std::vector<pid_t> workers = children_of(manager);
  kill(manager, SIGKILL);
  CHECK(exit_status(manager) == 128 + SIGKILL);
  // Its workers die with it.
  CHECK(wait_for(
      [&] {
        return std::all_of(workers.begin(), workers.end(), [](pid_t w) { return kill(w, 0) != 0; });
      },
      10));
  int done_first = recorded_rows(db);
  CHECK(done_first <= 600);

  REQUIRE(exit_status(start_hearth({"run", (dir / "job.toml").string(), "--workers", "4", "-q"},
                                   dir / "run2.log")) == 0);
  CHECK(read_file(dir / "run2.log")
            .find(fmt::format("resuming run 2: {} of 2200 inferences were done before",
                              done_first)) != std::string::npos);
  // Per run, the inferences it finished: the second did exactly what the first had not.
  CHECK(inferences_per_run(db) == std::vector<int>{done_first, 2200 - done_first});

  auto got = results_of(dir / "out.jsonl");
  check_every_id_once(got);
  // Every result is what the model itself says for that prompt.
  real::ModelRuntime& rt = real::torch_runtime();
  rt.set_threads(1);
  auto model = rt.load(read_file(dir / "tiny.pt"), "cpu");
  for (int i : {0, 1, 599, 600, 1234, 1999}) {
    std::string prompt = json::parse(lines_of(dir / "prompts.jsonl")[i])["prompt"];
    std::string text = "Claim: " + prompt + "\nVerdict:";
    real::InferenceResult r = classify_one(*model, {text.begin(), text.end()}, {'S', 'R', 'N'});
    const json& out = got.at({"verdict", "\"p" + std::to_string(i) + "\""});
    CHECK(out["scores"]["SUPPORTS"].get<float>() == r.scores[0]);
    CHECK(out["scores"]["NOT-ENOUGH-INFO"].get<float>() == r.scores[2]);
  }
  for (int i : {0, 199}) {
    std::string prompt = json::parse(lines_of(dir / "short.jsonl")[i])["prompt"];
    real::InferenceResult r = generate_one(*model, {prompt.begin(), prompt.end()}, 6, -1);
    CHECK(got.at({"continue", "\"p" + std::to_string(i) + "\""})["tokens"] == json(r.tokens));
  }
}

TEST_CASE("a replayed trace starts workers, warns one with its grace, kills and restarts them",
          "[liveness]") {
  TempDir dir;
  write_job(dir);
  // 0.1 real seconds per trace second: t-1's notice 10 s in, with 1 s of grace; 11 s in, t-1 is
  // killed if it has not left yet, t-2 killed and started again, t-3 started. The notice must
  // find t-1 joined: 10 s is what a worker process may take to start on a saturated machine
  // under AddressSanitizer (1 s was not enough there).
  write_file(dir / "trace.csv",
             "time_s,event,worker,gpu_type,grace_s,attributes\n"
             "0,up,t-1,T4-16GB,,\n"
             "0,up,t-2,T4-16GB,,\n"
             "100,notice,t-1,,10,\n"
             "110,down,t-2,,,\n"
             "110,up,t-2,T4-16GB,,\n"
             "110,down,t-1,,,\n"
             "110,up,t-3,A100-40GB,,\n"
             "120,end,,,,\n");
  // No inference is done before the manager has seen every event of the trace.
  Gate gate(dir / "gate");
  fs::path log = dir / "run.log";
  pid_t manager =
      start_hearth({"run", (dir / "job.toml").string(), "--trace", (dir / "trace.csv").string(),
                    "--time-scale", "0.1", "--decision-log", (dir / "decisions").string()},
                   log, behind(gate));
  wait_for_log(log, "(t-1) will leave within 1.0 s", manager);
  wait_for_log(log, "(t-1) lost: ", manager);
  wait_for_log(log, "(t-2) joined: ", manager, 2);
  wait_for_log(log, "(t-3) joined: ", manager);
  gate.open();
  REQUIRE(exit_status(manager) == 0);
  check_every_id_once(results_of(dir / "out.jsonl"));
  auto events = lines_of(dir / "decisions/events.log");
  std::string t1 = worker_id(events, "t-1");
  CHECK(has_line(events, " joined " + t1 + " t-1 T4-16GB "));
  CHECK(has_line(events, " notice " + t1 + " 1"));
  CHECK(has_line(events, " lost " + t1));
  CHECK(has_line(events, " t-3 A100-40GB "));
  // t-2 went down and came back in the same instant: a new process joined.
  CHECK(std::count_if(events.begin(), events.end(), [](const std::string& l) {
          return l.find(" t-2 T4-16GB ") != std::string::npos;
        }) == 2);
}

TEST_CASE("a worker process sent SIGTERM announces its notice and leaves within its grace",
          "[liveness]") {
  TempDir dir;
  write_job(dir);
  pid_t manager = start_hearth(
      {"run", (dir / "job.toml").string(), "--decision-log", (dir / "decisions").string()},
      dir / "manager.log");
  std::string address = manager_address(dir / "manager.log");
  // The manager listens on loopback unless told otherwise.
  CHECK(address.rfind("127.0.0.1:", 0) == 0);
  Gate gate(dir / "gate");
  auto worker = [&](const std::string& name) {
    return start_hearth({"worker", "--manager", address, "--keys",
                         (dir / "job.state/keys/worker.key").string(), "--name", name, "--cache",
                         (dir / ("cache-" + name)).string(), "--device", "cpu", "--grace", "1"},
                        dir / (name + ".log"), behind(gate));
  };
  pid_t a = worker("w-a");
  pid_t b = worker("w-b");
  // a in the middle of a task whose next inference cannot end: only its grace can end its stay.
  gate.allow(300);
  REQUIRE(wait_for([&] { return gate.used() == 300 && gate.waiting(a); }, 120));
  kill(a, SIGTERM);
  // The wait allows the 1 s of grace and 29 s more for a loaded machine: a bound that only a
  // worker waiting for its task, or reading its grace in another unit, reaches.
  wait_for_log(dir / "manager.log", "(w-a) lost: it left", manager, 1, 30);
  CHECK(gate.waiting(a));
  gate.open();
  CHECK(exit_status(a) == 0);
  CHECK(read_file(dir / "w-a.log").find("preemption notice: leaving within 1.0 s") !=
        std::string::npos);
  CHECK(exit_status(manager) == 0);
  CHECK(exit_status(b, 10) == 0);
  check_every_id_once(results_of(dir / "out.jsonl"));
  auto events = lines_of(dir / "decisions/events.log");
  std::string id = worker_id(events, "w-a");
  CHECK(has_line(events, " notice " + id + " 1"));
  CHECK(has_line(events, " lost " + id));
}

TEST_CASE("a mistake in a job or its dataset stops hearth run with status 2, saying where") {
  TempDir dir;
  write_file(dir / "bad.toml", "output = \"out.jsonl\"\nworkers = 4\n");
  CHECK(exit_status(start_hearth({"run", (dir / "bad.toml").string()}, dir / "bad.log")) == 2);
  CHECK(read_file(dir / "bad.log") ==
        "hearth: " + (dir / "bad.toml").string() + ":2: unknown key \"workers\" in the job\n");

  write_noop_job(dir.path, 3, 1);
  write_file(dir / "prompts.jsonl", "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 1}\n");
  CHECK(exit_status(start_hearth({"run", (dir / "job.toml").string()}, dir / "dup.log")) == 2);
  CHECK(read_file(dir / "dup.log") ==
        "hearth: " + (dir / "prompts.jsonl").string() + ":3: id 1 appears twice\n");
}

TEST_CASE("hearth keys: a worker joins with a key issued to it; a revoked key is listed as such") {
  TempDir dir;
  write_noop_job(dir.path, 200, 10);
  fs::path state = dir / "job.state";
  auto keys = [&](std::vector<std::string> args, const std::string& log) {
    args.insert(args.begin(), "keys");
    return exit_status(start_hearth(args, dir / log));
  };
  // Issued before the run, as a batch script would, and handed to one worker.
  REQUIRE(keys({"issue", state.string(), "--label", "node-7"}, "issue.log") == 0);
  fs::path key = state / "keys/issued/node-7.key";
  CHECK(read_file(dir / "issue.log").find("hearth worker --keys " + key.string()) !=
        std::string::npos);
  CHECK(keys({"issue", state.string(), "--label", "node-7", "-o", (dir / "again.key").string()},
             "again.log") == 2);
  CHECK(read_file(dir / "again.log").find("an active key is labelled node-7 already") !=
        std::string::npos);
  pid_t manager = start_hearth({"run", (dir / "job.toml").string()}, dir / "manager.log");
  std::string address = manager_address(dir / "manager.log");
  pid_t worker = start_hearth({"worker", "--manager", address, "--keys", key.string(), "--name",
                               "node-7", "--cache", (dir / "cache").string(), "--device", "cpu"},
                              dir / "worker.log");
  CHECK(exit_status(manager) == 0);
  CHECK(exit_status(worker, 30) == 0);
  CHECK(ids_once(dir / "out.jsonl").size() == 200);
  // Revoked by label; a second time there is nothing left to revoke.
  CHECK(keys({"revoke", state.string(), "node-7"}, "revoke.log") == 0);
  CHECK(keys({"revoke", state.string(), "node-7"}, "revoke2.log") == 2);
  REQUIRE(keys({"list", state.string(), "--json"}, "list.log") == 0);
  json listed = json::parse(read_file(dir / "list.log"));
  REQUIRE(listed.size() == 2);
  CHECK(listed[0]["label"] == "shared");
  CHECK(listed[0]["revoked"] == false);
  CHECK(listed[1]["label"] == "node-7");
  CHECK(listed[1]["revoked"] == true);

  // hearth run --workers gives each worker process a key of its own, revoked when it ends.
  TempDir other;
  write_noop_job(other.path, 100, 10);
  REQUIRE(exit_status(start_hearth({"run", (other / "job.toml").string(), "--workers", "2"},
                                   other / "run.log")) == 0);
  CHECK(ids_once(other / "out.jsonl").size() == 100);
  std::vector<real::KeyEntry> local = real::read_key_registry(other / "job.state/keys/registry");
  REQUIRE(local.size() == 3);
  for (int i : {1, 2}) {
    CHECK(local[i].label.starts_with("local-"));
    CHECK(local[i].revoked);
  }
  CHECK(fs::is_empty(other / "job.state/workers/keys"));
}
