#include "traces/convert_bamboo.hpp"

#include <fmt/core.h>

#include <cmath>
#include <random>
#include <utility>

#include <nlohmann/json.hpp>

#include "policy/errors.hpp"
#include "traces/text.hpp"

namespace hearth::traces {

LeaveOrder parse_leave_order(std::string_view word) {
  if (word == "newest") return LeaveOrder::newest_first;
  if (word == "oldest") return LeaveOrder::oldest_first;
  if (word == "random") return LeaveOrder::random;
  throw InputError(fmt::format("leave order '{}' is not one of newest, oldest, random", word));
}

namespace {

// The instances in order of arrival, those still alive marked in a Fenwick tree, so that the k-th
// alive one (the oldest, the newest, a random one) is found and removed in O(log n).
class AliveInstances {
 public:
  explicit AliveInstances(std::size_t capacity) : tree_(capacity + 1, 0) {}
  void arrive(std::size_t i) { add(i, 1); }
  void leave(std::size_t i) { add(i, -1); }
  // The index of the k-th (0-based) instance alive, in order of arrival.
  std::size_t kth(std::size_t k) const {
    std::size_t at = 0;
    std::size_t step = 1;
    while (step * 2 < tree_.size())
      step *= 2;
    for (; step > 0; step /= 2) {
      if (at + step < tree_.size() && static_cast<std::size_t>(tree_[at + step]) <= k) {
        at += step;
        k -= static_cast<std::size_t>(tree_[at]);
      }
    }
    return at;  // 1-based position at + 1, so 0-based index at
  }

 private:
  void add(std::size_t i, int delta) {
    for (std::size_t j = i + 1; j < tree_.size(); j += j & (~j + 1))
      tree_[j] += delta;
  }
  std::vector<int> tree_;
};

}  // namespace

Trace trace_from_counts(const std::vector<CountPoint>& points, double end_s,
                        std::string_view source_name, const BambooOptions& options) {
  Trace trace;
  trace.source = source_name;
  std::size_t arrivals = 0;
  std::size_t events = 0;
  std::size_t count = 0;
  for (const CountPoint& p : points) {
    arrivals += p.count > count ? p.count - count : 0;
    events += p.count > count ? p.count - count : count - p.count;
    count = p.count;
    if (events > options.max_events) {
      fail(source_name, p.line,
           fmt::format("the series makes more than {} up and down events", options.max_events));
    }
  }
  trace.events.reserve(events);
  std::vector<std::string> names;
  names.reserve(arrivals);
  AliveInstances alive(arrivals);
  std::size_t alive_count = 0;
  // mt19937_64 is the same sequence everywhere, and the draw below uses it directly: the same
  // seed gives the same trace on every platform.
  std::mt19937_64 draw(options.seed);
  for (const CountPoint& p : points) {
    while (alive_count < p.count) {
      alive.arrive(names.size());
      names.push_back(fmt::format("{}{}", options.worker_prefix, names.size() + 1));
      ++alive_count;
      trace.events.push_back(
          {p.time_s, names.back(), EventKind::up, options.gpu_type, 0, p.line, {}});
    }
    while (alive_count > p.count) {
      std::size_t k = 0;  // the oldest
      switch (options.leave) {
        case LeaveOrder::newest_first:
          k = alive_count - 1;
          break;
        case LeaveOrder::oldest_first:
          break;
        case LeaveOrder::random:
          k = static_cast<std::size_t>(draw() % alive_count);
          break;
      }
      const std::size_t leaving = alive.kth(k);
      alive.leave(leaving);
      --alive_count;
      trace.events.push_back(
          {p.time_s, std::move(names[leaving]), EventKind::down, "", 0, p.line, {}});
    }
  }
  if (trace.events.empty()) {
    fail(source_name, points.empty() ? 1 : points.front().line, "no instance is ever alive");
  }
  trace.end_s = end_s;
  check_trace(trace);
  return trace;
}

Trace convert_bamboo(std::string_view text, std::string_view source_name,
                     const BambooOptions& options) {
  const auto lines = content_lines(text, source_name, "empty file: no time,count rows");
  std::vector<CountPoint> points;
  double previous_s = 0;
  std::string_view previous_time;
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
    if (count > options.max_at_once) {
      fail(source_name, line,
           fmt::format("count {} is more than {} instances at once", fields[1],
                       options.max_at_once));
    }
    if (time_s < previous_s) {
      fail(source_name, line,
           fmt::format("time {} goes backwards (previous {})", fields[0], previous_time));
    }
    previous_s = time_s;
    previous_time = fields[0];
    points.push_back({time_s, static_cast<std::size_t>(count), line});
  }
  return trace_from_counts(points, previous_s, source_name, options);
}

Trace convert_skypilot(std::string_view text, std::string_view source_name,
                       const BambooOptions& options) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(source_name, 0, fmt::format("not JSON: {}", e.what()));
  }
  const bool shaped = j.is_object() && j.contains("metadata") && j["metadata"].is_object() &&
                      j["metadata"].contains("gap_seconds") &&
                      j["metadata"]["gap_seconds"].is_number();
  if (!shaped) {
    fail(source_name, 0,
         "expected {\"metadata\": {\"gap_seconds\": ...}, \"data\": [...]} "
         "(skypilot-org/spot-traces)");
  }
  const double gap = j["metadata"]["gap_seconds"].get<double>();
  if (!(gap > 0) || !std::isfinite(gap)) {
    fail(source_name, 0, fmt::format("metadata.gap_seconds must be more than 0 (is {})", gap));
  }
  if (!j.contains("data") || !j["data"].is_array() || j["data"].empty()) {
    fail(source_name, 0, "data: expected a non-empty array of instance counts");
  }
  const auto& data = j["data"];
  std::vector<CountPoint> points;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto& v = data[i];
    const double n = v.is_boolean() ? v.get<bool>() : v.is_number() ? v.get<double>() : -1;
    if (!(n >= 0) || n != std::floor(n) || n > options.max_at_once) {
      fail(source_name, 0,
           fmt::format("data[{}]: {} is not a whole number of instances", i, v.dump()));
    }
    points.push_back({round_to_ms(static_cast<double>(i) * gap), static_cast<std::size_t>(n), 1});
  }
  return trace_from_counts(points, round_to_ms(static_cast<double>(data.size()) * gap), source_name,
                           options);
}

}  // namespace hearth::traces
