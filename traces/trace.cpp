#include "traces/trace.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <array>
#include <optional>
#include <unordered_map>

#include "policy/enum_names.hpp"
#include "traces/text.hpp"

namespace hearth::traces {
namespace {

constexpr const char* kEventKindNames[] = {"up", "down", "notice"};

// A down may come this much later than its notice promised: room for rounding, not for lateness.
constexpr double kPromiseSlack_s = 1e-6;

enum class Column { time_s, event, worker, gpu_type, grace_s, attributes };
constexpr std::array<std::string_view, 6> kColumnNames = {"time_s",   "event",   "worker",
                                                          "gpu_type", "grace_s", "attributes"};
constexpr std::size_t kRequiredColumns = 4;  // the first four of kColumnNames

// Where each column sits in a row; read from the header, which names them in any order.
struct Layout {
  std::array<std::optional<std::size_t>, kColumnNames.size()> index;
  std::size_t width = 0;

  std::string_view field(const std::vector<std::string_view>& row, Column c) const {
    const auto& i = index[static_cast<std::size_t>(c)];
    return i ? row[*i] : std::string_view{};
  }
  bool has(Column c) const { return index[static_cast<std::size_t>(c)].has_value(); }
};

Layout read_header(const TextLine& header, std::string_view source) {
  Layout layout;
  const auto names = split_fields(header.text, ',');
  layout.width = names.size();
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::size_t c = 0;
    while (c < kColumnNames.size() && kColumnNames[c] != names[i])
      ++c;
    if (c == kColumnNames.size()) {
      fail(source, header.number,
           fmt::format("unknown column '{}' in the header (columns are {})", names[i],
                       fmt::join(kColumnNames, ", ")));
    }
    if (layout.index[c]) {
      fail(source, header.number, fmt::format("column '{}' appears twice in the header", names[i]));
    }
    layout.index[c] = i;
  }
  for (std::size_t c = 0; c < kRequiredColumns; ++c) {
    if (!layout.index[c]) {
      fail(source, header.number,
           fmt::format(
               "the header lacks column '{}' (it needs {})", kColumnNames[c],
               fmt::join(kColumnNames.begin(), kColumnNames.begin() + kRequiredColumns, ",")));
    }
  }
  return layout;
}

std::map<std::string, std::string> parse_attributes(std::string_view field, std::string_view source,
                                                    std::size_t line) {
  std::map<std::string, std::string> attributes;
  if (field.empty()) return attributes;
  for (const auto pair : split_fields(field, ';')) {
    const auto eq = pair.find('=');
    const auto key = trim(pair.substr(0, eq));
    if (eq == std::string_view::npos || key.empty()) {
      fail(source, line, fmt::format("attribute '{}' is not key=value", pair));
    }
    const bool fresh =
        attributes.emplace(std::string(key), std::string(trim(pair.substr(eq + 1)))).second;
    if (!fresh) fail(source, line, fmt::format("attribute '{}' appears twice", key));
  }
  return attributes;
}

void require_empty(std::string_view field, std::string_view column, std::string_view event,
                   std::string_view source, std::size_t line) {
  if (!field.empty()) {
    fail(source, line,
         fmt::format("{} '{}' given for event {}; only {} rows take {}", column, field, event,
                     column == "gpu_type" ? "up" : "notice", column));
  }
}

}  // namespace

const char* to_string(EventKind kind) {
  return enum_name(kind, kEventKindNames);
}

Trace parse_trace_text(std::string_view text, std::string_view source_name) {
  Trace trace;
  trace.source = source_name;
  const auto lines = content_lines(text, source_name, "empty trace: no header and no events");
  const Layout layout = read_header(lines.front(), source_name);

  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto& [line, content] = lines[i];
    if (trace.end_line != 0) {
      fail(source_name, line, fmt::format("row after the end row at line {}", trace.end_line));
    }
    const auto row = split_fields(content, ',');
    if (row.size() != layout.width) {
      fail(source_name, line,
           fmt::format("row has {} fields, the header has {}", row.size(), layout.width));
    }
    const double time_s =
        parse_nonnegative(layout.field(row, Column::time_s), "time", source_name, line);
    const auto event = layout.field(row, Column::event);
    const auto worker = layout.field(row, Column::worker);
    const auto gpu_type = layout.field(row, Column::gpu_type);
    const auto grace = layout.field(row, Column::grace_s);

    if (event == "end") {
      if (!worker.empty()) fail(source_name, line, "the end row takes no worker");
      require_empty(gpu_type, "gpu_type", event, source_name, line);
      require_empty(grace, "grace_s", event, source_name, line);
      trace.end_s = time_s;
      trace.end_line = line;
      continue;
    }

    TraceEvent e;
    e.time_s = time_s;
    e.line = line;
    const std::optional<EventKind> kind = enum_named<EventKind>(event, kEventKindNames);
    if (!kind) {
      fail(source_name, line,
           fmt::format("unknown event '{}' (expected up, down, notice or end)", event));
    }
    e.kind = *kind;
    if (worker.empty()) fail(source_name, line, fmt::format("{} row without a worker", event));
    e.worker = worker;

    if (e.kind == EventKind::up) {
      if (gpu_type.empty()) fail(source_name, line, "up row without a gpu_type");
      e.gpu_type = gpu_type;
    } else {
      require_empty(gpu_type, "gpu_type", event, source_name, line);
    }
    if (e.kind == EventKind::notice) {
      if (!layout.has(Column::grace_s)) {
        fail(source_name, line, "notice row, but the header has no grace_s column");
      }
      e.grace_s = parse_nonnegative(grace, "grace_s", source_name, line);
    } else {
      require_empty(grace, "grace_s", event, source_name, line);
    }
    e.attributes = parse_attributes(layout.field(row, Column::attributes), source_name, line);
    trace.events.push_back(std::move(e));
  }

  if (trace.events.empty()) {
    fail(source_name, lines.front().number, "no events after the header: nothing is ever up");
  }
  if (trace.end_line == 0) trace.end_s = trace.events.back().time_s;
  check_trace(trace);
  return trace;
}

Trace parse_trace_file(const std::string& path) {
  return parse_trace_text(read_text_file(path), path);
}

void check_trace(const Trace& trace) {
  struct WorkerState {
    bool up = false;
    std::size_t up_line = 0;
    std::string gpu_type;  // from its first up: a machine keeps its GPU
    std::size_t first_up_line = 0;
    std::optional<double> notice_deadline_s;
    std::size_t notice_line = 0;
  };
  std::unordered_map<std::string, WorkerState> workers;
  const TraceEvent* previous = nullptr;
  const auto& source = trace.source;

  for (const auto& e : trace.events) {
    if (previous && e.time_s < previous->time_s) {
      fail(source, e.line,
           fmt::format("time {} goes backwards (previous {} at line {})", e.time_s,
                       previous->time_s, previous->line));
    }
    previous = &e;
    auto& w = workers[e.worker];
    switch (e.kind) {
      case EventKind::up:
        if (w.up) {
          fail(source, e.line,
               fmt::format("worker {} is already up (since line {})", e.worker, w.up_line));
        }
        if (!w.gpu_type.empty() && w.gpu_type != e.gpu_type) {
          fail(source, e.line,
               fmt::format("worker {} comes back as {} but was {} at line {}", e.worker, e.gpu_type,
                           w.gpu_type, w.first_up_line));
        }
        if (w.gpu_type.empty()) {
          w.gpu_type = e.gpu_type;
          w.first_up_line = e.line;
        }
        w.up = true;
        w.up_line = e.line;
        break;
      case EventKind::down:
        if (!w.up)
          fail(source, e.line, fmt::format("down for worker {}, which is not up", e.worker));
        if (w.notice_deadline_s && e.time_s > *w.notice_deadline_s + kPromiseSlack_s) {
          fail(source, e.line,
               fmt::format("worker {} goes down at {}, later than its notice at line {} promised "
                           "({})",
                           e.worker, e.time_s, w.notice_line, *w.notice_deadline_s));
        }
        w.up = false;
        w.notice_deadline_s.reset();
        break;
      case EventKind::notice:
        if (!w.up) {
          fail(source, e.line, fmt::format("notice for worker {}, which is not up", e.worker));
        }
        if (w.notice_deadline_s) {
          fail(source, e.line,
               fmt::format("second notice for worker {} (the first is at line {})", e.worker,
                           w.notice_line));
        }
        w.notice_deadline_s = e.time_s + e.grace_s;
        w.notice_line = e.line;
        break;
    }
  }

  if (previous && trace.end_s < previous->time_s) {
    fail(source, trace.end_line,
         fmt::format("end {} comes before the last event ({} at line {})", trace.end_s,
                     previous->time_s, previous->line));
  }
  const std::pair<const std::string, WorkerState>* broken = nullptr;  // the earliest notice
  for (const auto& entry : workers) {
    const auto& w = entry.second;
    if (w.notice_deadline_s && trace.end_s > *w.notice_deadline_s + kPromiseSlack_s &&
        (!broken || w.notice_line < broken->second.notice_line)) {
      broken = &entry;
    }
  }
  if (broken) {
    const auto& [name, w] = *broken;
    fail(source, w.notice_line,
         fmt::format("notice promises worker {} goes down by {}, but it is still up at the end "
                     "({})",
                     name, *w.notice_deadline_s, trace.end_s));
  }
}

void validate_gpu_types(const Trace& trace, const std::set<std::string>& known) {
  for (const auto& e : trace.events) {
    if (e.kind == EventKind::up && !known.contains(e.gpu_type)) {
      fail(trace.source, e.line,
           fmt::format("unknown GPU type '{}' (the cluster description has {})", e.gpu_type,
                       fmt::join(known, ", ")));
    }
  }
}

}  // namespace hearth::traces
