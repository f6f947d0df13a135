#pragma once
// What a run has to do: for each context, how many inferences need it.

#include <cstdint>
#include <vector>

#include "policy/model.hpp"

namespace hearth {

struct Workload {
  // contexts[i].id == i.
  std::vector<ContextSpec> contexts;
  // inferences[i]: how many inferences need context i.
  std::vector<std::uint64_t> inferences;

  std::uint64_t total_inferences() const;
  // Adds a context with the next id and returns that id.
  ContextId add(ContextSpec context, std::uint64_t inferences);
};

}  // namespace hearth
