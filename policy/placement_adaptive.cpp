#include "policy/placement.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth {

namespace {

// Ours. Decides by estimated completion time instead of by rule:
// - a worker runs the resident context whose pending work would take its servers longest;
// - a worker prefetches a context (a load that binds no task) only if the workers already
//   serving it would not drain its pending work before this one is ready (load time from the
//   cheapest path across its tiers, peers and shared storage), weighted by the chance it
//   survives the load at its GPU type's observed preemption rate; otherwise it waits;
// - at the end, when nothing is pending, an idle worker runs a backup attempt of a running task
//   it would finish well before its current runner: the last tasks go to the fastest GPUs;
// - shared storage is read by newcomers only while their links add up to less than its
//   bandwidth (seeding()); each peer uploads to one newcomer at a time, whatever the job's
//   upload cap (which is pcm's), so that a copy finishes, and becomes a source, soonest.
class AdaptivePlacement final : public Placement {
 public:
  std::string_view name() const override { return "adaptive"; }

  Decision next_for(const SchedulerState& state, WorkerId w) override {
    const WorkerState& ws = state.worker(w);
    ContextId run = kNoContext;
    double run_drain = -1;
    ContextId load = kNoContext;
    double load_gain = 0;
    double load_pending = 0;
    double rate = state.estimator().preemption_rate(ws.spec, state.now());
    for (ContextId c = 0; c < state.context_count(); ++c) {
      const ContextState& cs = state.context(c);
      if (cs.pending() == 0) continue;
      double drain = drain_s(state, w, c);
      if (ws.on(c).ready(Tier::gpu)) {
        if (drain > run_drain) run = c, run_drain = drain;
        continue;
      }
      if (!state.fits(w, c)) continue;
      double load_s = estimated_load_s(state, w, c);
      double gain = (drain - load_s) * std::exp(-rate * load_s);
      // Among contexts nobody serves yet (no end in sight: an infinite gain), the one with the
      // most pending work first: the first to join takes the biggest, and the next the others.
      const auto pending = static_cast<double>(cs.pending());
      if (gain > load_gain || (gain == load_gain && std::isinf(gain) && pending > load_pending)) {
        load = c, load_gain = gain, load_pending = pending;
      }
    }
    if (run != kNoContext) return Decision::run(run);
    // Loads bind no task: a slow load must not hold work that faster workers could do.
    if (load != kNoContext) return Decision::prefetch(load);
    if (state.pending_inferences() == 0) return backup_for(state, w);
    return Decision::wait();
  }

  int upload_cap() const override { return 1; }

  SeedingRules seeding(const SchedulerState& state, ContextId c,
                       const SeedQueue& waiting) const override {
    // Shared storage feeds its readers at their link speed only while their links add up to
    // less than its bandwidth; past that, each extra reader only slows the others, while every
    // peer copy adds a source. So newcomers read it, in the order they asked, while it has room
    // left, except that one must start when nobody holds or fetches the context.
    const ContextState& cs = state.context(c);
    double room_Bps = state.estimator().config().shared_storage_Bps - state.shared_read_Bps();
    int slots = 0;
    for (WorkerId w : waiting) {
      if (room_Bps <= 0) break;
      room_Bps -= state.worker(w).spec.network_Bps;
      ++slots;
    }
    if (cs.holders.empty() && cs.fetching == 0) slots = std::max(slots, 1);
    return {.use_peers = true, .shared_storage_slots = slots};
  }

 private:
  // Seconds until the workers serving c would finish its pending work: they share it by
  // speed, those still loading joining in when they are ready, those running a task of it when
  // that ends.
  static double drain_s(const SchedulerState& state, WorkerId w, ContextId c) {
    const ContextState& cs = state.context(c);
    if (cs.serving_speed <= 0) return std::numeric_limits<double>::infinity();
    const WorkerSpec& spec = state.worker(w).spec;
    double work_s = static_cast<double>(cs.pending()) * state.estimator().inference_s(spec) *
                    spec.speed;  // at speed 1
    return (work_s + cs.loading_wait_s(state.now()) + cs.running_left_s(state.now())) /
           cs.serving_speed;
  }

  // A second attempt of the running task expected to end last, if w would finish it in less
  // than half the time its runner still needs.
  static Decision backup_for(const SchedulerState& state, WorkerId w) {
    const WorkerState& ws = state.worker(w);
    Decision best = Decision::wait();
    double best_saving = 0;
    for (ContextId c = 0; c < state.context_count(); ++c) {
      if (!ws.on(c).ready(Tier::gpu)) continue;
      const auto& running = state.context(c).running_by_end;
      // The latest-ending task that runs once and not here; those running twice are skipped.
      for (auto it = running.rbegin(); it != running.rend(); ++it) {
        const TaskRecord& task = state.task(it->second);
        if (task.running() != 1 || task.runners[0] == w || task.runners[1] == w) continue;
        double theirs = it->first - state.now();
        double mine = state.estimator().task_s(ws.spec, task.count);
        if (mine < 0.5 * theirs && theirs - mine > best_saving) {
          best = Decision::backup(c, it->second);
          best_saving = theirs - mine;
        }
        break;
      }
    }
    return best;
  }
};

}  // namespace

std::unique_ptr<Placement> make_adaptive_placement() {
  return std::make_unique<AdaptivePlacement>();
}

}  // namespace hearth
