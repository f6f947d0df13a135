#include "policy/registry.hpp"

#include <fmt/format.h>

#include <utility>

#include "policy/errors.hpp"

namespace hearth {

namespace {

// One row per policy: what `hearth policies` says of it, and how make_policies builds it.
struct Entry {
  PolicyInfo info;
  void (*build)(PolicySet& set, const PolicyChoice& choice);
};

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      {{"placement", "naive",
        "the paper's baseline: every task loads its context from shared storage, then drops it"},
       [](PolicySet& s, const PolicyChoice&) { s.placement = make_naive_placement(); }},
      {{"placement", "pcm",
        "the paper's pervasive context management: contexts stay resident, work goes where they "
        "are, new workers are seeded by peers"},
       [](PolicySet& s, const PolicyChoice& c) { s.placement = make_pcm_placement(c.upload_cap); }},
      {{"placement", "adaptive",
        "ours: load only where it shortens the run (load path, queue, preemption risk), throttle "
        "shared storage, back up the last tasks on the fastest GPUs"},
       [](PolicySet& s, const PolicyChoice&) { s.placement = make_adaptive_placement(); }},
      {{"eviction", "lru", "evict the least recently used context first"},
       [](PolicySet& s, const PolicyChoice&) { s.eviction = make_lru_eviction(); }},
      {{"eviction", "cost",
        "keep what is still in demand and expensive to reload, per byte; evict the rest first"},
       [](PolicySet& s, const PolicyChoice&) { s.eviction = make_cost_eviction(); }},
      {{"granularity", "fixed", "every task has --batch-size inferences"},
       [](PolicySet& s, const PolicyChoice& c) {
         s.granularity = make_fixed_granularity(c.batch_size);
       }},
      {{"granularity", "adaptive",
        "batch per worker from its speed, the per-task overhead and the observed preemption "
        "rate, at most --batch-size"},
       [](PolicySet& s, const PolicyChoice& c) {
         s.granularity = make_adaptive_granularity(c.batch_size);
       }},
      {{"replication", "flow",
        "seed new workers from peers by min-cost max-flow under per-peer upload caps"},
       [](PolicySet& s, const PolicyChoice&) { s.replication = make_flow_replication(); }},
      {{"replication", "greedy", "seed each new worker from the first peer with a free slot"},
       [](PolicySet& s, const PolicyChoice&) { s.replication = make_greedy_replication(); }},
  };
  return entries;
}

// The entry of `kind` named `name`; throws InputError naming the known ones when there is none.
const Entry& find(const std::string& kind, const std::string& name) {
  std::vector<std::string> known;
  for (const Entry& e : registry()) {
    if (e.info.kind != kind) continue;
    if (e.info.name == name) return e;
    known.push_back(e.info.name);
  }
  throw InputError(
      fmt::format("unknown {} policy '{}' (known: {})", kind, name, fmt::join(known, ", ")));
}

}  // namespace

const std::vector<PolicyInfo>& known_policies() {
  static const std::vector<PolicyInfo> policies = [] {
    std::vector<PolicyInfo> infos;
    for (const Entry& e : registry())
      infos.push_back(e.info);
    return infos;
  }();
  return policies;
}

void select_placement(PolicyChoice& choice, const std::string& placement) {
  choice.placement = placement;
  bool adaptive = placement == "adaptive";
  choice.eviction = adaptive ? "cost" : "lru";
  choice.granularity = adaptive ? "adaptive" : "fixed";
}

void apply_overrides(PolicyChoice& choice, const PolicyOverrides& overrides) {
  if (overrides.placement) select_placement(choice, *overrides.placement);
  if (overrides.eviction) choice.eviction = *overrides.eviction;
  if (overrides.granularity) choice.granularity = *overrides.granularity;
  if (overrides.replication) choice.replication = *overrides.replication;
  if (overrides.batch_size) choice.batch_size = *overrides.batch_size;
  if (overrides.upload_cap) choice.upload_cap = static_cast<int>(*overrides.upload_cap);
}

PolicySet make_policies(const PolicyChoice& choice) {
  if (choice.batch_size == 0) throw InputError("batch size must be at least 1");
  if (choice.upload_cap < 1) throw InputError("upload cap must be at least 1");
  PolicySet set;
  const std::pair<const char*, const std::string*> chosen[] = {
      {"placement", &choice.placement},
      {"eviction", &choice.eviction},
      {"granularity", &choice.granularity},
      {"replication", &choice.replication}};
  for (const auto& [kind, name] : chosen)
    find(kind, *name).build(set, choice);
  return set;
}

}  // namespace hearth
