#include "traces/plot.hpp"

#include <fmt/core.h>
#include <fmt/ostream.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "traces/availability.hpp"
#include "traces/text.hpp"

extern char** environ;

namespace hearth::traces {
namespace {

std::string from_environment(const char* name, const char* otherwise) {
  const char* value = std::getenv(name);
  return value && *value ? value : otherwise;
}

// The series as CSV for the script: time_s,all,<type>...; a last row at the end holds the
// final counts so that the steps reach it.
void write_series(std::ostream& out, const AvailabilitySeries& series) {
  fmt::print(out, "time_s,all");
  for (const auto& type : series.gpu_types)
    fmt::print(out, ",{}", type);
  fmt::print(out, "\n");
  auto print_row = [&](double time_s, const AvailabilityStep& step) {
    fmt::print(out, "{},{}", time_s, step.up);
    for (const auto count : step.up_by_type)
      fmt::print(out, ",{}", count);
    fmt::print(out, "\n");
  };
  for (const auto& step : series.steps)
    print_row(step.time_s, step);
  print_row(series.end_s, series.steps.back());
}

// Runs argv[0] with argv, without a shell, and returns its exit status.
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

void plot_availability(const Trace& trace, const std::string& title, const std::string& png_path) {
  const auto directory = std::filesystem::path(png_path).parent_path();
  if (access(directory.empty() ? "." : directory.c_str(), W_OK) != 0) {
    fail(png_path, 0, fmt::format("cannot write there: {}", std::strerror(errno)));
  }
  const std::string python = from_environment("HEARTH_PYTHON", "/usr/bin/python3");
  const std::string script = from_environment("HEARTH_PLOT_TRACE_SCRIPT", HEARTH_PLOT_TRACE_SCRIPT);

  std::string series_path =
      (std::filesystem::temp_directory_path() / "hearth-trace-series-XXXXXX").string();
  const int fd = mkstemp(series_path.data());
  if (fd < 0)
    throw std::runtime_error(fmt::format("cannot make a temporary file: {}", std::strerror(errno)));
  close(fd);
  {
    std::ofstream out(series_path);
    write_series(out, availability_series(trace));
  }
  const int status = run_program({python, script, series_path, png_path, title});
  std::filesystem::remove(series_path);
  if (status != 0) {
    throw std::runtime_error(
        fmt::format("{} {} failed with exit status {}", python, script, status));
  }
}

}  // namespace hearth::traces
