// Cluster descriptions and scenario files: what they say, and how a mistake in them is reported.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <fstream>

#include "policy/errors.hpp"
#include "sim_backend/cluster_description.hpp"
#include "sim_backend/report.hpp"
#include "sim_backend/scenario.hpp"
#include "sim_backend/simulation.hpp"
#include "tests/sim/fixtures.hpp"
#include "traces/summary.hpp"

using namespace hearth;
using namespace hearth::sim;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;
using Catch::Matchers::WithinAbs;

namespace {

// A fresh folder per test under the system's temporary folder.
std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("hearth-sim-test-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path.string();
}

const char* kClusterToml = R"(
reference_gpu = "A100-40GB"
latency_s = 0.0001

[manager]
network_Bps = 1.25e9

[shared_storage]
bandwidth_Bps = 2.5e9

[gpu_types."A100-40GB"]
gpu_memory_bytes = 40e9
host_memory_bytes = 256e9
disk_bytes = 1e12
disk_read_Bps = 2e9
host_to_gpu_Bps = 20e9
network_Bps = 1.25e9
per_batch_s = 0.5
per_inference_s = 0.02

[gpu_types."T4-16GB"]
gpu_memory_bytes = 16e9
host_memory_bytes = 64e9
disk_bytes = 250e9
disk_read_Bps = 0.5e9
disk_write_Bps = 0.4e9
host_to_gpu_Bps = 12e9
network_Bps = 1.25e9
per_batch_s = 0.8
per_inference_s = 0.08
)";

const char* kClusterJson = R"({
  "reference_gpu": "A100-40GB", "latency_s": 0.0001,
  "manager": {"network_Bps": 1.25e9},
  "shared_storage": {"bandwidth_Bps": 2.5e9},
  "gpu_types": {
    "A100-40GB": {"gpu_memory_bytes": 40e9, "host_memory_bytes": 256e9, "disk_bytes": 1e12,
                  "disk_read_Bps": 2e9, "host_to_gpu_Bps": 20e9, "network_Bps": 1.25e9,
                  "per_batch_s": 0.5, "per_inference_s": 0.02},
    "T4-16GB": {"gpu_memory_bytes": 16e9, "host_memory_bytes": 64e9, "disk_bytes": 250e9,
                "disk_read_Bps": 0.5e9, "disk_write_Bps": 0.4e9, "host_to_gpu_Bps": 12e9,
                "network_Bps": 1.25e9, "per_batch_s": 0.8, "per_inference_s": 0.08}
  }
})";

const char* kTrace =
    "time_s,event,worker,gpu_type,grace_s\n"
    "0,up,gpu-1,A100-40GB,\n"
    "0,up,gpu-2,T4-16GB,\n"
    "500,down,gpu-2,,\n";

std::string scenario_toml(const std::string& policy_table) {
  return R"(
name = "small"
cluster = "cluster.toml"
trace = "trace.csv"
seed = 3
)" + policy_table +
         R"(
[[contexts]]
name = "model"
size_bytes = 3.4e9
init_s = 20
inferences = 2000
)";
}

}  // namespace

TEST_CASE("a cluster description reads the same from TOML and from JSON") {
  auto dir = scratch("formats");
  ClusterDescription t = load_cluster_description(write(dir / "c.toml", kClusterToml));
  ClusterDescription j = load_cluster_description(write(dir / "c.json", kClusterJson));
  REQUIRE(t.gpu_types.size() == 2);
  REQUIRE(j.gpu_types.size() == 2);
  const GpuType& t4 = *t.find("T4-16GB");
  CHECK(t4.disk_write_Bps == 0.4e9);
  CHECK(t4.task_s(100) == 0.8 + 100 * 0.08);
  CHECK(t.speed(t4) == 0.25);  // 0.02 / 0.08: a quarter of the reference A100
  // disk_write_Bps defaults to disk_read_Bps.
  CHECK(t.find("A100-40GB")->disk_write_Bps == 2e9);
  CHECK(j.find("T4-16GB")->per_inference_s == t4.per_inference_s);
  CHECK(j.shared_storage_Bps == t.shared_storage_Bps);
  CHECK(j.latency_s == t.latency_s);
}

TEST_CASE("a missing or wrong value is reported with the file and the key path") {
  auto dir = scratch("errors");
  std::string text = kClusterToml;
  std::string missing = text;
  missing.erase(missing.find("per_inference_s = 0.08"), 22);
  CHECK_THROWS_WITH(
      load_cluster_description(write(dir / "m.toml", missing)),
      Equals((dir / "m.toml").string() + ": key gpu_types.T4-16GB.per_inference_s: missing"));

  std::string negative = text;
  negative.replace(negative.find("bandwidth_Bps = 2.5e9"), 21, "bandwidth_Bps = -1");
  CHECK_THROWS_WITH(load_cluster_description(write(dir / "n.toml", negative)),
                    Equals((dir / "n.toml").string() +
                           ": key shared_storage.bandwidth_Bps: must be above 0 (is -1)"));

  std::string typo = text;
  typo.replace(typo.find("latency_s"), 9, "latncy_s");
  CHECK_THROWS_WITH(load_cluster_description(write(dir / "t.toml", typo)),
                    ContainsSubstring("t.toml: key latncy_s: unknown key"));

  CHECK_THROWS_WITH(load_cluster_description(write(dir / "s.toml", "latency_s = [")),
                    ContainsSubstring("s.toml:1:"));
  CHECK_THROWS_AS(load_cluster_description((dir / "none.toml").string()), InputError);
}

TEST_CASE("a scenario names its cluster, trace, policies and contexts; flags override them") {
  auto dir = scratch("scenario");
  write(dir / "cluster.toml", kClusterToml);
  write(dir / "trace.csv", kTrace);
  std::string path = write(dir / "s.toml", scenario_toml("[policy]\nplacement = \"naive\"\n"));

  Scenario s = load_scenario(path);
  CHECK(s.name == "small");
  CHECK(s.seed == 3);
  CHECK(s.cluster.gpu_types.size() == 2);
  CHECK(s.trace.events.size() == 3);
  CHECK(s.workload.total_inferences() == 2000);
  CHECK(s.policies.placement == "naive");
  CHECK(s.policies.eviction == "lru");
  CHECK(s.policies.batch_size == 100);

  ScenarioOverrides o;
  o.policies.placement = "adaptive";
  o.policies.batch_size = 50;
  o.seed = 9;
  Scenario t = load_scenario(path, o);
  CHECK(t.policies.placement == "adaptive");
  CHECK(t.policies.eviction == "cost");
  CHECK(t.policies.granularity == "adaptive");
  CHECK(t.policies.batch_size == 50);
  CHECK(t.seed == 9);

  o.policies.eviction = "lru";
  CHECK(load_scenario(path, o).policies.eviction == "lru");
}

TEST_CASE("a trace whose GPU type the cluster does not know is reported at its line") {
  auto dir = scratch("unknown-type");
  write(dir / "cluster.toml", kClusterToml);
  write(dir / "trace.csv", std::string(kTrace) + "600,up,gpu-3,H100-80GB,\n");
  std::string path = write(dir / "s.toml", scenario_toml(""));
  CHECK_THROWS_WITH(load_scenario(path),
                    ContainsSubstring("trace.csv:5: unknown GPU type 'H100-80GB'"));
}

TEST_CASE("an unknown policy name is reported with the scenario that asked for it") {
  auto dir = scratch("unknown-policy");
  write(dir / "cluster.toml", kClusterToml);
  write(dir / "trace.csv", kTrace);
  std::string path = write(dir / "s.toml", scenario_toml("[policy]\nplacement = \"psychic\"\n"));
  CHECK_THROWS_WITH(load_scenario(path), ContainsSubstring("s.toml: unknown placement policy "
                                                           "'psychic'"));
}

TEST_CASE("a context that fits on no GPU type is refused") {
  auto dir = scratch("too-big");
  write(dir / "cluster.toml", kClusterToml);
  write(dir / "trace.csv", kTrace);
  std::string text = scenario_toml("");
  text.replace(text.find("3.4e9"), 5, "80e9");
  CHECK_THROWS_WITH(load_scenario(write(dir / "s.toml", text)),
                    ContainsSubstring("context model (80000000000 bytes) fits on no GPU type"));
}

TEST_CASE("a scenario may generate its trace from a preset, seeded by the scenario's seed") {
  auto dir = scratch("generated");
  write(dir / "cluster.toml", kClusterToml);
  std::string text = R"(
cluster = "cluster.toml"
seed = 4
[trace]
generate = "campus"
duration = "1h"
pool = "A100-40GB=10,T4-16GB=10"
max_held = 8
[[contexts]]
size_bytes = 1e9
inferences = 100
)";
  std::string path = write(dir / "g.toml", text);
  Scenario a = load_scenario(path);
  Scenario b = load_scenario(path);
  ScenarioOverrides o;
  o.seed = 5;
  Scenario c = load_scenario(path, o);
  REQUIRE(!a.trace.events.empty());
  CHECK(a.trace.events.size() == b.trace.events.size());
  CHECK(a.trace.events.back().time_s == b.trace.events.back().time_s);
  CHECK(a.trace.events.back().time_s != c.trace.events.back().time_s);
  CHECK_THAT(a.trace_origin, ContainsSubstring("seed 4"));
}

TEST_CASE("a generated trace may draw lifetimes from a trace file named relative to the scenario") {
  auto dir = scratch("empirical");
  write(dir / "cluster.toml", kClusterToml);
  write(dir / "lives.csv", kTrace);  // one lifetime ends: gpu-2's, 500 s
  std::string path = write(dir / "e.toml", R"(
cluster = "cluster.toml"
[trace]
generate = "campus"
duration = "1h"
pool = "A100-40GB=10,T4-16GB=10"
max_held = 8
lifetime = "empirical:lives.csv"
reclaim = "none"
[[contexts]]
size_bytes = 1e9
inferences = 100
)");
  Scenario s = load_scenario(path);
  CHECK_THAT(s.trace_origin,
             ContainsSubstring("--lifetime empirical:" + (dir / "lives.csv").string() + " "));
  const std::vector<double> lives = traces::completed_lifetimes_s(s.trace);
  REQUIRE(!lives.empty());
  for (double life : lives)
    CHECK_THAT(life, WithinAbs(500, 1e-6));  // times are whole milliseconds
}

TEST_CASE("a generator setting of the wrong type is reported once, at its key") {
  auto dir = scratch("generator-type");
  write(dir / "cluster.toml", kClusterToml);
  std::string path = write(dir / "g.toml", R"(
cluster = "cluster.toml"
[trace]
generate = "campus"
pool = 5
[[contexts]]
size_bytes = 1e9
inferences = 100
)");
  CHECK_THROWS_WITH(load_scenario(path), Equals(path + ": key trace.pool: must be a string"));
}

TEST_CASE("a generator setting the generator refuses is named once, at its key") {
  auto dir = scratch("generator-value");
  write(dir / "cluster.toml", kClusterToml);
  std::string path = write(dir / "g.toml", R"(
cluster = "cluster.toml"
[trace]
generate = "campus"
arrivals = "poisson"
[[contexts]]
size_bytes = 1e9
inferences = 100
)");
  CHECK_THROWS_WITH(load_scenario(path),
                    Equals(path + ": key trace.arrivals: 'poisson': expected poisson:RATE_PER_H or "
                                  "bursts:MEAN_GAP:SIZE"));
}

TEST_CASE("a generated trace past the generator's limits is refused at the trace table") {
  auto dir = scratch("generator-limits");
  write(dir / "cluster.toml", kClusterToml);
  std::string path = write(dir / "g.toml", R"(
cluster = "cluster.toml"
[trace]
generate = "campus"
duration = "365d"
arrivals = "poisson:1e12"
[[contexts]]
size_bytes = 1e9
inferences = 100
)");
  ScenarioOverrides small;
  small.generator_limits.max_steps = 1000;
  CHECK_THROWS_WITH(load_scenario(path, small),
                    StartsWith(path + ": key trace: the trace takes more than 1000 steps"));
}

TEST_CASE("a folder given as a scenario is called a folder, not an empty file") {
  auto dir = scratch("folder.toml");
  CHECK_THROWS_WITH(load_scenario(dir.string()),
                    Equals(dir.string() + ": is a folder, not a file"));
}

TEST_CASE("the bundled default scenario loads: the campus pool, 12 hours, a million inferences") {
  Scenario s = load_scenario(default_scenario_path());
  CHECK(s.workload.total_inferences() == 1000000);
  CHECK(s.cluster.gpu_types.size() == 7);  // the six of the campus pool, and K80s
  CHECK(s.policies.placement == "pcm");
  CHECK(s.trace.end_s == 43200);
}

TEST_CASE("the --out folder gets the summary, one row per attempt and one per timeline segment") {
  using namespace hearth::sim::testing;
  SimResult r =
      simulate(one_context({{0, "up", "a"}, {67, "down", "a"}, {67, "up", "a"}}, 100, "pcm"));
  auto dir = scratch("out");
  write_outputs(r, dir.string(), HostTimings::omit);
  auto lines = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  };
  auto tasks = lines(dir / "tasks.csv");
  REQUIRE(tasks.size() == 12);  // header, 10 finished attempts, 1 preempted
  CHECK(tasks[0] == "task,attempt,context,first,count,worker,gpu_type,start_s,end_s,outcome");
  CHECK(tasks[1] == "0,1,0,0,10,a,G,60.000000,65.000000,finished");
  CHECK(tasks[2] == "1,2,0,10,10,a,G,65.000000,67.000000,preempted");
  auto timeline = lines(dir / "timeline.csv");
  REQUIRE(timeline.size() >= 5);
  CHECK(timeline[0] == "worker,gpu_type,incarnation,start_s,end_s,state");
  CHECK(timeline[1] == "a,G,1,0.000000,60.000000,loading");
  CHECK(timeline[2] == "a,G,1,60.000000,65.000000,computing");
  CHECK(timeline[3] == "a,G,1,65.000000,67.000000,lost");
  CHECK(timeline[4] == "a,G,2,67.000000,127.000000,loading");
  CHECK(std::filesystem::exists(dir / "summary.json"));
  CHECK_THAT(summary_json(r.summary, HostTimings::omit), ContainsSubstring("\"makespan_s\": 172"));
  CHECK_THAT(summary_json(r.summary, HostTimings::omit), !ContainsSubstring("wall_s"));
  CHECK_THAT(summary_json(r.summary, HostTimings::include), ContainsSubstring("\"setup_wall_s\""));
}
