#pragma once
// Policies selected by name, and the list `hearth policies` prints.

#include <cstdint>
#include <memory>
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
// adaptive with cost eviction and adaptive granularity, naive and pcm with lru and fixed. Every
// backend applies a user's placement this way, then any eviction or granularity named too.
void select_placement(PolicyChoice& choice, const std::string& placement);

struct PolicyInfo {
  std::string kind;  // placement, eviction, granularity, replication
  std::string name;
  std::string summary;
};
const std::vector<PolicyInfo>& known_policies();

}  // namespace hearth
