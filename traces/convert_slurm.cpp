#include "traces/convert_slurm.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <vector>

#include "traces/text.hpp"

namespace hearth::traces {
namespace {

// "2026-12-07T03:56:24" as seconds (as if UTC: only differences count); nothing for Unknown.
std::optional<double> sacct_time(std::string_view text, std::string_view source, std::size_t line,
                                 std::string_view what) {
  if (text == "Unknown" || text == "None" || text.empty()) return std::nullopt;
  std::tm tm{};
  char rest = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &rest) != 6) {
    fail(source, line, fmt::format("{} '{}' is not a time like 2026-12-07T03:56:24", what, text));
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm));
}

// The GPUs of an AllocTRES list ("billing=1,cpu=1,gres/gpu=2,node=1", "gres/gpu:a100=2"), and
// their type when the list names one.
int tres_gpus(std::string_view tres, std::string& type) {
  int plain = -1, typed = 0;  // a typed job lists gres/gpu and gres/gpu:TYPE: the total once
  for (std::string_view item : split_fields(tres, ',')) {
    const auto equals = item.find('=');
    if (!item.starts_with("gres/gpu") || equals == std::string_view::npos) continue;
    const auto name = item.substr(0, equals);
    const auto count = item.substr(equals + 1);
    int n = 0;
    if (std::from_chars(count.data(), count.data() + count.size(), n).ec != std::errc{}) continue;
    if (name == "gres/gpu") {
      plain = n;
    } else if (name.starts_with("gres/gpu:")) {
      typed += n;
      type = std::string(name.substr(9));
    }
  }
  return plain >= 0 ? plain : typed;
}

}  // namespace

Trace convert_slurm(std::string_view text, std::string_view source_name,
                    const SlurmOptions& options) {
  Trace trace;
  trace.source = source_name;
  const auto lines = content_lines(text, source_name, "empty file: no sacct header");
  const auto header = split_fields(lines.front().text, '|');
  auto column = [&](std::string_view name, bool required) -> std::optional<std::size_t> {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it != header.end()) return static_cast<std::size_t>(it - header.begin());
    if (required) {
      fail(source_name, lines.front().number,
           fmt::format("no {} column: expected sacct --parsable2 with a header, -o "
                       "JobID,Partition,State,Start,End,NodeList,AllocTRES",
                       name));
    }
    return std::nullopt;
  };
  const std::size_t job = *column("JobID", true), state = *column("State", true);
  const std::size_t start = *column("Start", true), end = *column("End", true);
  const auto partition = column("Partition", false);
  const auto tres = column("AllocTRES", false);

  struct Held {
    double up = 0;
    std::optional<double> down;
    std::string worker, gpu_type, state;
    std::size_t line = 0;
  };
  std::vector<Held> held;
  std::size_t events = 0;  // an up for each GPU, and a down for each that ended
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto& [line, content] = lines[i];
    const auto f = split_fields(content, '|');
    if (f.size() != header.size()) {
      fail(source_name, line,
           fmt::format("{} fields where the header has {}", f.size(), header.size()));
    }
    if (f[job].find('.') != std::string_view::npos) continue;  // a job step
    if (partition && !options.partition.empty()) {
      const auto parts = split_fields(f[*partition], ',');
      if (std::find(parts.begin(), parts.end(), options.partition) == parts.end()) continue;
    }
    const auto up = sacct_time(f[start], source_name, line, "Start");
    if (!up) continue;  // never started
    const auto down = sacct_time(f[end], source_name, line, "End");
    std::string type;
    const int gpus = tres ? tres_gpus(f[*tres], type) : 1;
    if (gpus > options.max_at_once) {
      fail(source_name, line,
           fmt::format("job {} holds {} GPUs, more than {} at once", f[job], gpus,
                       options.max_at_once));
    }
    std::string gpu_type = options.gpu_type.empty() ? type : options.gpu_type;
    if (gpus > 0 && gpu_type.empty()) {
      fail(source_name, line,
           fmt::format("job {} names no GPU type (gres/gpu:TYPE in AllocTRES): pass --gpu-type",
                       f[job]));
    }
    const std::string end_state(f[state].substr(0, f[state].find(' ')));  // "CANCELLED by 0"
    for (int g = 1; g <= gpus; ++g) {
      std::string worker =
          gpus == 1 ? fmt::format("slurm-{}", f[job]) : fmt::format("slurm-{}/gpu{}", f[job], g);
      held.push_back({*up, down, std::move(worker), gpu_type, end_state, line});
    }
    events += static_cast<std::size_t>(gpus) * (down ? 2 : 1);
    if (events > options.max_events) {
      fail(source_name, line, fmt::format("the jobs make more than {} events", options.max_events));
    }
  }
  if (held.empty()) fail(source_name, lines.front().number, "no job with GPUs ever started");
  double first = held.front().up, last = 0;
  for (const Held& h : held)
    first = std::min(first, h.up);
  for (const Held& h : held) {
    trace.events.push_back(
        {round_to_ms(h.up - first), h.worker, EventKind::up, h.gpu_type, 0, h.line, {}});
    last = std::max(last, h.up - first);
    if (h.down) {
      trace.events.push_back({round_to_ms(*h.down - first),
                              h.worker,
                              EventKind::down,
                              "",
                              0,
                              h.line,
                              {{"slurm_state", h.state}}});
      last = std::max(last, *h.down - first);
    }
  }
  std::stable_sort(trace.events.begin(), trace.events.end(),
                   [](const TraceEvent& a, const TraceEvent& b) { return a.time_s < b.time_s; });
  trace.end_s = round_to_ms(last);
  check_trace(trace);
  return trace;
}

}  // namespace hearth::traces
