#include "policy/placement.hpp"

#include <tuple>

namespace hearth {

namespace {

// The paper's pervasive context management: a context stays resident once loaded; a worker
// runs the contexts it holds; a worker without work loads the context with pending work it can
// reach fastest (already on a lower tier first), bootstrapping from a peer that holds it rather
// than from shared storage whenever any peer does; lost tasks are requeued by the engine.
class PcmPlacement final : public Placement {
 public:
  explicit PcmPlacement(int upload_cap) : upload_cap_(upload_cap) {}
  std::string_view name() const override { return "pcm"; }

  Decision next_for(const SchedulerState& state, WorkerId w) override {
    if (ContextId c = busiest_resident_context(state, w); c != kNoContext) {
      return Decision::run(c);
    }
    const WorkerState& ws = state.worker(w);
    // Prefer what is nearest (host, then disk, then nothing), then the most pending work per
    // unit of speed already serving it, then the lowest id.
    ContextId best = kNoContext;
    std::tuple<int, double> best_key;
    for (ContextId c = 0; c < state.context_count(); ++c) {
      const ContextState& cs = state.context(c);
      if (cs.pending() == 0 || !state.fits(w, c)) continue;
      int distance = ws.on(c).ready(Tier::host) ? 0 : ws.on(c).ready(Tier::disk) ? 1 : 2;
      std::tuple<int, double> key{
          distance, -static_cast<double>(cs.pending()) / (cs.serving_speed + ws.spec.speed)};
      if (best == kNoContext || key < best_key) {
        best = c;
        best_key = key;
      }
    }
    return best == kNoContext ? Decision::wait() : Decision::load(best);
  }

  bool waits_without_pending_work() const override { return true; }
  int upload_cap() const override { return upload_cap_; }

  SeedingRules seeding(const SchedulerState& state, ContextId c,
                       const SeedQueue& waiting) const override {
    // Shared storage only while no worker holds the context; otherwise wait for a peer.
    bool held = !state.context(c).holders.empty();
    return {.use_peers = true, .shared_storage_slots = held ? 0 : static_cast<int>(waiting.size())};
  }

 private:
  int upload_cap_;
};

}  // namespace

std::unique_ptr<Placement> make_pcm_placement(int upload_cap) {
  return std::make_unique<PcmPlacement>(upload_cap);
}

}  // namespace hearth
