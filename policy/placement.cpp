#include "policy/placement.hpp"

#include <algorithm>

namespace hearth {

ContextId busiest_resident_context(const SchedulerState& state, WorkerId w) {
  const WorkerState& ws = state.worker(w);
  ContextId best = kNoContext;
  for (ContextId c = 0; c < state.context_count(); ++c) {
    std::uint64_t pending = state.context(c).pending();
    if (pending > 0 && ws.on(c).ready(Tier::gpu) &&
        (best == kNoContext || pending > state.context(best).pending())) {
      best = c;
    }
  }
  return best;
}

double estimated_load_s(const SchedulerState& state, WorkerId w, ContextId c) {
  const WorkerSpec& spec = state.worker(w).spec;
  const ContextOnWorker& on = state.worker(w).on(c);
  const ContextState& cs = state.context(c);
  double size = cs.spec.size_bytes;
  if (on.ready(Tier::gpu)) return 0;
  double s = Estimator::host_to_gpu_s(size, cs.spec.init_s, spec);
  if (on.ready(Tier::host)) return s;
  s += Estimator::disk_to_host_s(size, spec);
  if (on.ready(Tier::disk)) return s;
  double fetch = state.estimator().shared_read_s(size, state.shared_readers(), spec);
  if (!cs.holders.empty()) {
    const WorkerState& peer = state.worker(*cs.holders.begin());
    fetch = std::min(fetch, Estimator::peer_read_s(size, peer.spec, peer.uploads, spec));
  }
  return s + fetch;
}

}  // namespace hearth
