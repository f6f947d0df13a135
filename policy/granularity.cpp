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
// by the largest batch allowed and by the worker's share of the work left, so that the last
// tasks end together (docs/policies.md, "Granularity").
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
    if (cs.serving_speed > 0 && per_inference > 0) {
      // The last tasks end together if each server takes what it can do by the time all of them
      // would be done: the pending work, plus what their running attempts still need, plus
      // what the loading ones still wait (a ready worker need not leave work to those that
      // would start it late, nor a slow one take more than the fast ones can wait for).
      double reference_s = per_inference * ws.spec.speed;  // an inference at speed 1
      double end_s = (static_cast<double>(cs.pending()) * reference_s +
                      cs.loading_wait_s(state.now()) + cs.running_left_s(state.now())) /
                     cs.serving_speed;
      double share = end_s * ws.spec.speed / reference_s;
      best = std::min(best, share);
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
