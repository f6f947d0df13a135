#pragma once
// The report `hearth run` prints at the end of a run, from the manager's final status snapshot
// (real_backend/manager/run_monitor.hpp): what the operator needs to judge the run at a glance.

#include <nlohmann/json.hpp>
#include <string>

namespace hearth::cli {

// Lines of text, each ending in a newline. Fields the snapshot lacks count as zero.
std::string run_report(const nlohmann::json& status);

}  // namespace hearth::cli
