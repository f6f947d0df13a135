// The figures: `hearth experiment plot` runs experiments/plot.py with matplotlib on a small
// experiment's results and gets every figure as PNG and SVG.

#include <catch2/catch_test_macros.hpp>

#include <fstream>

#include "experiments/plot.hpp"
#include "experiments/runner.hpp"
#include "tests/experiments/helpers.hpp"

namespace hearth::experiments {
namespace {

namespace fs = std::filesystem;

bool is_png(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic(8, '\0');
  in.read(magic.data(), 8);
  return magic == "\x89PNG\r\n\x1a\n" && fs::file_size(path) > 10000;
}

bool is_svg(const fs::path& path) {
  return testing::read_file(path).find("<svg") != std::string::npos;
}

// Three generated churning pools of two G workers (so a churn axis), two policies, two batch
// sizes, one kept timeline: every figure has something to draw.
std::string small_experiment() {
  std::string traces;
  for (const char* life : {"10m", "30m", "2h"}) {
    traces += fmt::format(R"(
[[traces]]
name = "life-{0}"
generate = "campus"
pool = "G=3"
max_held = 2
initial = 2
arrivals = "poisson:60"
lifetime = "exp:{0}"
reclaim = "none"
duration = "4h"
)",
                          life);
  }
  return fmt::format(R"(
cluster = "{0}/round.toml"
policies = ["naive", "pcm"]
batch_sizes = [10, 50]
{1}
[[workloads]]
name = "w"
[[workloads.contexts]]
name = "model"
size_bytes = 1e9
init_s = 30
inferences = 400

[[gantt]]
policy = "pcm"
)",
                     testing::kDataDir.string(), traces);
}

TEST_CASE("plotting a small experiment writes every figure as PNG and SVG") {
  const testing::Scratch scratch("plot");
  const auto& dir = scratch.path;
  const ExperimentSpec spec =
      load_spec(testing::write_file(dir / "small.toml", small_experiment()));
  RunOptions options;
  options.out_dir = (dir / "out").string();
  options.jobs = 2;
  const RunReport r = run_experiment(spec, options);
  REQUIRE(r.failures.empty());
  REQUIRE(r.ran == 12);

  const auto written = plot_experiment(options.out_dir);
  CHECK(written.size() == 10);
  const fs::path figures = dir / "out" / "figures";
  for (const std::string name : {"makespan_vs_batch", "makespan_vs_churn", "ratio_to_bound",
                                 "gpu_seconds", "gantt_life-10m__w__pcm-lru-fixed__b10__s1"}) {
    CAPTURE(name);
    CHECK(is_png(figures / (name + ".png")));
    CHECK(is_svg(figures / (name + ".svg")));
  }

  const auto only = plot_experiment(options.out_dir, {"gantt"});
  CHECK(only.size() == 10);  // the others stay
}

TEST_CASE("plotting a folder without results is the user's error") {
  const testing::Scratch scratch("plot-empty");
  const auto& dir = scratch.path;
  CHECK(testing::input_error([&] { plot_experiment(dir.string()); }) ==
        fmt::format("{}: no results.csv (run hearth experiment run SPEC --out {} first)",
                    dir.string(), dir.string()));
  CHECK(testing::input_error([&] { plot_experiment(dir.string(), {"pie"}); }) ==
        "--only: unknown figure 'pie' (known: makespan_vs_batch, makespan_vs_churn, "
        "ratio_to_bound, gpu_seconds, gantt)");
}

}  // namespace
}  // namespace hearth::experiments
