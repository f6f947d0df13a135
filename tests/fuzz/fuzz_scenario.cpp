// Scenario and cluster-description files (docs/simulator.md, docs/cluster-description.md): the
// first byte picks which; the rest is the TOML. A scenario sits where the bundled ones do, beside
// a copy of the bundled clusters, so that `cluster = "../clusters/campus.toml"` is found.

#include <iterator>

#include "sim_backend/cluster_description.hpp"
#include "sim_backend/scenario.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  static const bool clusters = [] {
    for (const char* name : {"campus.toml", "h200.toml"}) {
      const auto from = std::filesystem::path(HEARTH_SOURCE_DIR) / "experiments/clusters" / name;
      std::ifstream in(from, std::ios::binary);
      const std::string text{std::istreambuf_iterator<char>(in), {}};
      fuzz::as_file(text, std::string("clusters/") + name);
    }
    return true;
  }();
  (void)clusters;
  if (size == 0) return 0;
  const std::string_view text = fuzz::as_text(data + 1, size - 1);
  fuzz::expect_input_error([&] {
    if (data[0] % 2 == 0) {
      sim::load_cluster_description(fuzz::as_file(text, "cluster.toml").string());
    } else {
      // A generated trace is as long as its few numbers ask: small limits keep each input
      // well under the second that counts as a hang, while every limit is still reached.
      const sim::ScenarioOverrides small{
          .generator_limits = {.max_machines = 10'000, .max_steps = 100'000, .max_events = 20'000}};
      sim::check_scenario(
          sim::load_scenario(fuzz::as_file(text, "scenarios/scenario.toml").string(), small));
    }
  });
  return 0;
}
