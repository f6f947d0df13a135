#include "policy/contract_check.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace hearth {

namespace {

constexpr std::uint8_t bit(Tier t) {
  return static_cast<std::uint8_t>(1u << static_cast<int>(t));
}
constexpr std::uint8_t kBytes = bit(Tier::disk) | bit(Tier::host);  // what a peer reads

// The tier a stage onto `tier` reads from, on the same worker.
Tier below(Tier tier) {
  return tier == Tier::gpu ? Tier::host : Tier::disk;
}

}  // namespace

void ContractCheck::abort_on_broken(const std::string& what) {
  std::fprintf(stderr, "hearth: the core broke the cluster contract: %s\n", what.c_str());
  std::abort();
}

ContractCheck::ContractCheck(Cluster& cluster, const Workload& workload, OnBroken on_broken,
                             bool pipelined)
    : ClusterWrapper(cluster), on_broken_(std::move(on_broken)), pipelined_(pipelined) {
  for (const ContextSpec& c : workload.contexts)
    sizes_.push_back(c.size_bytes);
}

// ---- commands ------------------------------------------------------------------------------

void ContractCheck::stage_context(WorkerId worker, ContextId context, Tier tier, Source source) {
  if (!alive(worker) || context >= sizes_.size()) {
    broken(fmt::format("stage of context {} on worker {}, which is not a live worker's", context,
                       worker));
    return ClusterWrapper::stage_context(worker, context, tier, source);
  }
  Worker& w = workers_[worker];
  const std::uint8_t b = bit(tier);
  const int t = static_cast<int>(tier);
  if ((w.ready[context] | w.staging[context]) & b) {
    broken(fmt::format("context {} is already on (or on its way to) {} of worker {}", context,
                       to_string(tier), worker));
  }
  // Sizes are sums of doubles: a context that fills a tier exactly may round a hair over.
  if (w.used_bytes[t] + sizes_[context] > capacity_bytes(w.spec, tier) * (1 + 1e-12)) {
    broken(fmt::format("no room for context {} on {} of worker {}: {} of {} bytes in use", context,
                       to_string(tier), worker, w.used_bytes[t], capacity_bytes(w.spec, tier)));
  }
  const bool lower = source.kind == SourceKind::lower_tier;
  if (tier == Tier::disk ? lower : !lower) {
    broken(fmt::format("a {} stage from {}", to_string(tier), to_string(source.kind)));
  }
  if (tier != Tier::disk && !(w.ready[context] & bit(below(tier)))) {
    broken(fmt::format("context {} is not on {} of worker {} to stage from", context,
                       to_string(below(tier)), worker));
  }
  if (source.kind == SourceKind::peer) {
    if (source.peer == worker || !alive(source.peer)) {
      broken(fmt::format("worker {} cannot read from worker {}", worker, source.peer));
    } else if (!(workers_[source.peer].ready[context] & kBytes)) {
      broken(fmt::format("peer {} does not hold context {}", source.peer, context));
    } else {
      ++workers_[source.peer].uploads[context];
      w.disk_peer[context] = {source.peer, workers_[source.peer].incarnation};
    }
  }
  w.staging[context] |= b;
  w.used_bytes[t] += sizes_[context];
  ClusterWrapper::stage_context(worker, context, tier, source);
}

bool ContractCheck::in_use(const Worker& w, ContextId c, Tier tier) const {
  if (tier == Tier::gpu) return w.attempt != 0 && w.task_context == c;
  Tier above = tier == Tier::disk ? Tier::host : Tier::gpu;
  if (w.staging[c] & bit(above)) return true;
  // A peer reads whichever copy of the bytes is left: it needs one of the two.
  Tier other = tier == Tier::disk ? Tier::host : Tier::disk;
  return w.uploads[c] > 0 && !(w.ready[c] & bit(other));
}

void ContractCheck::evict_context(WorkerId worker, ContextId context, Tier tier) {
  if (!alive(worker) || context >= sizes_.size()) {
    broken(fmt::format("eviction of context {} on worker {}, which is not a live worker's", context,
                       worker));
    return ClusterWrapper::evict_context(worker, context, tier);
  }
  Worker& w = workers_[worker];
  if (!(w.ready[context] & bit(tier))) {
    broken(fmt::format("eviction of context {} from {} of worker {}, where it is not ready",
                       context, to_string(tier), worker));
  } else {
    if (in_use(w, context, tier)) {
      broken(fmt::format("eviction of context {} from {} of worker {} while it is in use", context,
                         to_string(tier), worker));
    }
    w.ready[context] &= ~bit(tier);
    w.used_bytes[static_cast<int>(tier)] -= sizes_[context];
  }
  ClusterWrapper::evict_context(worker, context, tier);
}

void ContractCheck::start_task(WorkerId worker, const TaskSpec& task) {
  if (!alive(worker) || task.context >= sizes_.size()) {
    broken(fmt::format("task {} of context {} on worker {}, which is not a live worker's",
                       task.task, task.context, worker));
    return ClusterWrapper::start_task(worker, task);
  }
  Worker& w = workers_[worker];
  if (!(w.ready[task.context] & bit(Tier::gpu))) {
    broken(fmt::format("a task of context {} on worker {}, which does not have it in GPU memory",
                       task.context, worker));
  }
  if (w.attempt == 0) {
    w.attempt = task.attempt;
    w.task_context = task.context;
  } else if (!pipelined_ || w.next != 0) {
    broken(fmt::format("worker {} is given attempt {} while it runs attempt {}{}", worker,
                       task.attempt, w.attempt,
                       w.next != 0 ? fmt::format(" and holds attempt {}", w.next) : ""));
  } else if (task.context != w.task_context) {
    broken(
        fmt::format("worker {} is given attempt {} of context {} to run after attempt {} of "
                    "context {}",
                    worker, task.attempt, task.context, w.attempt, w.task_context));
  } else {
    w.next = task.attempt;
  }
  ClusterWrapper::start_task(worker, task);
}

void ContractCheck::cancel_task(WorkerId worker, AttemptId attempt) {
  attempt_ended(worker, attempt);
  ClusterWrapper::cancel_task(worker, attempt);
}

void ContractCheck::attempt_ended(WorkerId worker, AttemptId attempt) {
  if (!alive(worker) || attempt == 0) return;
  Worker& w = workers_[worker];
  if (w.attempt == attempt) {
    w.attempt = std::exchange(w.next, 0);  // the worker goes on to the one it holds
  } else if (w.next == attempt) {
    w.next = 0;
  }
}

// ---- events --------------------------------------------------------------------------------

void ContractCheck::worker_joined(const WorkerSpec& spec) {
  if (spec.id >= workers_.size()) workers_.resize(spec.id + 1);
  Worker& w = workers_[spec.id];
  const std::uint32_t incarnation = w.incarnation + 1;
  w = Worker{};
  w.spec = spec;
  w.alive = true;
  w.incarnation = incarnation;
  w.ready.assign(sizes_.size(), 0);
  w.staging.assign(sizes_.size(), 0);
  w.uploads.assign(sizes_.size(), 0);
  w.disk_peer.assign(sizes_.size(), {kNoWorker, 0});
  ClusterEventsWrapper::worker_joined(spec);
}

void ContractCheck::worker_lost(WorkerId worker) {
  if (alive(worker)) {
    Worker& w = workers_[worker];
    w.alive = false;
    // Its own stages end with it; those reading from it end on their receivers, later.
    for (ContextId c = 0; c < sizes_.size(); ++c)
      release_upload(w, c);
  }
  ClusterEventsWrapper::worker_lost(worker);
}

void ContractCheck::release_upload(Worker& receiver, ContextId c) {
  auto [peer, incarnation] = receiver.disk_peer[c];
  receiver.disk_peer[c] = {kNoWorker, 0};
  if (alive(peer) && workers_[peer].incarnation == incarnation) --workers_[peer].uploads[c];
}

void ContractCheck::stage_ended(WorkerId worker, ContextId context, Tier tier, bool ready) {
  if (!alive(worker) || context >= sizes_.size()) return;
  Worker& w = workers_[worker];
  if (!(w.staging[context] & bit(tier))) return;
  w.staging[context] &= ~bit(tier);
  if (ready) {
    w.ready[context] |= bit(tier);
  } else {
    w.used_bytes[static_cast<int>(tier)] -= sizes_[context];
  }
  if (tier == Tier::disk) release_upload(w, context);
}

void ContractCheck::context_ready(WorkerId worker, ContextId context, Tier tier) {
  stage_ended(worker, context, tier, true);
  ClusterEventsWrapper::context_ready(worker, context, tier);
}

void ContractCheck::stage_failed(WorkerId worker, ContextId context, Tier tier,
                                 std::string_view reason) {
  stage_ended(worker, context, tier, false);
  ClusterEventsWrapper::stage_failed(worker, context, tier, reason);
}

void ContractCheck::task_finished(WorkerId worker, AttemptId attempt, double output_bytes) {
  attempt_ended(worker, attempt);
  ClusterEventsWrapper::task_finished(worker, attempt, output_bytes);
}

void ContractCheck::task_failed(WorkerId worker, AttemptId attempt, std::string_view reason) {
  attempt_ended(worker, attempt);
  ClusterEventsWrapper::task_failed(worker, attempt, reason);
}

}  // namespace hearth
