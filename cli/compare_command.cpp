// `hearth compare`: the placement policies side by side on the in-memory test cluster, a small
// heterogeneous pool with churn. A quick look at the policy core on its own; the simulator gives
// the real comparison.

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <string>

#include "cli/commands.hpp"
#include "policy/engine.hpp"
#include "policy/memory_cluster.hpp"

namespace hearth::cli {

namespace {

struct Outcome {
  double makespan_s = 0;
  EngineStats stats;
};

// 24 workers of three kinds; a third of them come and go; two 3.4 GB models share the work.
Outcome run_on_test_cluster(const PolicyChoice& policies, std::uint64_t inferences) {
  MemoryClusterConfig cc;
  cc.shared_storage_Bps = 0.5e9;
  cc.task_overhead_s = 2.0;
  cc.inference_s = 0.05;
  MemoryCluster cluster(cc);
  Workload work;
  work.add({0, "smollm2-1.7b", 3.4e9, 20.0}, inferences / 2);
  work.add({0, "smollm2-1.7b-instruct", 3.4e9, 20.0}, inferences - inferences / 2);
  cluster.set_contexts(work.contexts);
  EngineConfig config;
  config.policies = policies;
  config.estimates.task_overhead_s = cc.task_overhead_s;
  config.estimates.inference_s = cc.inference_s;
  config.estimates.shared_storage_Bps = cc.shared_storage_Bps;
  Engine engine(cluster, work, config);
  cluster.attach(engine);
  for (WorkerId w = 0; w < 24; ++w) {
    WorkerSpec s;
    s.id = w;
    s.name = fmt::format("gpu{}", w);
    s.gpu_type = w % 3 == 0 ? "A100" : w % 3 == 1 ? "V100" : "T4";
    s.speed = w % 3 == 0 ? 2.0 : w % 3 == 1 ? 1.0 : 0.5;
    s.gpu_memory_bytes = w % 3 == 2 ? 16e9 : 40e9;
    s.host_memory_bytes = 64e9;
    s.disk_bytes = 200e9;
    cluster.join_at(5.0 * w, s);
    if (w % 3 == 1) {  // churn: each V100 is reclaimed for a while, twice
      for (int k = 0; k < 2; ++k) {
        double t = 300.0 + 150.0 * w + 900.0 * k;
        cluster.lose_at(t, w);
        cluster.join_at(t + 120.0, s);
      }
    }
  }
  cluster.run();
  return {engine.stats().finished_s, engine.stats()};
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compare", "Compare placement policies on the in-memory test cluster (24 GPUs, churn)");
  auto inferences = std::make_shared<std::uint64_t>(200000);
  auto batch = std::make_shared<std::uint64_t>(100);
  cmd->add_option("--inferences", *inferences, "inferences in all")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", *batch, "inferences per task")->check(CLI::PositiveNumber);
  cmd->callback([inferences, batch] {
    fmt::print("{:<10} {:<12} {:>12} {:>8} {:>10} {:>12} {:>10}\n", "placement", "granularity",
               "makespan_s", "loads", "from_peer", "requeued", "backups");
    double pcm_s = 0;
    for (const char* placement : {"naive", "pcm", "adaptive"}) {
      PolicyChoice p;
      p.placement = placement;
      p.granularity = std::string(placement) == "adaptive" ? "adaptive" : "fixed";
      p.eviction = std::string(placement) == "adaptive" ? "cost" : "lru";
      p.batch_size = *batch;
      Outcome o = run_on_test_cluster(p, *inferences);
      std::uint64_t loads = 0;
      for (auto n : o.stats.context_loads)
        loads += n;
      fmt::print("{:<10} {:<12} {:>12.1f} {:>8} {:>10} {:>12} {:>10}\n", placement, p.granularity,
                 o.makespan_s, loads, o.stats.context_loads[static_cast<int>(LoadSource::peer)],
                 o.stats.tasks_requeued, o.stats.backups);
      if (std::string(placement) == "pcm") pcm_s = o.makespan_s;
    }
    (void)pcm_s;
  });
}

}  // namespace hearth::cli
