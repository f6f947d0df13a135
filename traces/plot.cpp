#include "traces/plot.hpp"

#include <fmt/core.h>
#include <fmt/ostream.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "os/process.hpp"
#include "policy/errors.hpp"
#include "traces/availability.hpp"
#include "traces/text.hpp"

namespace hearth::traces {
namespace {

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

}  // namespace

void plot_availability(const Trace& trace, const std::string& title, const std::string& png_path) {
  const auto directory = std::filesystem::path(png_path).parent_path();
  if (access(directory.empty() ? "." : directory.c_str(), W_OK) != 0) {
    fail(png_path, 0, fmt::format("cannot write there: {}", std::strerror(errno)));
  }
  std::error_code ec;
  if (std::filesystem::is_directory(png_path, ec)) fail(png_path, 0, "is a folder, not a file");
  if (access(png_path.c_str(), F_OK) == 0 && access(png_path.c_str(), W_OK) != 0) {
    fail(png_path, 0, fmt::format("cannot write: {}", std::strerror(errno)));
  }
  const std::string python = os::environment_or("HEARTH_PYTHON", "/usr/bin/python3");
  const std::string script =
      os::environment_or("HEARTH_PLOT_TRACE_SCRIPT", HEARTH_PLOT_TRACE_SCRIPT);

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
  const int status = os::run_program({python, script, series_path, png_path, title});
  std::filesystem::remove(series_path);
  if (status == 2) throw InputError(fmt::format("{}: the plot was not written", png_path));
  if (status != 0) {
    throw std::runtime_error(
        fmt::format("{} {} failed with exit status {}", python, script, status));
  }
}

}  // namespace hearth::traces
