#pragma once
// Policies selected by name, and the list `hearth policies` prints.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/eviction.hpp"
#include "policy/granularity.hpp"
#include "policy/placement.hpp"
#include "policy/replication.hpp"

namespace hearth {

struct PolicyChoice {
  std::string placement = "pcm";
  std::string eviction = "lru";
  std::string granularity = "fixed";
  std::string replication = "flow";
  std::uint64_t batch_size = 100;  // fixed: the batch size; adaptive: the largest allowed
  int upload_cap = 10;             // concurrent uploads per peer (TaskVine's default)
};

struct PolicySet {
  std::unique_ptr<Placement> placement;
  std::unique_ptr<Eviction> eviction;
  std::unique_ptr<Granularity> granularity;
  std::unique_ptr<Replication> replication;
};

// Throws InputError naming the unknown policy and the known ones.
PolicySet make_policies(const PolicyChoice& choice);

// Chooses a placement together with the eviction and granularity it is meant to run with:
// adaptive with cost eviction and adaptive granularity, naive and pcm with lru and fixed.
void select_placement(PolicyChoice& choice, const std::string& placement);

// What a user named (flags, a [policy] table, an experiment's policy label), each replacing the
// choice's own when set.
struct PolicyOverrides {
  std::optional<std::string> placement;  // brings its eviction and granularity (select_placement)
  std::optional<std::string> eviction;
  std::optional<std::string> granularity;
  std::optional<std::string> replication;
  std::optional<std::uint64_t> batch_size;
  std::optional<std::uint64_t> upload_cap;
};

// How every backend applies a user's policies: the placement first, with the eviction and
// granularity it brings, then any eviction or granularity named too, then the rest.
void apply_overrides(PolicyChoice& choice, const PolicyOverrides& overrides);

struct PolicyInfo {
  std::string kind;  // placement, eviction, granularity, replication
  std::string name;
  std::string summary;
};
const std::vector<PolicyInfo>& known_policies();

}  // namespace hearth
