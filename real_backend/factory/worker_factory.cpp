#include "real_backend/factory/worker_factory.hpp"

namespace hearth::real {

std::vector<std::string> local_worker_argv(const std::string& hearth, const std::string& manager,
                                           const std::filesystem::path& keys,
                                           const std::string& name,
                                           const std::filesystem::path& work_dir) {
  return {hearth,        "worker", "--manager", manager,   "--keys",
          keys.string(), "--name", name,        "--cache", (work_dir / "cache" / name).string()};
}

os::StartOptions worker_process() {
  os::StartOptions o;
  o.die_with_parent = true;
  o.hold_sigterm = true;
  return o;
}

}  // namespace hearth::real
