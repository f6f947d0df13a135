#include "policy/placement.hpp"

namespace hearth {

namespace {

// The paper's baseline: every task builds its own context from shared storage and tears it
// down when it ends. Workers take the context with the most pending work.
class NaivePlacement final : public Placement {
 public:
  std::string_view name() const override { return "naive"; }

  Decision next_for(const SchedulerState& state, WorkerId w) override {
    ContextId best = kNoContext;
    for (ContextId c = 0; c < state.context_count(); ++c) {
      std::uint64_t pending = state.context(c).pending();
      if (pending > 0 && state.fits(w, c) &&
          (best == kNoContext || pending > state.context(best).pending())) {
        best = c;
      }
    }
    return best == kNoContext ? Decision::wait() : Decision::load(best);
  }

  bool keeps_contexts() const override { return false; }
  bool waits_without_pending_work() const override { return true; }
  int upload_cap() const override { return 0; }

  SeedingRules seeding(const SchedulerState&, ContextId, const SeedQueue& waiting) const override {
    return {.use_peers = false, .shared_storage_slots = static_cast<int>(waiting.size())};
  }
};

}  // namespace

std::unique_ptr<Placement> make_naive_placement() {
  return std::make_unique<NaivePlacement>();
}

}  // namespace hearth
