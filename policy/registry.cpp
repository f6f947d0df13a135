#include "policy/registry.hpp"

#include <fmt/format.h>

#include "policy/errors.hpp"

namespace hearth {

const std::vector<PolicyInfo>& known_policies() {
  static const std::vector<PolicyInfo> policies = {
      {"placement", "naive",
       "the paper's baseline: every task loads its context from shared storage, then drops it"},
      {"placement", "pcm",
       "the paper's pervasive context management: contexts stay resident, work goes where they "
       "are, new workers are seeded by peers"},
      {"placement", "adaptive",
       "ours: load only where it shortens the run (load path, queue, preemption risk), throttle "
       "shared storage, back up the last tasks on the fastest GPUs"},
      {"eviction", "lru", "evict the least recently used context first"},
      {"eviction", "cost",
       "keep what is still in demand and expensive to reload, per byte; evict the rest first"},
      {"granularity", "fixed", "every task has --batch-size inferences"},
      {"granularity", "adaptive",
       "batch per worker from its speed, the per-task overhead and the observed preemption "
       "rate, at most --batch-size"},
      {"replication", "flow",
       "seed new workers from peers by min-cost max-flow under per-peer upload caps"},
      {"replication", "greedy", "seed each new worker from the first peer with a free slot"},
  };
  return policies;
}

namespace {

[[noreturn]] void unknown(const char* kind, const std::string& name) {
  std::string known;
  for (const auto& p : known_policies()) {
    if (p.kind == kind) known += (known.empty() ? "" : ", ") + p.name;
  }
  throw InputError(fmt::format("unknown {} policy '{}' (known: {})", kind, name, known));
}

}  // namespace

void select_placement(PolicyChoice& choice, const std::string& placement) {
  choice.placement = placement;
  bool adaptive = placement == "adaptive";
  choice.eviction = adaptive ? "cost" : "lru";
  choice.granularity = adaptive ? "adaptive" : "fixed";
}

PolicySet make_policies(const PolicyChoice& choice) {
  if (choice.batch_size == 0) throw InputError("batch size must be at least 1");
  if (choice.upload_cap < 1) throw InputError("upload cap must be at least 1");
  PolicySet set;
  if (choice.placement == "naive") {
    set.placement = make_naive_placement();
  } else if (choice.placement == "pcm") {
    set.placement = make_pcm_placement(choice.upload_cap);
  } else if (choice.placement == "adaptive") {
    set.placement = make_adaptive_placement();
  } else {
    unknown("placement", choice.placement);
  }
  if (choice.eviction == "lru") {
    set.eviction = make_lru_eviction();
  } else if (choice.eviction == "cost") {
    set.eviction = make_cost_eviction();
  } else {
    unknown("eviction", choice.eviction);
  }
  if (choice.granularity == "fixed") {
    set.granularity = make_fixed_granularity(choice.batch_size);
  } else if (choice.granularity == "adaptive") {
    set.granularity = make_adaptive_granularity(choice.batch_size);
  } else {
    unknown("granularity", choice.granularity);
  }
  if (choice.replication == "flow") {
    set.replication = make_flow_replication();
  } else if (choice.replication == "greedy") {
    set.replication = make_greedy_replication();
  } else {
    unknown("replication", choice.replication);
  }
  return set;
}

}  // namespace hearth
