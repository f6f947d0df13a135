#pragma once
// The simulated network: flows of bytes that share their resources max-min fairly, computed by
// hearth itself rather than by SimGrid's general solver (docs/simulator.md, "The model").
//
// A flow crosses two resources, its sender's and its receiver's (a star: shared storage's link, a
// worker's link up, a worker's way in, the manager's way in), or one (a worker's local disk, its
// host-to-GPU copy), and gets its max-min fair share of them: the rates that progressive filling
// gives, the same as SimGrid's CM02 without correction factors. A flow starts using them
// `delay_s` after it is started (the route's latency) and ends when its bytes have crossed.
//
// Why not SimGrid's: a start-up storm puts thousands of readers on the shared storage's one link,
// and SimGrid re-solves every one of them at each change, so a storm costs the square of its
// size. Here a flow that is alone on one of its two resources (a worker reading shared storage,
// while nothing else comes in) is only a cap on the other: such flows are kept in groups of equal
// caps, all of whose members move at one rate, and each group tracks the bytes every member has
// received since the group began (a virtual clock). A change re-solves only the resources that
// flows shared by two of them connect, and costs the number of groups there, not of flows.

#include <cstdint>
#include <limits>
#include <queue>
#include <set>
#include <vector>

namespace hearth::sim {

class FluidNetwork {
 public:
  using ResourceId = std::uint32_t;
  using FlowId = std::uint32_t;
  static constexpr double kNever = std::numeric_limits<double>::infinity();

  static constexpr ResourceId kNoResource = ~ResourceId{0};

  ResourceId add_resource(double capacity_Bps);

  // A flow of `bytes` from `from` to `to` (kNoResource: it uses `from` only), started at now_s (not
  // before the last advance()); it takes its share from now_s + delay_s. Its id is reused once it
  // has ended or been cancelled.
  FlowId start(ResourceId from, ResourceId to, double bytes, double now_s, double delay_s);
  // Stops a flow that has not ended; it frees its share at once.
  void cancel(FlowId flow, double now_s);

  // When the next flow ends or takes its share; kNever when nothing is under way.
  double next_event_s() const;
  // Carries out everything due by now_s, and appends the flows that ended to `ended` (by time,
  // then id).
  void advance(double now_s, std::vector<FlowId>& ended);

  // The flow's current rate in bytes per second (0 while in its delay); for tests.
  double rate(FlowId flow) const;
  std::size_t flows_under_way() const { return under_way_; }

 private:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  enum class State : std::uint8_t { free, waiting, shared, alone };

  struct Flow {
    State state = State::free;
    ResourceId res[2] = {0, 0};     // from, to
    std::uint32_t pos[2] = {0, 0};  // its index in each resource's `flows`
    double bytes = 0;
    std::uint32_t version = 0;  // bumped whenever a queued event of it goes stale
    // waiting: when it takes its share. shared: its bytes left at `since_s` and its rate.
    // alone (in a group): `key`, the group's clock reading at which it has all its bytes.
    double start_s = 0;
    double left = 0;
    double rate = 0;
    double since_s = 0;
    std::uint32_t group = kNone;
    double key = 0;
    std::uint32_t spos[2] = {0, 0};  // shared: its index in each resource's `shared`
    std::uint32_t frozen_in = 0;     // the solve() that last fixed its rate
  };

  // The flows alone on their other resource, with equal caps, that take their share of one
  // resource: each has received `clock` bytes more than it had when the group began.
  struct Group {
    ResourceId res = 0;
    double cap = 0;
    double clock = 0;
    double since_s = 0;
    double rate = 0;
    std::uint32_t version = 0;
    std::set<std::pair<double, FlowId>> members;  // (key, flow)
  };

  struct Resource {
    double capacity = 0;
    std::vector<FlowId> flows;          // every flow taking a share of it
    std::vector<std::uint32_t> groups;  // groups of flows alone elsewhere, sharing this one
    std::vector<FlowId> shared;         // those of them in state `shared`
    bool dirty = false;                 // its flows changed since the last solve()
    // Scratch for solve().
    bool in_solve = false;
    bool done = false;
    std::uint32_t unfrozen = 0;
    double frozen_Bps = 0;
    double level = kNever;
  };

  enum class Kind : std::uint8_t { group, flow };
  struct Event {
    double at_s;
    Kind kind;
    std::uint32_t id;
    std::uint32_t version;
    bool operator>(const Event& o) const {
      if (at_s != o.at_s) return at_s > o.at_s;
      if (kind != o.kind) return kind > o.kind;
      return id > o.id;
    }
  };

  bool stale(const Event& e) const;
  void drop_stale() const;
  void schedule_flow(FlowId f);
  void schedule_group(std::uint32_t g);

  void take_share(FlowId f);
  void leave(FlowId f);
  void place(FlowId f);
  void unplace(FlowId f);
  void touch(ResourceId r);
  void replace_alone(ResourceId r);
  ResourceId other(const Flow& f, ResourceId r) const {
    return f.res[0] == r ? f.res[1] : f.res[0];
  }
  void fold(Group& g) const;
  void fold(Flow& f) const;
  std::uint32_t group_for(ResourceId r, double cap);
  double saturation(const Resource& r) const;
  void solve();

  double now_s_ = 0;
  std::vector<Resource> resources_;
  std::vector<Flow> flows_;
  std::vector<FlowId> free_flows_;
  std::vector<Group> groups_;
  std::vector<std::uint32_t> free_groups_;
  std::vector<ResourceId> dirty_;
  std::uint32_t solves_ = 0;
  mutable std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::size_t under_way_ = 0;
};

}  // namespace hearth::sim
