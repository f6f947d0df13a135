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

TEST_CASE("a real run's events are drawn as a simulated run's Gantt and GPU-time breakdown") {
  const testing::Scratch scratch("plot-events");
  const auto& dir = scratch.path;
  // w0 loads for 2 s, computes for 3 s, idles 1 s; w1 loads 1 s, computes 1 s and is lost 0.5 s
  // into its second task; the run ends at 6 s.
  const fs::path events = testing::write_file(
      dir / "run.jsonl",
      R"({"t":0,"event":"run_started","run":1,"job":"/x/fever.toml","total":20,"done_before":0,"contexts":[{"id":0,"name":"m","size_bytes":1}],"policy":"pcm"}
{"t":0,"event":"worker_joined","worker":0,"name":"w0","gpu_type":"cpu","host":"h"}
{"t":0,"event":"stage_started","worker":0,"context":0,"tier":"disk","source":"manager","from":null,"bytes":1}
{"t":2,"event":"stage_ready","worker":0,"context":0,"tier":"disk"}
{"t":2,"event":"task_started","worker":0,"task":0,"attempt":1,"context":0,"inferences":10,"verify":false}
{"t":2,"event":"worker_joined","worker":1,"name":"w1","gpu_type":"cpu","host":"h"}
{"t":2,"event":"stage_started","worker":1,"context":0,"tier":"disk","source":"peer","from":0,"bytes":1}
{"t":3,"event":"stage_ready","worker":1,"context":0,"tier":"disk"}
{"t":3,"event":"task_started","worker":1,"task":1,"attempt":2,"context":0,"inferences":5,"verify":false}
{"t":4,"event":"task_finished","worker":1,"attempt":2,"inferences":5}
{"t":4,"event":"task_started","worker":1,"task":2,"attempt":3,"context":0,"inferences":5,"verify":false}
{"t":4.5,"event":"worker_lost","worker":1,"reason":"its connection closed"}
{"t":5,"event":"task_finished","worker":0,"attempt":1,"inferences":10}
{"t":6,"event":"run_ended","end":"finished","reason":"","done":20,"given_up":0}
)");
  const auto written = plot_experiment(events.string());
  const fs::path out = dir / "run.plot";
  CHECK(written.size() == 4);
  CHECK(is_png(out / "figures" / "gantt_real.png"));
  CHECK(is_png(out / "figures" / "gpu_seconds.png"));
  CHECK(testing::read_file(out / "gantt" / "real" / "timeline.csv") ==
        "worker,state,start_s,end_s\n"
        "w0,loading,0.000000,2.000000\n"
        "w1,loading,2.000000,3.000000\n"
        "w1,computing,3.000000,4.000000\n"
        "w1,lost,4.000000,4.500000\n"
        "w0,computing,2.000000,5.000000\n"
        "w0,idle,5.000000,6.000000\n");
  const std::string results = testing::read_file(out / "results.csv");
  CHECK(results.ends_with(
      "real,done,pcm,real run,fever,,,6.000000,,8.500000,4.000000,3.000000,1.000000,0.500000\n"));

  testing::write_file(dir / "bad.jsonl", "{\"t\":0,\"event\":\"worker_joined\"}\n");
  CHECK_THROWS(plot_experiment((dir / "bad.jsonl").string()));
}

}  // namespace
}  // namespace hearth::experiments
