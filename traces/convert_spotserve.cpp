#include "traces/convert_spotserve.hpp"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "traces/text.hpp"

namespace hearth::traces {
namespace {

struct Builder {
  Trace& trace;
  const SpotServeOptions& options;
  std::size_t done_line = 0;
  double previous_raw = 0;  // in the file's own unit, so that messages quote the file
  std::size_t previous_line = 0;

  double time_s(double raw) const { return round_to_ms(raw * seconds_per(options.time_unit)); }

  void check_order(std::size_t line, double raw) {
    if (previous_line != 0 && raw < previous_raw) {
      fail(trace.source, line,
           fmt::format("time {} goes backwards (previous {} at line {})", raw, previous_raw,
                       previous_line));
    }
    previous_raw = raw;
    previous_line = line;
  }

  void add_event(std::size_t line, double time_s, std::string_view action, std::string node) {
    if (done_line != 0) {
      fail(trace.source, line, fmt::format("event after DONE at line {}", done_line));
    }
    EventKind kind = EventKind::up;
    if (action == "remove") {
      kind = EventKind::down;
    } else if (action != "add") {
      fail(trace.source, line, fmt::format("unknown action '{}' (expected add or remove)", action));
    }
    if (node.empty()) fail(trace.source, line, fmt::format("{} without a node name", action));
    const std::string gpu_type = kind == EventKind::up ? options.gpu_type : "";
    trace.events.push_back({time_s, std::move(node), kind, gpu_type, 0, line, {}});
  }

  void read_csv_row(const TextLine& row) {
    const auto fields = split_fields(row.text, ',');
    if (fields.size() != 3) {
      fail(trace.source, row.number,
           fmt::format("expected time_ms,add|remove,node but found {} fields", fields.size()));
    }
    const double raw = parse_nonnegative(fields[0], "time", trace.source, row.number);
    check_order(row.number, raw);
    add_event(row.number, time_s(raw), fields[1], std::string(fields[2]));
  }

  void read_json_row(const TextLine& row) {
    nlohmann::json entry;
    try {
      entry = nlohmann::json::parse(row.text);
    } catch (const nlohmann::json::exception& e) {
      fail(trace.source, row.number, fmt::format("not JSON: {}", e.what()));
    }
    const bool shaped = entry.is_array() && entry.size() == 3 && entry[0].is_number() &&
                        entry[1].is_string() && entry[2].is_object() &&
                        entry[2].contains("nodes") && entry[2]["nodes"].is_array();
    if (!shaped) {
      fail(trace.source, row.number, "expected [time_ms, \"add\"|\"remove\", {\"nodes\": [...]}]");
    }
    const double raw = entry[0].get<double>();
    if (!(raw >= 0)) fail(trace.source, row.number, fmt::format("time {} is negative", raw));
    check_order(row.number, raw);
    const auto action = entry[1].get<std::string>();
    if (action != "add" && action != "remove" && action != "DONE") {
      fail(trace.source, row.number,
           fmt::format("unknown action '{}' (expected add, remove or DONE)", action));
    }
    if (action == "DONE") {
      if (done_line != 0)
        fail(trace.source, row.number, fmt::format("second DONE (first at line {})", done_line));
      trace.end_s = time_s(raw);
      trace.end_line = row.number;
      done_line = row.number;
      return;
    }
    for (const auto& node : entry[2]["nodes"]) {
      if (!node.is_string()) fail(trace.source, row.number, "a node name is not a string");
      add_event(row.number, time_s(raw), action, node.get<std::string>());
    }
  }
};

}  // namespace

Trace convert_spotserve(std::string_view text, std::string_view source_name,
                        const SpotServeOptions& options) {
  Trace trace;
  trace.source = source_name;
  const auto lines = content_lines(text, source_name, "empty file: no node events");
  Builder builder{trace, options};
  const bool json_lines = lines.front().text.front() == '[';
  for (const auto& row : lines) {
    json_lines ? builder.read_json_row(row) : builder.read_csv_row(row);
  }
  if (trace.events.empty()) fail(source_name, lines.front().number, "no node is ever added");
  if (trace.end_line == 0) trace.end_s = trace.events.back().time_s;
  check_trace(trace);
  return trace;
}

}  // namespace hearth::traces
