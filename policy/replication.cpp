#include "policy/replication.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/successive_shortest_path_nonnegative_weights.hpp>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace hearth {

namespace {

bool holds(const SeedHolder& h, ContextId c) {
  return std::binary_search(h.contexts.begin(), h.contexts.end(), c);
}

class GreedyReplication final : public Replication {
 public:
  std::string_view name() const override { return "greedy"; }
  SeedPlan plan(const SeedProblem& problem) const override {
    std::vector<int> slots;
    for (const auto& h : problem.holders)
      slots.push_back(h.free_slots);
    std::vector<int> shared = problem.shared_slots;
    SeedPlan plan(problem.requests.size());
    for (std::size_t i = 0; i < problem.requests.size(); ++i) {
      const SeedRequest& r = problem.requests[i];
      for (std::size_t h = 0; h < problem.holders.size() && !plan[i]; ++h) {
        const SeedHolder& holder = problem.holders[h];
        if (slots[h] > 0 && holder.worker != r.worker && holds(holder, r.context)) {
          --slots[h];
          plan[i] = Source::from_peer(holder.worker);
        }
      }
      if (!plan[i] && shared[r.context] > 0) {
        --shared[r.context];
        plan[i] = Source::shared();
      }
    }
    return plan;
  }
};

// Min-cost max-flow over holders and contexts: source -> holder (one unit edge per free upload
// slot) -> context c (if it holds c) -> sink (capacity: requests for c); and source -> shared
// storage (one unit edge per reader it may still take) -> shared storage for c (c's slots) -> c.
// Requests for one context are alike, so the flow only decides how many each holder seeds of
// each context. Among the plans that seed the most requests, the cost picks the fastest: a
// source's k-th concurrent transfer costs the time per byte it then gets (its bandwidth shared
// by k transfers, those it serves already counted), so fast, idle sources go first and load
// spreads. The graph has an edge per free slot and per (holder, requested context it holds).
class FlowReplication final : public Replication {
  using Traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
  using Graph = boost::adjacency_list<
      boost::vecS, boost::vecS, boost::directedS, boost::no_property,
      boost::property<
          boost::edge_capacity_t, long,
          boost::property<boost::edge_residual_capacity_t, long,
                          boost::property<boost::edge_reverse_t, Traits::edge_descriptor,
                                          boost::property<boost::edge_weight_t, double>>>>>;
  using Edge = Traits::edge_descriptor;

 public:
  std::string_view name() const override { return "flow"; }

  SeedPlan plan(const SeedProblem& problem) const override {
    const std::size_t holders = problem.holders.size();
    const std::size_t contexts = problem.shared_slots.size();
    std::vector<long> demand(contexts, 0);
    for (const SeedRequest& r : problem.requests)
      ++demand[r.context];

    // Vertices: source, sink, holders, one node per context, shared storage, and shared storage
    // for each context.
    const std::size_t source = 0, sink = 1, first_holder = 2, first_context = 2 + holders,
                      storage = first_context + contexts, first_shared = storage + 1;
    Graph g(first_shared + contexts);
    auto add = [&](std::size_t from, std::size_t to, long capacity, double cost) {
      Edge e = boost::add_edge(from, to, g).first;
      Edge back = boost::add_edge(to, from, g).first;
      boost::put(boost::edge_capacity, g, e, capacity);
      boost::put(boost::edge_capacity, g, back, 0);
      boost::put(boost::edge_weight, g, e, cost);
      boost::put(boost::edge_weight, g, back, -cost);
      boost::put(boost::edge_reverse, g, e, back);
      boost::put(boost::edge_reverse, g, back, e);
      return e;
    };
    auto flow = [&](Edge e) {
      return boost::get(boost::edge_capacity, g, e) -
             boost::get(boost::edge_residual_capacity, g, e);
    };

    // Picoseconds per byte for the k-th of transfers sharing `Bps`, rounded to a whole number so
    // that every sum of costs is exact. A double, not a long: Boost adds the distances of
    // vertices the residual graph no longer reaches (the largest value, twice) after each
    // augmentation; in a long that is signed overflow, in a double it is harmlessly infinite.
    auto cost = [](double Bps, int k) { return std::round(1e12 * k / Bps); };

    // seeds[c]: (holder edge, holder) pairs, in holder order.
    std::vector<std::vector<std::pair<Edge, WorkerId>>> seeds(contexts);
    for (std::size_t h = 0; h < holders; ++h) {
      const SeedHolder& holder = problem.holders[h];
      for (int k = 1; k <= holder.free_slots; ++k) {
        add(source, first_holder + h, 1, cost(holder.upload_Bps, holder.busy_slots + k));
      }
      for (ContextId c : holder.contexts) {
        if (c < contexts && demand[c] > 0) {
          seeds[c].push_back(
              {add(first_holder + h, first_context + c, demand[c], 0), holder.worker});
        }
      }
    }
    std::vector<std::optional<Edge>> shared(contexts);
    long readers = 0;
    for (ContextId c = 0; c < contexts; ++c) {
      if (demand[c] == 0) continue;
      add(first_context + c, sink, demand[c], 0);
      long slots = std::min<long>(problem.shared_slots[c], demand[c]);
      if (slots > 0) {
        add(storage, first_shared + c, slots, 0);
        shared[c] = add(first_shared + c, first_context + c, slots, 0);
        readers += slots;
      }
    }
    for (long k = 1; k <= readers; ++k) {
      add(source, storage, 1, cost(problem.shared_storage_Bps, problem.shared_readers + k));
    }

    boost::successive_shortest_path_nonnegative_weights(g, source, sink);

    // Hand the sources of each context to its requests in the order they were made.
    std::vector<std::vector<Source>> sources(contexts);
    for (ContextId c = 0; c < contexts; ++c) {
      for (const auto& [e, worker] : seeds[c]) {
        sources[c].insert(sources[c].end(), flow(e), Source::from_peer(worker));
      }
      if (shared[c]) sources[c].insert(sources[c].end(), flow(*shared[c]), Source::shared());
    }
    SeedPlan plan(problem.requests.size());
    std::vector<std::size_t> next(contexts, 0);
    for (std::size_t r = 0; r < problem.requests.size(); ++r) {
      ContextId c = problem.requests[r].context;
      if (next[c] < sources[c].size()) plan[r] = sources[c][next[c]++];
    }
    return plan;
  }
};

}  // namespace

std::unique_ptr<Replication> make_greedy_replication() {
  return std::make_unique<GreedyReplication>();
}
std::unique_ptr<Replication> make_flow_replication() {
  return std::make_unique<FlowReplication>();
}

}  // namespace hearth
