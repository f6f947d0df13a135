#include "experiments/plot.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "experiments/spec.hpp"
#include "policy/errors.hpp"

extern char** environ;

namespace hearth::experiments {

namespace fs = std::filesystem;

namespace {

std::string from_environment(const char* name, const char* otherwise) {
  const char* value = std::getenv(name);
  return value && *value ? value : otherwise;
}

// Runs args[0] without a shell and returns its exit status.
int run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (error != 0) {
    throw std::runtime_error(fmt::format("cannot run {}: {}", args[0], std::strerror(error)));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::vector<std::string> plot_experiment(const std::string& out_dir,
                                         const std::vector<std::string>& figures) {
  const auto& known = known_figures();
  for (const auto& f : figures) {
    if (std::find(known.begin(), known.end(), f) == known.end()) {
      throw InputError(
          fmt::format("--only: unknown figure '{}' (known: {})", f, fmt::join(known, ", ")));
    }
  }
  const fs::path out(out_dir);
  for (const char* needed : {"results.csv", "experiment.json"}) {
    if (!fs::is_regular_file(out / needed)) {
      throw InputError(fmt::format("{}: no {} (run hearth experiment run SPEC --out {} first)",
                                   out_dir, needed, out_dir));
    }
  }
  std::vector<std::string> args = {
      from_environment("HEARTH_PYTHON", "/usr/bin/python3"),
      from_environment("HEARTH_PLOT_EXPERIMENT_SCRIPT", HEARTH_PLOT_EXPERIMENT_SCRIPT), out_dir};
  if (!figures.empty()) args.push_back(fmt::format("--only={}", fmt::join(figures, ",")));
  const int status = run_program(args);
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
