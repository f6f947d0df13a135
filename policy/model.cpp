#include "policy/model.hpp"

#include <iterator>

#include "policy/enum_names.hpp"
#include "policy/workload.hpp"

namespace hearth {

namespace {

constexpr const char* kTierNames[] = {"gpu", "host", "disk"};
static_assert(std::size(kTierNames) == kTierCount);
constexpr const char* kSourceKindNames[] = {"shared", "peer", "lower"};
// Also the keys of context_loads in the simulator's summary.json.
constexpr const char* kLoadSourceNames[] = {"shared_storage", "peer", "local_disk", "host_memory"};
static_assert(std::size(kLoadSourceNames) == kLoadSourceCount);

}  // namespace

const char* to_string(Tier tier) {
  return enum_name(tier, kTierNames);
}

const char* to_string(SourceKind kind) {
  return enum_name(kind, kSourceKindNames);
}

const char* to_string(LoadSource source) {
  return enum_name(source, kLoadSourceNames);
}

std::uint64_t Workload::total_inferences() const {
  std::uint64_t total = 0;
  for (auto n : inferences)
    total += n;
  return total;
}

ContextId Workload::add(ContextSpec context, std::uint64_t count) {
  context.id = static_cast<ContextId>(contexts.size());
  contexts.push_back(std::move(context));
  inferences.push_back(count);
  return contexts.back().id;
}

}  // namespace hearth
