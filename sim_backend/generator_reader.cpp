#include "sim_backend/generator_reader.hpp"

#include <fmt/format.h>

#include "policy/errors.hpp"
#include "traces/generator_spec.hpp"

namespace hearth::sim {

namespace {

traces::Lifetime parse_lifetime(const std::string& source, const std::string& text) {
  constexpr std::string_view kEmpirical = "empirical:";
  if (!text.starts_with(kEmpirical)) return traces::parse_lifetime(text);
  return traces::parse_lifetime(
      fmt::format("{}{}", kEmpirical, relative_to(source, text.substr(kEmpirical.size()))));
}

}  // namespace

traces::GeneratorConfig read_generator(const Node& t) {
  traces::GeneratorConfig config = t.parsed("generate", traces::preset);
  if (t.has("duration")) {
    config.duration_s = t.is_string("duration") ? t.parsed("duration", traces::parse_duration_s)
                                                : t.positive("duration");
  }
  config.start_hour = t.number_or("start_hour", config.start_hour);
  if (t.has("pool")) config.pool = t.parsed("pool", traces::parse_pool);
  config.max_held = t.count_or("max_held", config.max_held);
  config.initial = t.whole_or("initial", config.initial);
  if (t.has("arrivals")) config.arrivals = t.parsed("arrivals", traces::parse_arrivals);
  if (t.has("lifetime")) {
    config.lifetime = t.parsed(
        "lifetime", [&](const std::string& text) { return parse_lifetime(t.source(), text); });
  }
  if (t.has("reclaim")) config.reclaim = t.parsed("reclaim", traces::parse_reclaim);
  config.notice_s = t.non_negative_or("notice_s", config.notice_s);
  return config;
}

}  // namespace hearth::sim
