#include "real_backend/manager/worker_registry.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace hearth::real {

WorkerId WorkerRegistry::on_connection(const std::string& routing) const {
  auto it = by_routing_.find(routing);
  return it == by_routing_.end() ? kNoWorker : it->second;
}

WorkerId WorkerRegistry::join(WorkerSlot slot) {
  assert(on_connection(slot.routing) == kNoWorker);
  auto [named, fresh] = by_name_.try_emplace(slot.name, static_cast<WorkerId>(slots_.size()));
  WorkerId w = named->second;
  if (fresh) slots_.emplace_back();
  assert(!slots_[w].alive);
  slot.alive = true;
  by_routing_[slot.routing] = w;
  slots_[w] = std::move(slot);
  ++live_;
  return w;
}

bool WorkerRegistry::lose(WorkerId w) {
  WorkerSlot& s = slots_[w];
  if (!s.alive) return false;
  s.alive = false;
  by_routing_.erase(s.routing);
  --live_;
  return true;
}

template <class Pred>
std::vector<WorkerId> WorkerRegistry::live_where(Pred pred) const {
  std::vector<WorkerId> out;
  for (WorkerId w = 0; w < slots_.size(); ++w) {
    if (slots_[w].alive && pred(slots_[w])) out.push_back(w);
  }
  return out;
}

std::vector<WorkerId> WorkerRegistry::replaced_by(const std::string& name, int fd) const {
  return live_where([&](const WorkerSlot& s) { return s.name == name || (fd >= 0 && s.fd == fd); });
}

std::vector<WorkerId> WorkerRegistry::on_socket(int fd) const {
  return live_where([&](const WorkerSlot& s) { return s.fd == fd; });
}

std::vector<WorkerId> WorkerRegistry::of_process(std::uint32_t pid) const {
  return live_where([&](const WorkerSlot& s) { return s.local && s.pid == pid; });
}

void WorkerRegistry::heard(WorkerId w, double now_s) {
  WorkerSlot& s = slots_[w];
  // A long gap is remembered for a minute or so, however often the worker talks.
  double gap = now_s - s.last_heard_s;
  s.recent_gap_s = std::max(gap, s.recent_gap_s * std::exp(-gap / 60));
  s.last_heard_s = now_s;
}

double WorkerRegistry::silence_budget(WorkerId w, double timeout_s) const {
  return std::clamp(3 * slots_[w].recent_gap_s, timeout_s, 4 * timeout_s);
}

std::vector<WorkerId> WorkerRegistry::silent(double now_s, double timeout_s) const {
  std::vector<WorkerId> out;
  for (WorkerId w : live_ids()) {
    if (now_s - slots_[w].last_heard_s > silence_budget(w, timeout_s)) out.push_back(w);
  }
  return out;
}

std::vector<WorkerId> WorkerRegistry::live_ids() const {
  return live_where([](const WorkerSlot&) { return true; });
}

}  // namespace hearth::real
