// The traces shipped in traces/data/: each parses, names only the documented GPU types, has the
// pinned counts, and is exactly what the converter or the generator makes from its source today
// (traces/data/convert.sh lists the commands).

#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/traces/helpers.hpp"
#include "traces/convert_bamboo.hpp"
#include "traces/convert_spotserve.hpp"
#include "traces/generator.hpp"
#include "traces/generator_spec.hpp"
#include "traces/gpu_types.hpp"
#include "traces/summary.hpp"
#include "traces/text.hpp"
#include "traces/trace_writer.hpp"

namespace hearth::traces {
namespace {

using testing::kPublicDir;
using testing::kShippedDir;

struct Shipped {
  std::string file;
  std::size_t events, workers, peak, preemptions;
  double end_s;
};

const std::vector<Shipped> kShipped = {
    {"bamboo-g4dn-us-east-1c-2020-11-20.csv", 177, 92, 12, 85, 88194},
    {"bamboo-g4dn-us-east-1d-2020-11-23.csv", 110, 59, 12, 51, 45668},
    {"bamboo-p2-us-east-1e-2020-11-23.csv", 16, 13, 10, 3, 68252},
    {"bamboo-p2-2020-11-20-to-23.csv", 370, 192, 16, 178, 319302},
    {"spotserve-g4dn.csv", 153, 79, 24, 74, 38760},
    {"spotserve-g4dn-segment-0203.csv", 16, 13, 10, 3, 540},
    {"spotserve-g4dn-segment-0304.csv", 14, 11, 10, 3, 1320},
    {"spotserve-g4dn-segment-0506.csv", 15, 12, 10, 3, 1440},
    {"campus-seed1-24h.csv", 2992, 555, 186, 1403, 86400},
};

// The rows of a trace file without its comments: what a conversion must reproduce.
std::string rows_of(const std::string& text) {
  std::istringstream in(text);
  std::string rows, line;
  while (std::getline(in, line)) {
    if (!line.starts_with('#')) rows += line + '\n';
  }
  return rows;
}

std::string rows_of(const Trace& trace) {
  std::ostringstream out;
  write_trace(out, trace, {});
  return out.str();
}

TEST_CASE("every shipped trace parses, with pinned counts and documented GPU types") {
  const std::set<std::string> documented = {std::string(gpu::kA100), std::string(gpu::kV100),
                                            std::string(gpu::kA10),  std::string(gpu::kRtx6000),
                                            std::string(gpu::kT4),   std::string(gpu::kTitanX),
                                            std::string(gpu::kK80)};
  std::size_t csv_files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kShippedDir)) {
    csv_files += entry.path().extension() == ".csv";
  }
  CHECK(csv_files == kShipped.size());  // a new file needs its line here
  for (const auto& shipped : kShipped) {
    CAPTURE(shipped.file);
    const auto trace = parse_trace_file((kShippedDir / shipped.file).string());
    CHECK_NOTHROW(validate_gpu_types(trace, documented));
    const auto s = summarize(trace);
    CHECK(s.events == shipped.events);
    CHECK(s.workers == shipped.workers);
    CHECK(s.peak_up == shipped.peak);
    CHECK(s.preemptions == shipped.preemptions);
    CHECK(s.end_s == shipped.end_s);
  }
}

TEST_CASE("the shipped campus trace is what its preset and seed generate today") {
  const auto shipped = read_text_file((kShippedDir / "campus-seed1-24h.csv").string());
  CHECK(rows_of(shipped) == rows_of(generate_trace(preset("campus"))));
}

TEST_CASE("the shipped conversions are what the converters make from the published files") {
  const auto bamboo = [](const std::string& name, TimeUnit unit, std::string_view gpu_type) {
    const auto path = (kPublicDir / "bamboo-aws-spot" / name).string();
    return convert_bamboo(read_text_file(path), path,
                          {unit, std::string(gpu_type), LeaveOrder::newest_first, "spot-"});
  };
  const auto spotserve = [](const std::string& name) {
    const auto path = (kPublicDir / "spotserve-aws-spot" / name).string();
    return convert_spotserve(read_text_file(path), path, {TimeUnit::ms, std::string(gpu::kT4)});
  };
  const std::vector<std::pair<std::string, Trace>> expected = {
      {"bamboo-g4dn-us-east-1c-2020-11-20.csv",
       bamboo("aws-spot-instances-g4dn-xlarge-us-east-1c-2020-11-20-1930-to-2020-11-21-2200.csv",
              TimeUnit::s, gpu::kT4)},
      {"bamboo-g4dn-us-east-1d-2020-11-23.csv",
       bamboo("aws-spot-instances-g4dn-xlarge-us-east-1d-2020-11-23-1730-to-2020-11-24-1530.csv",
              TimeUnit::s, gpu::kT4)},
      {"bamboo-p2-us-east-1e-2020-11-23.csv",
       bamboo("aws-spot-instances-p2-xlarge-us-east-1e-2020-11-23-1700-to-2020-11-24-0700.csv",
              TimeUnit::s, gpu::kK80)},
      {"bamboo-p2-2020-11-20-to-23.csv",
       bamboo("aws-spot-instances-p2-xlarge-2020-11-20-to-2020-11-23.csv", TimeUnit::h, gpu::kK80)},
      {"spotserve-g4dn.csv", spotserve("g4dn.csv")},
      {"spotserve-g4dn-segment-0203.csv", spotserve("trace_0203.txt")},
      {"spotserve-g4dn-segment-0304.csv", spotserve("trace_0304.txt")},
      {"spotserve-g4dn-segment-0506.csv", spotserve("trace_0506.txt")},
  };
  for (const auto& [file, trace] : expected) {
    CAPTURE(file);
    CHECK(rows_of(read_text_file((kShippedDir / file).string())) == rows_of(trace));
  }
}

TEST_CASE("AWS instance families in a file name give their GPU type") {
  CHECK(gpu::of_aws_file("/x/aws-spot-instances-g4dn-xlarge-us-east-1c.csv") == "T4-16GB");
  CHECK(gpu::of_aws_file("aws-spot-instances-p2-xlarge-2020-11-20-to-2020-11-23.csv") ==
        "K80-12GB");
  CHECK(gpu::of_aws_file("g4dn.csv") == "T4-16GB");
  CHECK(gpu::of_aws_file("p2/trace_0203.txt") == "");  // the folder does not count
  CHECK(gpu::of_aws_file("aws-spot-instances-p3-2xlarge.csv") == "V100-16GB");
  CHECK(gpu::of_aws_file("p3dn-trace.csv") == "V100-32GB");
  CHECK(gpu::of_aws_file("p38-trace.csv") == "");
}

}  // namespace
}  // namespace hearth::traces
