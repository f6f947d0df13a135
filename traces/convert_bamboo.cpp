#include "traces/convert_bamboo.hpp"

#include <fmt/core.h>

#include <cmath>
#include <deque>
#include <iterator>
#include <random>
#include <utility>

#include "policy/errors.hpp"
#include "traces/text.hpp"

namespace hearth::traces {

LeaveOrder parse_leave_order(std::string_view word) {
  if (word == "newest") return LeaveOrder::newest_first;
  if (word == "oldest") return LeaveOrder::oldest_first;
  if (word == "random") return LeaveOrder::random;
  throw InputError(fmt::format("leave order '{}' is not one of newest, oldest, random", word));
}

Trace convert_bamboo(std::string_view text, std::string_view source_name,
                     const BambooOptions& options) {
  Trace trace;
  trace.source = source_name;
  const auto lines = content_lines(text, source_name, "empty file: no time,count rows");

  std::deque<std::string> alive;  // front: the oldest
  std::size_t next_number = 1;
  double previous_s = 0;
  std::string_view previous_time;
  // mt19937_64 is the same sequence everywhere, and the draw below uses it directly: the same
  // seed gives the same trace on every platform.
  std::mt19937_64 draw(options.seed);
  bool first = true;
  for (const auto& [line, content] : lines) {
    const auto fields = split_fields(content, ',');
    if (std::exchange(first, false) && options.header && fields.size() == 2 &&
        (fields[0] == "time" || fields[0] == "time_s") && fields[1] == "count") {
      continue;
    }
    if (fields.size() != 2) {
      fail(source_name, line,
           fmt::format("expected time,count but found {} fields", fields.size()));
    }
    const double time_s = round_to_ms(parse_nonnegative(fields[0], "time", source_name, line) *
                                      seconds_per(options.time_unit));
    const double count = parse_nonnegative(fields[1], "count", source_name, line);
    if (count != std::floor(count)) {
      fail(source_name, line, fmt::format("count {} is not a whole number", fields[1]));
    }
    if (time_s < previous_s) {
      fail(source_name, line,
           fmt::format("time {} goes backwards (previous {})", fields[0], previous_time));
    }
    previous_s = time_s;
    previous_time = fields[0];

    const auto target = static_cast<std::size_t>(count);
    while (alive.size() < target) {
      alive.push_back(fmt::format("{}{}", options.worker_prefix, next_number++));
      trace.events.push_back({time_s, alive.back(), EventKind::up, options.gpu_type, 0, line, {}});
    }
    while (alive.size() > target) {
      auto leaving = alive.begin();
      switch (options.leave) {
        case LeaveOrder::newest_first:
          leaving = std::prev(alive.end());
          break;
        case LeaveOrder::oldest_first:
          break;
        case LeaveOrder::random:
          leaving += static_cast<std::ptrdiff_t>(draw() % alive.size());
          break;
      }
      trace.events.push_back({time_s, std::move(*leaving), EventKind::down, "", 0, line, {}});
      alive.erase(leaving);
    }
  }
  if (trace.events.empty()) fail(source_name, lines.front().number, "no instance is ever alive");
  trace.end_s = previous_s;
  check_trace(trace);
  return trace;
}

}  // namespace hearth::traces
