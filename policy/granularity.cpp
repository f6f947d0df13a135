#include "policy/granularity.hpp"

#include <algorithm>
#include <cmath>

namespace hearth {

namespace {

class FixedGranularity final : public Granularity {
 public:
  explicit FixedGranularity(std::uint64_t batch_size) : batch_size_(batch_size) {}
  std::string_view name() const override { return "fixed"; }
  std::uint64_t batch_size(const SchedulerState&, WorkerId, ContextId) const override {
    return batch_size_;
  }

 private:
  std::uint64_t batch_size_;
};

// A task of duration T on a worker preempted at rate lambda, with fixed overhead o, does T - o of
// useful work and loses about lambda * T^2 / 2 in expectation. Useful work per second spent is
// highest at T = o + sqrt(o^2 + 2 o / lambda) (Young's checkpoint interval, with overhead), so the
// batch is (T - o) / t inferences for a worker that needs t seconds per inference: smaller when
// preemptions are frequent, larger when the overhead is high or the worker fast. It is capped
// by the largest batch allowed and by the worker's share (by speed) of the work left, so that
// the last tasks end together, though not below 4 o / t, where overhead is a fifth of the task.
class AdaptiveGranularity final : public Granularity {
 public:
  explicit AdaptiveGranularity(std::uint64_t max_batch_size) : max_(max_batch_size) {}
  std::string_view name() const override { return "adaptive"; }
  std::uint64_t batch_size(const SchedulerState& state, WorkerId w, ContextId c) const override {
    const WorkerState& ws = state.worker(w);
    const Estimator& est = state.estimator();
    double overhead = est.config().task_overhead_s;
    double per_inference = est.inference_s(ws.spec);
    double rate = est.preemption_rate(ws.spec, state.now());
    double best = static_cast<double>(max_);
    if (rate > 0 && per_inference > 0) {
      best = std::sqrt(overhead * overhead + 2 * overhead / rate) / per_inference;
    }
    const ContextState& cs = state.context(c);
    if (cs.serving_speed > 0) {
      // The last tasks end together if each takes its share by speed, but never so small
      // that the overhead exceeds a fifth of the task.
      double share = static_cast<double>(cs.pending()) * ws.spec.speed / cs.serving_speed;
      double floor = per_inference > 0 ? 4 * overhead / per_inference : 1.0;
      best = std::min(best, std::max(share, floor));
    }
    best = std::clamp(best, 1.0, static_cast<double>(max_));
    return static_cast<std::uint64_t>(best);
  }

 private:
  std::uint64_t max_;
};

}  // namespace

std::unique_ptr<Granularity> make_fixed_granularity(std::uint64_t batch_size) {
  return std::make_unique<FixedGranularity>(batch_size);
}
std::unique_ptr<Granularity> make_adaptive_granularity(std::uint64_t max_batch_size) {
  return std::make_unique<AdaptiveGranularity>(max_batch_size);
}

}  // namespace hearth
