// Experiment specs: what a spec file means (the grid and its cells), and every mistake in one
// reported with the file and the key at fault.

#include <catch2/catch_test_macros.hpp>

#include <set>
#include <vector>

#include "experiments/spec.hpp"
#include "tests/experiments/helpers.hpp"

namespace hearth::experiments {
namespace {

using testing::input_error;
using testing::kDataDir;
using testing::write_file;

std::string grid_spec() {
  return testing::data_spec("grid.toml");
}

TEST_CASE("a spec expands to every cell, trace outermost and seed innermost") {
  const testing::Scratch scratch("grid");
  const auto& dir = scratch.path;
  const ExperimentSpec spec = load_spec(write_file(dir / "grid.toml", grid_spec()));
  const std::vector<Cell> cells = expand_grid(spec);
  REQUIRE(cells.size() == 16);  // 2 traces x 1 workload x 2 policies x 2 batch sizes x 2 seeds
  std::vector<std::string> keys;
  for (const Cell& c : cells)
    keys.push_back(cell_key(spec, c));
  CHECK(keys[0] == "file__w__pcm-lru-fixed__b10__s1");
  CHECK(keys[1] == "file__w__pcm-lru-fixed__b10__s2");
  CHECK(keys[2] == "file__w__pcm-lru-fixed__b20__s1");
  CHECK(keys[4] == "file__w__adaptive-lru-fixed__b10__s1");
  CHECK(keys[8] == "static2__w__pcm-lru-fixed__b10__s1");
  CHECK(keys[15] == "static2__w__adaptive-lru-fixed__b20__s2");
  CHECK(std::set<std::string>(keys.begin(), keys.end()).size() == 16);
}

TEST_CASE("a bare placement takes its own eviction and granularity; a triple is taken as is") {
  const testing::Scratch scratch("policies");
  const auto& dir = scratch.path;
  std::string text = grid_spec();
  text.replace(text.find("policies = "),
               text.find('\n', text.find("policies = ")) - text.find("policies = "),
               R"(policies = ["naive", "adaptive", "pcm/cost/adaptive"])");
  const ExperimentSpec spec = load_spec(write_file(dir / "p.toml", text));
  REQUIRE(spec.policies.size() == 3);
  CHECK(spec.policies[0].eviction == "lru");
  CHECK(spec.policies[0].granularity == "fixed");
  CHECK(spec.policies[1].eviction == "cost");
  CHECK(spec.policies[1].granularity == "adaptive");
  CHECK(spec.policies[2].placement == "pcm");
  CHECK(spec.policies[2].eviction == "cost");
  CHECK(spec.policies[2].granularity == "adaptive");
  CHECK(spec.policies[2].label == "pcm/cost/adaptive");
}

TEST_CASE("a static pool is its workers up from time 0 for good") {
  const testing::Scratch scratch("static");
  const auto& dir = scratch.path;
  const ExperimentSpec spec = load_spec(write_file(dir / "s.toml", grid_spec()));
  const TraceSource& t = spec.traces[1];
  CHECK(t.kind == "static");
  REQUIRE(t.generator);
  CHECK(t.generator->initial == 2);
  CHECK(t.generator->max_held == 2);
  CHECK(t.generator->lifetime.kind == traces::Lifetime::Kind::unlimited);
  CHECK(t.generator->reclaim.rate_per_h == 0);
}

TEST_CASE("fingerprints are stable and change with anything that changes the result") {
  const testing::Scratch scratch("fingerprint");
  const auto& dir = scratch.path;
  const ExperimentSpec a = load_spec(write_file(dir / "a.toml", grid_spec()));
  const ExperimentSpec b = load_spec(write_file(dir / "b.toml", grid_spec()));
  std::string more = grid_spec();
  more.replace(more.find("inferences = 100"), 16, "inferences = 101");
  const ExperimentSpec c = load_spec(write_file(dir / "c.toml", more));
  const Cell cell = expand_grid(a)[0];
  CHECK(cell_fingerprint(a, cell) == cell_fingerprint(b, cell));
  CHECK(cell_fingerprint(a, cell) != cell_fingerprint(c, cell));
  CHECK(cell_fingerprint(a, expand_grid(a)[0]) != cell_fingerprint(a, expand_grid(a)[1]));
}

// Each mistake: the text replaced in the tiny spec (or appended), and the exact message.
struct Mistake {
  std::string find;
  std::string replace;
  std::string message;  // after "<file>: "
};

TEST_CASE("mistakes in a spec are reported with the file and the key") {
  const testing::Scratch scratch("mistakes");
  const auto& dir = scratch.path;
  const std::string data = kDataDir.string();
  const std::vector<Mistake> mistakes = {
      {"name = \"tiny\"", "name = \"tiny\"\nspeed = 2",
       "key speed: unknown key (known here: name, cluster, traces, workloads, policies, "
       "batch_sizes, seeds, replication, upload_cap, detection_delay_s, gantt, plots)"},
      {"policies = [\"naive\", \"pcm\"]\n", "", "key policies: missing"},
      {"policies = [\"naive\", \"pcm\"]", "policies = [\"naive\", \"fast\"]",
       "key policies[1]: unknown placement policy 'fast' (known: naive, pcm, adaptive)"},
      {"policies = [\"naive\", \"pcm\"]", "policies = [\"pcm/mru/fixed\"]",
       "key policies[0]: unknown eviction policy 'mru' (known: lru, cost)"},
      {"policies = [\"naive\", \"pcm\"]", "policies = [\"pcm/lru\"]",
       "key policies[0]: 'pcm/lru' is neither PLACEMENT nor PLACEMENT/EVICTION/GRANULARITY"},
      {"policies = [\"naive\", \"pcm\"]", "policies = [\"pcm\", \"pcm/lru/fixed\"]",
       "key policies[1]: the same as policies[0]"},
      {"policies = [\"naive\", \"pcm\"]", "policies = \"pcm\"", "key policies: must be a list"},
      {"batch_sizes = [10, 50]", "batch_sizes = [10, 0]",
       "key batch_sizes[1]: must be a whole number, at least 1"},
      {"batch_sizes = [10, 50]", "batch_sizes = []", "key batch_sizes: is empty"},
      {"batch_sizes = [10, 50]", "batch_sizes = [10, 50]\nseeds = [3, 3]",
       "key seeds[1]: the same as seeds[0]"},
      {"one-worker.csv", "no-such-trace.csv",
       fmt::format("key traces[0].file: no such file: {}/no-such-trace.csv", data)},
      {"name = \"one\"", "name = \"one two\"",
       "key traces[0].name: 'one two' is not a usable name (letters, digits, '.', '-' and single "
       "'_'; not starting with '.')"},
      {"name = \"one\"", "name = \"one\"\nlifetime = \"exp:1h\"",
       "key traces[0].lifetime: only a generated trace takes generator settings"},
      {"file = \"" + data + "/one-worker.csv\"",
       "file = \"" + data + "/one-worker.csv\"\ngenerate = \"campus\"",
       "key traces[0]: needs exactly one of file, generate and static"},
      {"file = \"" + data + "/one-worker.csv\"", "generate = \"campus\"",
       "key traces[0].generate: unknown GPU type 'TITANX-12GB' (the cluster description has G, "
       "Small)"},
      {"file = \"" + data + "/one-worker.csv\"",
       "generate = \"campus\"\npool = \"G=2\"\n"
       "arrivals = \"poisson:fast\"",
       "key traces[0].arrivals: 'poisson:fast': expected poisson:RATE_PER_H or "
       "bursts:MEAN_GAP:SIZE"},
      {"file = \"" + data + "/one-worker.csv\"", "static = \"G=0\"",
       "key traces[0].static: pool 'G=0': expected GPU_TYPE=COUNT,... like "
       "A100-40GB=32,T4-16GB=47"},
      {"size_bytes = 1e9", "size_bytes = 2e10",
       "key workloads[0].contexts[0].size_bytes: context model (2e+10 bytes) fits on no GPU type "
       "of " +
           data + "/round.toml"},
      {"one-worker.csv", "small-only.csv",
       "key workloads[0].contexts[0].size_bytes: context model (1e+09 bytes) fits on no GPU of "
       "trace 'one' (Small)"},
      {"inferences = 100", "inferences = 0",
       "key workloads[0].contexts[0].inferences: must be a whole number, at least 1"},
      {"", "[[gantt]]\npolicy = \"adaptive\"\n",
       "key gantt[0].policy: 'adaptive' is not in the spec (it has naive, pcm)"},
      {"", "[[gantt]]\nbatch_size = 20\n",
       "key gantt[0].batch_size: 20 is not in the spec (it has 10, 50)"},
      {"", "[plots]\nfigures = [\"pie\"]\n",
       "key plots.figures[0]: unknown figure 'pie' (known: makespan_vs_batch, makespan_vs_churn, "
       "ratio_to_bound, gpu_seconds, gantt)"},
  };
  for (const Mistake& m : mistakes) {
    std::string text = testing::tiny_spec();
    if (m.find.empty()) {
      text += m.replace;
    } else {
      REQUIRE(text.find(m.find) != std::string::npos);
      text.replace(text.find(m.find), m.find.size(), m.replace);
    }
    const std::string path = write_file(dir / "spec.toml", text);
    CAPTURE(m.replace);
    CHECK(input_error([&] { load_spec(path); }) == fmt::format("{}: {}", path, m.message));
  }
}

TEST_CASE("a trace file's own mistakes are reported at its line") {
  const testing::Scratch scratch("trace-line");
  const auto& dir = scratch.path;
  std::string text = testing::tiny_spec();
  text.replace(text.find("one-worker.csv"), 14, "unknown-type.csv");
  const std::string path = write_file(dir / "spec.toml", text);
  CHECK(input_error([&] { load_spec(path); }) ==
        fmt::format("{}/unknown-type.csv:3: unknown GPU type 'H100-80GB' (the cluster "
                    "description has G, Small)",
                    kDataDir.string()));
}

TEST_CASE("a spec that is not there, or not TOML or JSON, is the user's error") {
  CHECK(input_error([] { load_spec("/nonexistent/spec.toml"); }) ==
        "/nonexistent/spec.toml: no such file");
  const testing::Scratch scratch("format");
  const auto& dir = scratch.path;
  const std::string yaml = write_file(dir / "spec.yaml", "name: x\n");
  CHECK(input_error([&] { load_spec(yaml); }) == yaml + ": expected a .toml or .json file");
}

}  // namespace
}  // namespace hearth::experiments
