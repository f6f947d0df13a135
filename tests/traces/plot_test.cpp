// The plot: `hearth trace plot` runs traces/plot_trace.py with matplotlib and gets a PNG.

#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <fstream>

#include "tests/traces/helpers.hpp"
#include "traces/plot.hpp"
#include "traces/trace.hpp"

namespace hearth::traces {
namespace {

TEST_CASE("plotting a trace writes a PNG picture") {
  const auto trace =
      parse_trace_file((testing::kTestDataDir / "spotserve-style-unseen.trace.csv").string());
  const auto png = std::filesystem::temp_directory_path() / "hearth-plot-test.png";
  std::filesystem::remove(png);
  plot_availability(trace, "a test trace", png.string());
  std::ifstream in(png, std::ios::binary);
  std::string magic(8, '\0');
  in.read(magic.data(), 8);
  CHECK(magic == "\x89PNG\r\n\x1a\n");
  CHECK(std::filesystem::file_size(png) > 10000);
  std::filesystem::remove(png);
}

TEST_CASE("plotting into a folder that does not exist is the user's error") {
  const auto trace =
      parse_trace_file((testing::kTestDataDir / "spotserve-style-unseen.trace.csv").string());
  CHECK(testing::input_error([&] {
          plot_availability(trace, "t", "/nonexistent/folder/plot.png");
        }) == "/nonexistent/folder/plot.png: cannot write there: No such file or directory");
}

}  // namespace
}  // namespace hearth::traces
