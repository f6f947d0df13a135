#include "policy/replication.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/successive_shortest_path_nonnegative_weights.hpp>

#include <algorithm>
#include <cassert>

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

// Min-cost max-flow: source -> holder (capacity: free upload slots) -> request (1, if the
// holder has the request's context) -> sink (1); and source -> shared storage of context c
// (capacity: c's shared slots) -> request of c (1). Peer edges cost 1, shared storage edges 2,
// so among plans that seed the most requests the one with the fewest shared reads wins.
class FlowReplication final : public Replication {
  using Traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
  using Graph = boost::adjacency_list<
      boost::vecS, boost::vecS, boost::directedS, boost::no_property,
      boost::property<
          boost::edge_capacity_t, long,
          boost::property<boost::edge_residual_capacity_t, long,
                          boost::property<boost::edge_reverse_t, Traits::edge_descriptor,
                                          boost::property<boost::edge_weight_t, long>>>>>;
  using Edge = Traits::edge_descriptor;

 public:
  std::string_view name() const override { return "flow"; }

  SeedPlan plan(const SeedProblem& problem) const override {
    const std::size_t holders = problem.holders.size();
    const std::size_t requests = problem.requests.size();
    const std::size_t contexts = problem.shared_slots.size();
    // Vertices: source, sink, holders, requests, one shared-storage node per context.
    const std::size_t source = 0, sink = 1, first_holder = 2, first_request = 2 + holders,
                      first_shared = 2 + holders + requests;
    Graph g(first_shared + contexts);
    auto add = [&](std::size_t from, std::size_t to, long capacity, long cost) {
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

    std::vector<std::vector<std::pair<Edge, Source>>> choices(requests);
    for (std::size_t h = 0; h < holders; ++h) {
      add(source, first_holder + h, problem.holders[h].free_slots, 0);
    }
    for (ContextId c = 0; c < contexts; ++c) {
      long slots = std::min<long>(problem.shared_slots[c], static_cast<long>(requests));
      if (slots > 0) add(source, first_shared + c, slots, 0);
    }
    for (std::size_t r = 0; r < requests; ++r) {
      const SeedRequest& req = problem.requests[r];
      for (std::size_t h = 0; h < holders; ++h) {
        const SeedHolder& holder = problem.holders[h];
        if (holder.worker == req.worker || !holds(holder, req.context)) continue;
        choices[r].push_back(
            {add(first_holder + h, first_request + r, 1, 1), Source::from_peer(holder.worker)});
      }
      if (problem.shared_slots[req.context] > 0) {
        choices[r].push_back(
            {add(first_shared + req.context, first_request + r, 1, 2), Source::shared()});
      }
      add(first_request + r, sink, 1, 0);
    }

    boost::successive_shortest_path_nonnegative_weights(g, source, sink);

    SeedPlan plan(requests);
    for (std::size_t r = 0; r < requests; ++r) {
      for (const auto& [e, src] : choices[r]) {
        if (boost::get(boost::edge_residual_capacity, g, e) == 0) plan[r] = src;
      }
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
