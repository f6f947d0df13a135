#include "policy/eviction.hpp"

#include <algorithm>
#include <tuple>

namespace hearth {

namespace {

// Least recently used first.
class LruEviction final : public Eviction {
 public:
  std::string_view name() const override { return "lru"; }
  void order_victims(const SchedulerState& state, WorkerId w, Tier,
                     std::vector<ContextId>& candidates) const override {
    const WorkerState& ws = state.worker(w);
    std::sort(candidates.begin(), candidates.end(), [&](ContextId a, ContextId b) {
      return std::tie(ws.on(a).last_used_s, a) < std::tie(ws.on(b).last_used_s, b);
    });
  }
};

// Keeps what is still in demand and expensive to bring back, per byte of room it takes:
// contexts without pending work go first (least recently used first), then those that are
// cheapest to reload per byte.
class CostEviction final : public Eviction {
 public:
  std::string_view name() const override { return "cost"; }
  void order_victims(const SchedulerState& state, WorkerId w, Tier tier,
                     std::vector<ContextId>& candidates) const override {
    const WorkerState& ws = state.worker(w);
    auto key = [&](ContextId c) {
      bool in_demand = state.context(c).pending() > 0;
      double value_per_byte =
          in_demand ? reload_s(state, ws, c, tier) / state.context(c).spec.size_bytes : 0.0;
      return std::make_tuple(in_demand, value_per_byte, ws.on(c).last_used_s, c);
    };
    std::sort(candidates.begin(), candidates.end(),
              [&](ContextId a, ContextId b) { return key(a) < key(b); });
  }

 private:
  // Seconds to bring context c back onto `tier` of worker ws from what would remain below it.
  static double reload_s(const SchedulerState& state, const WorkerState& ws, ContextId c,
                         Tier tier) {
    const ContextState& cs = state.context(c);
    const ContextOnWorker& on = ws.on(c);
    double size = cs.spec.size_bytes;
    double s = 0;
    if (tier == Tier::gpu) {
      s += Estimator::host_to_gpu_s(size, cs.spec.init_s, ws.spec);
      if (on.ready(Tier::host)) return s;
    }
    if (tier != Tier::disk) {
      s += Estimator::disk_to_host_s(size, ws.spec);
      if (on.ready(Tier::disk)) return s;
    }
    bool peer_elsewhere = cs.holders.size() > (cs.holders.count(ws.spec.id) ? 1u : 0u);
    return s + (peer_elsewhere
                    ? Estimator::peer_read_s(size, ws.spec, 0, ws.spec)
                    : state.estimator().shared_read_s(size, state.shared_readers(), ws.spec));
  }
};

}  // namespace

std::unique_ptr<Eviction> make_lru_eviction() {
  return std::make_unique<LruEviction>();
}
std::unique_ptr<Eviction> make_cost_eviction() {
  return std::make_unique<CostEviction>();
}

}  // namespace hearth
