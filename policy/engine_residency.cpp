// The engine's bookkeeping of where contexts live: reserving and freeing room on tiers,
// evicting, peer upload slots, and seeding workers that need a context on disk.

#include <algorithm>
#include <cassert>
#include <map>

#include "policy/engine.hpp"

namespace hearth {

void Engine::set_residency(WorkerId w, ContextId c, Tier tier, Residency r) {
  WorkerState& ws = workers_[w];
  ContextOnWorker& on = ws.contexts[c];
  Residency& slot = on.tier[static_cast<int>(tier)];
  if (slot == r) return;
  double size = contexts_[c].spec.size_bytes;
  if (slot == Residency::absent) ws.used_bytes[static_cast<int>(tier)] += size;
  if (r == Residency::absent) ws.used_bytes[static_cast<int>(tier)] -= size;
  slot = r;
  refresh_holder(w, c);
  refresh_serving(w, c);
}

// Keeps w in c's holders, and in its free holders, exactly while it may serve c to peers.
void Engine::refresh_holder(WorkerId w, ContextId c) {
  const WorkerState& ws = workers_[w];
  ContextState& cs = contexts_[c];
  bool holder = ws.alive && !ws.draining && ws.on(c).has_bytes();
  bool free = holder && ws.uploads < policies_.placement->upload_cap();
  bool changed = holder ? cs.holders.insert(w).second : cs.holders.erase(w) > 0;
  if (free ? cs.free_holders.insert(w).second : cs.free_holders.erase(w) > 0) changed = true;
  if (changed) seeds_dirty_ = true;
}

void Engine::count_upload(WorkerId peer, ContextId c, int delta) {
  WorkerState& ps = workers_[peer];
  ps.uploads += delta;
  ps.contexts[c].uploads += delta;
  for (ContextId held = 0; held < contexts_.size(); ++held)
    refresh_holder(peer, held);
}

void Engine::refresh_serving(WorkerId w, ContextId c) {
  WorkerState& ws = workers_[w];
  ContextOnWorker& on = ws.contexts[c];
  bool serving =
      ws.alive && !ws.draining && (on.at(Tier::gpu) != Residency::absent || ws.loading == c);
  if (serving == on.serving) return;
  on.serving = serving;
  contexts_[c].serving_speed += serving ? ws.spec.speed : -ws.spec.speed;
}

bool Engine::in_use(const WorkerState& ws, ContextId c, Tier tier) const {
  const ContextOnWorker& on = ws.on(c);
  if (ws.loading == c) return true;
  switch (tier) {
    case Tier::gpu:
      return ws.attempt != 0 && tasks_[ws.task].context == c;
    case Tier::host:
      return on.uploads > 0 || on.at(Tier::gpu) == Residency::staging;
    case Tier::disk:
      return on.uploads > 0 || on.at(Tier::host) == Residency::staging;
  }
  return true;
}

bool Engine::make_room(WorkerId w, Tier tier, double bytes) {
  WorkerState& ws = workers_[w];
  double free = ws.free_bytes(tier);
  if (free >= bytes) return true;
  std::vector<ContextId> candidates;
  for (ContextId c = 0; c < contexts_.size(); ++c) {
    if (ws.contexts[c].ready(tier) && !in_use(ws, c, tier)) candidates.push_back(c);
  }
  policies_.eviction->order_victims(*this, w, tier, candidates);
  std::size_t victims = 0;
  while (free < bytes && victims < candidates.size()) {
    free += contexts_[candidates[victims++]].spec.size_bytes;
  }
  if (free < bytes) return false;  // evicting everything evictable would not be enough
  for (std::size_t i = 0; i < victims; ++i)
    evict(w, candidates[i], tier);
  return true;
}

void Engine::evict(WorkerId w, ContextId c, Tier tier) {
  set_residency(w, c, tier, Residency::absent);
  ++stats_.evictions;
  cluster_.evict_context(w, c, tier);
}

// The disk stage of context c on `receiver` ended (or never will): frees what it held on its
// source.
void Engine::release_upload(WorkerId receiver, ContextId c) {
  ContextOnWorker& on = workers_[receiver].contexts[c];
  if (!on.disk_source) return;
  seeds_dirty_ = true;
  --contexts_[c].fetching;
  if (on.disk_source->kind == SourceKind::shared_storage) {
    --shared_readers_;
    shared_read_Bps_ -= workers_[receiver].spec.network_Bps;
  } else {
    WorkerState& peer = workers_[on.disk_source->peer];
    if (peer.alive && peer.incarnation == on.disk_source_incarnation) {
      count_upload(on.disk_source->peer, c, -1);
      unpark(on.disk_source->peer);  // it may have waited for room these uploads held
    }
  }
  on.disk_source.reset();
}

// Seeds as many waiting workers as the replication policy can, with the sources it picks. Only
// as many of each context's waiting workers, first come first served, as its sources could
// possibly take this round are put to the planner, so a round costs what it can seed, not what
// waits.
void Engine::plan_seeds() {
  if (!seeds_dirty_) return;
  seeds_dirty_ = false;
  const Placement& placement = *policies_.placement;
  SeedProblem problem;
  problem.shared_slots.assign(contexts_.size(), 0);
  std::map<WorkerId, std::vector<ContextId>> held;      // holder -> requested contexts it holds
  std::vector<std::size_t> asked(contexts_.size(), 0);  // the first ones of each queue
  for (ContextId c = 0; c < contexts_.size(); ++c) {
    const SeedQueue& queue = seed_queues_[c];
    if (queue.empty()) continue;
    SeedingRules rules = placement.seeding(*this, c, queue);
    problem.shared_slots[c] = rules.shared_storage_slots;
    std::size_t capacity = static_cast<std::size_t>(std::max(0, rules.shared_storage_slots));
    if (rules.use_peers) {
      // Twice as many holders as workers it can seed, plus a few: the planner prefers idle,
      // fast holders, so it needs a choice of holders, not only enough upload slots.
      std::size_t holders = 0;
      for (WorkerId h : contexts_[c].free_holders) {
        if (holders >= 2 * std::min(capacity, queue.size()) + 4) break;
        held[h].push_back(c);
        capacity += placement.upload_cap() - workers_[h].uploads;
        ++holders;
      }
    }
    asked[c] = std::min(capacity, queue.size());
    for (std::size_t i = 0; i < asked[c]; ++i)
      problem.requests.push_back({queue[i], c});
  }
  if (problem.requests.empty()) return;
  for (auto& [h, contexts] : held) {
    const WorkerState& holder = workers_[h];
    problem.holders.push_back({h, placement.upload_cap() - holder.uploads, holder.uploads,
                               holder.spec.network_Bps, std::move(contexts)});
  }
  problem.shared_storage_Bps = estimator_.config().shared_storage_Bps;
  problem.shared_readers = shared_readers_;

  SeedPlan plan = policies_.replication->plan(problem);
  assert(plan.size() == problem.requests.size());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    auto [w, c] = problem.requests[i];
    if (!plan[i]) continue;
    WorkerState& ws = workers_[w];
    ContextOnWorker& on = ws.contexts[c];
    ws.awaiting_seed = false;
    on.disk_source = *plan[i];
    ++contexts_[c].fetching;
    if (plan[i]->kind == SourceKind::peer) {
      count_upload(plan[i]->peer, c, +1);
      on.disk_source_incarnation = workers_[plan[i]->peer].incarnation;
      ws.load_origin = LoadSource::peer;
    } else {
      ++shared_readers_;
      shared_read_Bps_ += ws.spec.network_Bps;
      ws.load_origin = LoadSource::shared_storage;
    }
    cluster_.stage_context(w, c, Tier::disk, *plan[i]);
  }
  for (ContextId c = 0; c < contexts_.size(); ++c) {
    SeedQueue& queue = seed_queues_[c];
    auto asked_end = queue.begin() + static_cast<std::ptrdiff_t>(asked[c]);
    queue.erase(std::remove_if(queue.begin(), asked_end,
                               [&](WorkerId w) { return !workers_[w].awaiting_seed; }),
                asked_end);
  }
}

}  // namespace hearth
