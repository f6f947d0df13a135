#include "policy/model.hpp"

#include "policy/workload.hpp"

namespace hearth {

const char* to_string(Tier tier) {
  switch (tier) {
    case Tier::gpu:
      return "gpu";
    case Tier::host:
      return "host";
    case Tier::disk:
      return "disk";
  }
  return "?";
}

const char* to_string(SourceKind kind) {
  switch (kind) {
    case SourceKind::shared_storage:
      return "shared";
    case SourceKind::peer:
      return "peer";
    case SourceKind::lower_tier:
      return "lower";
  }
  return "?";
}

const char* to_string(LoadSource source) {
  switch (source) {
    case LoadSource::shared_storage:
      return "shared_storage";
    case LoadSource::peer:
      return "peer";
    case LoadSource::local_disk:
      return "local_disk";
    case LoadSource::host_memory:
      return "host_memory";
  }
  return "?";
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
