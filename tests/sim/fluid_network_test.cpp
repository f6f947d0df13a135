// The simulated network's max-min shares, against hand-computed times and against a plain
// re-solve-everything simulation of the same flows (progressive filling over every flow at every
// change), on random sets of resources and flows with delays and cancellations.

#include "sim_backend/fluid_network.hpp"

#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <vector>

using hearth::sim::FluidNetwork;

namespace {

struct Planned {
  std::uint32_t from, to;
  double bytes;
  double issue_s;
  double delay_s;
  double cancel_s;  // infinity: never
};

constexpr double kNever = FluidNetwork::kNever;

// When each planned flow ends (kNever: cancelled first), by FluidNetwork.
std::vector<double> run_network(const std::vector<double>& caps, const std::vector<Planned>& plan) {
  FluidNetwork net;
  for (double c : caps)
    net.add_resource(c);
  std::vector<double> end(plan.size(), kNever);
  std::vector<FluidNetwork::FlowId> id(plan.size());
  std::map<FluidNetwork::FlowId, std::size_t> live;
  // External happenings in time order: (time, 0 issue / 1 cancel, flow).
  std::vector<std::tuple<double, int, std::size_t>> todo;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    todo.emplace_back(plan[i].issue_s, 0, i);
    if (plan[i].cancel_s < kNever) todo.emplace_back(plan[i].cancel_s, 1, i);
  }
  std::sort(todo.begin(), todo.end());
  std::size_t next = 0;
  std::vector<FluidNetwork::FlowId> ended;
  std::vector<bool> over(plan.size(), false);
  while (true) {
    const double external = next < todo.size() ? std::get<0>(todo[next]) : kNever;
    const double t = std::min(net.next_event_s(), external);
    if (t == kNever) break;
    ended.clear();
    net.advance(t, ended);
    for (auto f : ended) {
      const std::size_t i = live.at(f);
      live.erase(f);
      end[i] = t;
      over[i] = true;
    }
    while (next < todo.size() && std::get<0>(todo[next]) <= t) {
      const auto [at, what, i] = todo[next++];
      if (what == 0) {
        id[i] = net.start(plan[i].from, plan[i].to, plan[i].bytes, at, plan[i].delay_s);
        live[id[i]] = i;
      } else if (!over[i]) {
        net.cancel(id[i], at);
        live.erase(id[i]);
        over[i] = true;
      }
    }
  }
  CHECK(net.flows_under_way() == 0);
  return end;
}

// The same, by re-solving every flow's share from scratch at every change.
std::vector<double> run_plain(const std::vector<double>& caps, const std::vector<Planned>& plan) {
  const std::size_t n = plan.size();
  std::vector<double> left(n), end(n, kNever);
  std::vector<bool> over(n, false);
  for (std::size_t i = 0; i < n; ++i)
    left[i] = plan[i].bytes;
  double t = 0;
  while (true) {
    std::vector<std::size_t> active;
    for (std::size_t i = 0; i < n; ++i) {
      if (!over[i] && plan[i].issue_s + plan[i].delay_s <= t) active.push_back(i);
    }
    // Progressive filling.
    std::vector<double> rate(n, 0), room(caps);
    std::vector<int> count(caps.size(), 0);
    std::vector<bool> fixed(n, false);
    auto uses = [&](std::size_t i) {
      std::vector<std::uint32_t> r{plan[i].from};
      if (plan[i].to != FluidNetwork::kNoResource) r.push_back(plan[i].to);
      return r;
    };
    for (auto i : active) {
      for (auto r : uses(i))
        ++count[r];
    }
    for (std::size_t round = 0; round < active.size(); ++round) {
      std::size_t best = caps.size();
      for (std::size_t r = 0; r < caps.size(); ++r) {
        if (count[r] > 0 && (best == caps.size() || room[r] / count[r] < room[best] / count[best]))
          best = r;
      }
      if (best == caps.size()) break;
      const double level = room[best] / count[best];
      for (auto i : active) {
        if (fixed[i] || (plan[i].from != best && plan[i].to != best)) continue;
        fixed[i] = true;
        rate[i] = level;
        for (auto r : uses(i)) {
          room[r] -= level;
          --count[r];
        }
      }
    }
    double next = kNever;
    for (std::size_t i = 0; i < n; ++i) {
      if (over[i]) continue;
      const double start = plan[i].issue_s + plan[i].delay_s;
      if (start > t) next = std::min(next, start);
      if (plan[i].cancel_s > t) next = std::min(next, plan[i].cancel_s);
    }
    for (auto i : active)
      next = std::min(next, t + left[i] / rate[i]);
    if (next == kNever) break;
    for (auto i : active)
      left[i] -= rate[i] * (next - t);
    t = next;
    for (auto i : active) {
      if (left[i] <= 1e-9 * plan[i].bytes + 1e-6) {
        over[i] = true;
        end[i] = t;
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!over[i] && plan[i].cancel_s <= t) over[i] = true;
    }
  }
  return end;
}

}  // namespace

TEST_CASE("fluid network: readers of one link share it equally, and a lost one's share returns") {
  FluidNetwork net;
  auto storage = net.add_resource(1e8);
  std::vector<FluidNetwork::ResourceId> in;
  for (int i = 0; i < 4; ++i)
    in.push_back(net.add_resource(1e9));
  std::vector<FluidNetwork::FlowId> f;
  for (int i = 0; i < 4; ++i)
    f.push_back(net.start(storage, in[i], 1e9, 0, 0));
  std::vector<FluidNetwork::FlowId> ended;
  net.advance(0, ended);
  CHECK(net.rate(f[0]) == Catch::Approx(2.5e7));
  CHECK(net.next_event_s() == Catch::Approx(40));
  net.advance(10, ended);  // 2.5e8 B each so far
  net.cancel(f[3], 10);
  CHECK(net.rate(f[0]) == Catch::Approx(1e8 / 3));
  net.advance(100, ended);
  CHECK(ended.size() == 3);
  CHECK(net.next_event_s() == kNever);
}

TEST_CASE("fluid network: a flow that slows one sharer can speed up another (max-min)") {
  // a: r0 and r1; b: r1 only with r2; c joins r0. r0 = 2, r1 = 3, r2 = 10 (units of 1e8 B/s).
  // Before c: a and b split r1 at 1.5 each. With c, r0 gives a and c 1 each, and b takes 2 of r1.
  std::vector<double> caps = {2e8, 3e8, 10e8, 10e8};
  FluidNetwork net;
  for (double c : caps)
    net.add_resource(c);
  auto a = net.start(0, 1, 1e12, 0, 0);
  auto b = net.start(2, 1, 1e12, 0, 0);
  std::vector<FluidNetwork::FlowId> ended;
  net.advance(0, ended);
  CHECK(net.rate(a) == Catch::Approx(1.5e8));
  CHECK(net.rate(b) == Catch::Approx(1.5e8));
  auto c = net.start(0, 3, 1e12, 0, 0);
  net.advance(0, ended);
  CHECK(net.rate(a) == Catch::Approx(1e8));
  CHECK(net.rate(c) == Catch::Approx(1e8));
  CHECK(net.rate(b) == Catch::Approx(2e8));
}

TEST_CASE("fluid network: reads of one disk share it with each other only") {
  FluidNetwork net;
  auto disk = net.add_resource(1e8);
  auto link = net.add_resource(1e8);
  auto sink = net.add_resource(1e9);
  auto a = net.start(disk, FluidNetwork::kNoResource, 1e8, 0, 0);
  auto b = net.start(disk, FluidNetwork::kNoResource, 3e8, 0, 0);
  auto c = net.start(link, sink, 1e8, 0, 0);
  std::vector<FluidNetwork::FlowId> ended;
  net.advance(0, ended);
  CHECK(net.rate(a) == Catch::Approx(5e7));
  CHECK(net.rate(c) == Catch::Approx(1e8));
  net.advance(2, ended);  // c ends at 1 s; a has all of its 1e8 B at 2 s; then b reads alone
  CHECK(ended == std::vector<FluidNetwork::FlowId>{c, a});
  CHECK(net.rate(b) == Catch::Approx(1e8));
  CHECK(net.next_event_s() == Catch::Approx(4));
}

TEST_CASE("fluid network: a flow takes its share only after its delay, and zero bytes end then") {
  FluidNetwork net;
  net.add_resource(1e8);
  net.add_resource(1e8);
  auto f = net.start(0, 1, 1e8, 0, 0.5);
  auto z = net.start(1, 0, 0, 0, 0.25);
  std::vector<FluidNetwork::FlowId> ended;
  net.advance(0.2, ended);
  CHECK(ended.empty());
  CHECK(net.rate(f) == 0);
  CHECK(net.next_event_s() == Catch::Approx(0.25));
  net.advance(0.25, ended);
  CHECK(ended == std::vector<FluidNetwork::FlowId>{z});
  CHECK(net.next_event_s() == Catch::Approx(0.5));
  net.advance(0.5, ended);
  CHECK(net.next_event_s() == Catch::Approx(1.5));
}

TEST_CASE("fluid network: random flows end when re-solving every share says", "[property]") {
  std::mt19937_64 rng(7);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto pick = [&](std::size_t n) {
    return static_cast<std::uint32_t>(std::uniform_int_distribution<std::size_t>(0, n - 1)(rng));
  };
  int compared = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const std::size_t resources = 2 + pick(7);
    std::vector<double> caps;
    for (std::size_t r = 0; r < resources; ++r)
      caps.push_back(1e8 * (1 + pick(4)));  // equal caps are common, as with GPU types
    // Half the trials have a hub that most flows read from, like shared storage in a storm.
    const bool hub = trial % 2 == 0;
    std::vector<Planned> plan;
    const std::size_t flows = 1 + pick(trial % 5 == 0 ? 60 : 20);
    for (std::size_t i = 0; i < flows; ++i) {
      Planned p;
      p.from = hub && pick(4) != 0 ? 0 : pick(resources);
      do {
        p.to = pick(resources);
      } while (p.to == p.from);
      if (pick(7) == 0) p.to = FluidNetwork::kNoResource;  // a local disk's read
      p.bytes = pick(10) == 0 ? 0 : uniform(1e7, 1e9);
      p.issue_s = pick(3) == 0 ? 0 : std::round(uniform(0, 20) * 100) / 100;
      p.delay_s = pick(2) == 0 ? 0 : 0.01;
      p.cancel_s = pick(5) == 0 ? p.issue_s + uniform(0, 10) : kNever;
      plan.push_back(p);
    }
    const auto got = run_network(caps, plan);
    const auto want = run_plain(caps, plan);
    for (std::size_t i = 0; i < plan.size(); ++i) {
      INFO("trial " << trial << " flow " << i);
      if (want[i] == kNever || got[i] == kNever) {
        CHECK(got[i] == want[i]);
      } else {
        CHECK(got[i] == Catch::Approx(want[i]).epsilon(1e-9));
        ++compared;
      }
    }
  }
  CHECK(compared > 2000);
}
