#include "sim_backend/fluid_network.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

namespace hearth::sim {

namespace {

// Within this much time of its end a flow has ended: what the clocks' rounding leaves over. It
// grows with the time itself so that the next event is always later than now.
double slack_s(double now_s) {
  return std::max(1e-9, now_s * 1e-15);
}

template <class T>
void remove_at(std::vector<T>& v, std::uint32_t at, auto&& moved) {
  if (at + 1 != v.size()) {
    v[at] = v.back();
    moved(v[at], at);
  }
  v.pop_back();
}

}  // namespace

FluidNetwork::ResourceId FluidNetwork::add_resource(double capacity_Bps) {
  assert(capacity_Bps > 0);
  resources_.emplace_back();
  resources_.back().capacity = capacity_Bps;
  return static_cast<ResourceId>(resources_.size() - 1);
}

FluidNetwork::FlowId FluidNetwork::start(ResourceId from, ResourceId to, double bytes, double now_s,
                                         double delay_s) {
  assert(from != to && from < resources_.size() && (to == kNoResource || to < resources_.size()));
  now_s_ = std::max(now_s_, now_s);
  FlowId id;
  if (free_flows_.empty()) {
    id = static_cast<FlowId>(flows_.size());
    flows_.emplace_back();
  } else {
    id = free_flows_.back();
    free_flows_.pop_back();
  }
  Flow& f = flows_[id];
  f.state = State::waiting;
  f.res[0] = from;
  f.res[1] = to;
  f.bytes = f.left = std::max(0.0, bytes);
  f.start_s = now_s_ + std::max(0.0, delay_s);
  f.rate = 0;
  f.group = kNone;
  ++under_way_;
  schedule_flow(id);
  return id;
}

void FluidNetwork::cancel(FlowId id, double now_s) {
  now_s_ = std::max(now_s_, now_s);
  Flow& f = flows_[id];
  assert(f.state != State::free);
  if (f.state != State::waiting) leave(id);
  f.state = State::free;
  ++f.version;
  free_flows_.push_back(id);
  --under_way_;
  solve();
}

double FluidNetwork::rate(FlowId id) const {
  const Flow& f = flows_[id];
  switch (f.state) {
    case State::shared:
      return f.rate;
    case State::alone:
      return groups_[f.group].rate;
    default:
      return 0;
  }
}

// ---- events ----------------------------------------------------------------------------------

bool FluidNetwork::stale(const Event& e) const {
  if (e.kind == Kind::group) return groups_[e.id].version != e.version;
  const Flow& f = flows_[e.id];
  return f.state == State::free || f.state == State::alone || f.version != e.version;
}

void FluidNetwork::drop_stale() const {
  while (!events_.empty() && stale(events_.top()))
    events_.pop();
}

double FluidNetwork::next_event_s() const {
  drop_stale();
  return events_.empty() ? kNever : events_.top().at_s;
}

void FluidNetwork::schedule_flow(FlowId id) {
  Flow& f = flows_[id];
  ++f.version;
  double at = kNever;
  if (f.state == State::waiting) at = f.start_s;
  if (f.state == State::shared && f.rate > 0) at = f.since_s + f.left / f.rate;
  if (at < kNever) events_.push({at, Kind::flow, id, f.version});
}

void FluidNetwork::schedule_group(std::uint32_t gid) {
  Group& g = groups_[gid];
  ++g.version;
  if (g.members.empty() || g.rate <= 0) return;
  const double at = g.since_s + (g.members.begin()->first - g.clock) / g.rate;
  events_.push({at, Kind::group, gid, g.version});
}

void FluidNetwork::advance(double now_s, std::vector<FlowId>& ended) {
  std::vector<FlowId> ending;
  std::vector<FlowId> starting;
  while (true) {
    drop_stale();
    if (events_.empty() || events_.top().at_s > now_s) break;
    now_s_ = std::max(now_s_, events_.top().at_s);
    const double slack = slack_s(now_s_);
    while (!events_.empty() && events_.top().at_s <= now_s_) {
      const Event e = events_.top();
      events_.pop();
      if (stale(e)) continue;
      if (e.kind == Kind::group) {
        Group& g = groups_[e.id];
        fold(g);
        bool any = false;
        for (const auto& [key, member] : g.members) {
          if (key - g.clock > g.rate * slack) break;
          ending.push_back(member);
          any = true;
        }
        // Rounding left its first member a hair short: it ends at its (now correct) time. When
        // members end, solve() schedules the group again.
        if (!any) schedule_group(e.id);
      } else if (flows_[e.id].state == State::waiting) {
        starting.push_back(e.id);
      } else {
        Flow& f = flows_[e.id];
        fold(f);
        if (f.left > f.rate * slack) {
          schedule_flow(e.id);
        } else {
          ending.push_back(e.id);
        }
      }
    }
    std::sort(ending.begin(), ending.end());
    for (FlowId id : ending) {
      leave(id);
      Flow& f = flows_[id];
      f.state = State::free;
      ++f.version;
      free_flows_.push_back(id);
      --under_way_;
      ended.push_back(id);
    }
    std::sort(starting.begin(), starting.end());
    for (FlowId id : starting)
      take_share(id);
    ending.clear();
    starting.clear();
    solve();
  }
  now_s_ = std::max(now_s_, now_s);
}

// ---- joining and leaving resources -----------------------------------------------------------

void FluidNetwork::touch(ResourceId r) {
  Resource& R = resources_[r];
  if (R.dirty) return;
  R.dirty = true;
  dirty_.push_back(r);
}

// The flows of r may have changed from alone to shared or back: place its only flow again.
void FluidNetwork::replace_alone(ResourceId r) {
  const FlowId only = resources_[r].flows.front();
  unplace(only);
  place(only);
}

void FluidNetwork::take_share(FlowId id) {
  Flow& f = flows_[id];
  f.left = f.bytes;
  const int sides = f.res[1] == kNoResource ? 1 : 2;
  for (int side = 0; side < sides; ++side) {
    Resource& R = resources_[f.res[side]];
    f.pos[side] = static_cast<std::uint32_t>(R.flows.size());
    R.flows.push_back(id);
    touch(f.res[side]);
  }
  // A flow that was alone on one of these is alone no more.
  for (int side = 0; side < sides; ++side) {
    const Resource& R = resources_[f.res[side]];
    if (R.flows.size() == 2) {
      const FlowId before = R.flows.front();
      unplace(before);
      place(before);
    }
  }
  place(id);
}

void FluidNetwork::leave(FlowId id) {
  unplace(id);
  Flow& f = flows_[id];
  for (int side = 0; side < 2 && f.res[side] != kNoResource; ++side) {
    const ResourceId r = f.res[side];
    Resource& R = resources_[r];
    remove_at(R.flows, f.pos[side], [&](FlowId moved, std::uint32_t at) {
      Flow& m = flows_[moved];
      m.pos[m.res[0] == r ? 0 : 1] = at;
    });
    touch(r);
    if (R.flows.size() == 1) replace_alone(r);
  }
}

// A flow alone on one of its resources is a cap on the other: it joins that one's group of its
// cap (a flow on one resource: of no cap). Otherwise it is shared, and solve() gives it its own
// rate.
void FluidNetwork::place(FlowId id) {
  Flow& f = flows_[id];
  const bool one = f.res[1] == kNoResource;
  const std::size_t on_from = resources_[f.res[0]].flows.size();
  const std::size_t on_to = one ? 1 : resources_[f.res[1]].flows.size();
  touch(f.res[0]);
  if (!one) touch(f.res[1]);
  if (on_from == 1 || on_to == 1) {
    const int share = on_to == 1 ? 0 : 1;  // the side it shares (when alone on both: `from`)
    const double cap = one ? kNever : resources_[f.res[1 - share]].capacity;
    const std::uint32_t gid = group_for(f.res[share], cap);
    Group& g = groups_[gid];
    fold(g);
    f.state = State::alone;
    f.group = gid;
    f.key = g.clock + f.left;
    g.members.emplace(f.key, id);
    return;
  }
  f.state = State::shared;
  f.since_s = now_s_;
  f.rate = 0;
  for (int side = 0; side < 2; ++side) {
    Resource& R = resources_[f.res[side]];
    f.spos[side] = static_cast<std::uint32_t>(R.shared.size());
    R.shared.push_back(id);
  }
}

void FluidNetwork::unplace(FlowId id) {
  Flow& f = flows_[id];
  touch(f.res[0]);
  if (f.res[1] != kNoResource) touch(f.res[1]);
  if (f.state == State::alone) {
    Group& g = groups_[f.group];
    fold(g);
    f.left = std::max(0.0, f.key - g.clock);
    g.members.erase({f.key, id});
    if (g.members.empty()) {
      auto& list = resources_[g.res].groups;
      list.erase(std::find(list.begin(), list.end(), f.group));
      ++g.version;
      free_groups_.push_back(f.group);
    }
    f.group = kNone;
  } else if (f.state == State::shared) {
    fold(f);
    for (int side = 0; side < 2; ++side) {
      const ResourceId r = f.res[side];
      remove_at(resources_[r].shared, f.spos[side], [&](FlowId moved, std::uint32_t at) {
        Flow& m = flows_[moved];
        m.spos[m.res[0] == r ? 0 : 1] = at;
      });
    }
  }
  f.state = State::waiting;  // between places; no event of it is live
  ++f.version;
}

std::uint32_t FluidNetwork::group_for(ResourceId r, double cap) {
  for (std::uint32_t gid : resources_[r].groups) {
    if (groups_[gid].cap == cap) return gid;
  }
  std::uint32_t gid;
  if (free_groups_.empty()) {
    gid = static_cast<std::uint32_t>(groups_.size());
    groups_.emplace_back();
  } else {
    gid = free_groups_.back();
    free_groups_.pop_back();
  }
  Group& g = groups_[gid];
  g.res = r;
  g.cap = cap;
  g.clock = 0;
  g.since_s = now_s_;
  g.rate = 0;
  ++g.version;
  resources_[r].groups.push_back(gid);
  return gid;
}

void FluidNetwork::fold(Group& g) const {
  g.clock += g.rate * (now_s_ - g.since_s);
  g.since_s = now_s_;
}

void FluidNetwork::fold(Flow& f) const {
  f.left = std::max(0.0, f.left - f.rate * (now_s_ - f.since_s));
  f.since_s = now_s_;
}

// ---- max-min fair shares -----------------------------------------------------------------------

// The level at which r fills up if every flow on it not yet fixed gets that level, and each group
// member the smaller of it and its cap (water-filling); kNever when it cannot fill.
double FluidNetwork::saturation(const Resource& R) const {
  double left = R.capacity - R.frozen_Bps;
  double count = R.unfrozen;
  std::vector<std::pair<double, double>> caps;  // (cap, members)
  caps.reserve(R.groups.size());
  for (std::uint32_t gid : R.groups) {
    caps.emplace_back(groups_[gid].cap, static_cast<double>(groups_[gid].members.size()));
    count += caps.back().second;
  }
  std::sort(caps.begin(), caps.end());
  for (const auto& [cap, members] : caps) {
    if (left <= count * cap) return std::max(0.0, left / count);
    left -= members * cap;
    count -= members;
  }
  return R.unfrozen > 0 ? std::max(0.0, left / R.unfrozen) : kNever;
}

// Progressive filling over the resources that changed and those that shared flows tie to them:
// the resource that fills at the lowest level fixes its flows at that level, which then count as
// fixed load on their other resource; and so on until every resource is done.
void FluidNetwork::solve() {
  if (dirty_.empty()) return;
  std::vector<ResourceId> part;
  for (ResourceId r : dirty_) {
    resources_[r].dirty = false;
    if (resources_[r].in_solve) continue;
    resources_[r].in_solve = true;
    part.push_back(r);
  }
  dirty_.clear();
  for (std::size_t i = 0; i < part.size(); ++i) {
    for (FlowId id : resources_[part[i]].shared) {
      const ResourceId o = other(flows_[id], part[i]);
      if (resources_[o].in_solve) continue;
      resources_[o].in_solve = true;
      part.push_back(o);
    }
  }
  ++solves_;
  using Entry = std::pair<double, ResourceId>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> filling;
  for (ResourceId r : part) {
    Resource& R = resources_[r];
    R.done = false;
    R.unfrozen = static_cast<std::uint32_t>(R.shared.size());
    R.frozen_Bps = 0;
    R.level = saturation(R);
    filling.emplace(R.level, r);
  }
  while (!filling.empty()) {
    const auto [level, r] = filling.top();
    filling.pop();
    Resource& R = resources_[r];
    if (R.done || level != R.level) continue;
    R.done = true;
    for (FlowId id : R.shared) {
      Flow& f = flows_[id];
      if (f.frozen_in == solves_) continue;
      f.frozen_in = solves_;
      fold(f);
      f.rate = level;
      Resource& O = resources_[other(f, r)];
      if (O.done) continue;
      --O.unfrozen;
      O.frozen_Bps += level;
      O.level = saturation(O);
      filling.emplace(O.level, other(f, r));
    }
  }
  for (ResourceId r : part) {
    Resource& R = resources_[r];
    R.in_solve = false;
    for (std::uint32_t gid : R.groups) {
      Group& g = groups_[gid];
      fold(g);
      g.rate = std::min(g.cap, R.level);
      schedule_group(gid);
    }
    for (FlowId id : R.shared) {
      if (flows_[id].res[0] == r) schedule_flow(id);
    }
  }
}

}  // namespace hearth::sim
