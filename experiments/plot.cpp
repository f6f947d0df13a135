#include "experiments/plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "experiments/spec.hpp"
#include "os/process.hpp"
#include "policy/errors.hpp"

namespace hearth::experiments {

namespace fs = std::filesystem;

std::vector<std::string> plot_experiment(const std::string& out_dir,
                                         const std::vector<std::string>& figures) {
  const auto& known = known_figures();
  for (const auto& f : figures) {
    if (std::find(known.begin(), known.end(), f) == known.end()) {
      throw InputError(
          fmt::format("--only: unknown figure '{}' (known: {})", f, fmt::join(known, ", ")));
    }
  }
  fs::path out(out_dir);
  std::vector<std::string> events;  // a real run's events file: drawn into FILE.plot/
  if (fs::is_regular_file(out)) {
    events = {"--events", out.string()};
    out = fs::path(out).replace_extension(".plot");
  }
  for (const char* needed : {"results.csv", "experiment.json"}) {
    if (!events.empty()) break;
    if (!fs::is_regular_file(out / needed)) {
      throw InputError(fmt::format("{}: no {} (run hearth experiment run SPEC --out {} first)",
                                   out_dir, needed, out_dir));
    }
  }
  std::vector<std::string> args = {
      os::environment_or("HEARTH_PYTHON", "/usr/bin/python3"),
      os::environment_or("HEARTH_PLOT_EXPERIMENT_SCRIPT", HEARTH_PLOT_EXPERIMENT_SCRIPT)};
  args.insert(args.end(), events.begin(), events.end());
  args.push_back(out.string());
  if (!figures.empty()) args.push_back(fmt::format("--only={}", fmt::join(figures, ",")));
  const int status = os::run_program(args);
  if (status != 0) {
    throw InputError(fmt::format("{}: the plot script failed (exit status {})", out_dir, status));
  }
  std::vector<std::string> written;
  if (fs::is_directory(out / "figures")) {
    for (const auto& entry : fs::directory_iterator(out / "figures"))
      written.push_back(entry.path().string());
  }
  std::sort(written.begin(), written.end());
  return written;
}

}  // namespace hearth::experiments
