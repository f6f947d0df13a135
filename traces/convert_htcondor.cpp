#include "traces/convert_htcondor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "traces/text.hpp"

namespace hearth::traces {
namespace {

struct Slot {
  std::string machine;
  std::string state;
  double gpus = 0;
  std::string device;  // GPUs_DeviceName, when the ad has it
};

struct Snapshot {
  double time = 0;  // seconds since the epoch
  std::size_t line = 0;
  std::vector<Slot> slots;
};

// The machine a slot belongs to: its Machine attribute, else what follows '@' in its name.
std::string machine_of(const std::string& name, const std::string& machine) {
  if (!machine.empty()) return machine;
  const auto at = name.find('@');
  return at == std::string::npos ? name : name.substr(at + 1);
}

// A JSON array of machine ads per snapshot, as `condor_status -json` prints them.
std::vector<Snapshot> read_json(std::string_view text, const std::string& source) {
  std::vector<Snapshot> out;
  std::istringstream in{std::string(text)};
  std::size_t counted = 0, line = 1;  // newlines before `counted`
  auto line_at = [&](std::streamoff offset) {
    const auto end = static_cast<std::size_t>(offset);
    line +=
        static_cast<std::size_t>(std::count(text.begin() + static_cast<std::ptrdiff_t>(counted),
                                            text.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
    counted = end;
    return line;
  };
  while (in >> std::ws && in.peek() != std::char_traits<char>::eof()) {
    Snapshot s;
    s.line = line_at(in.tellg());
    nlohmann::json ads;
    try {
      in >> ads;
    } catch (const nlohmann::json::exception& e) {
      fail(source, s.line, fmt::format("a snapshot that is not JSON: {}", e.what()));
    }
    if (!ads.is_array() || ads.empty()) {
      fail(source, s.line, "expected a non-empty JSON array of machine ads (condor_status -json)");
    }
    s.time = -1;
    for (const auto& ad : ads) {
      if (!ad.is_object() || !ad.contains("Name") || !ad["Name"].is_string() ||
          !ad.contains("State") || !ad["State"].is_string()) {
        fail(source, s.line, "an ad without a Name and a State");
      }
      if (ad.contains("MyType") && ad["MyType"] != "Machine") continue;
      for (const char* key : {"MyCurrentTime", "LastHeardFrom"}) {
        if (ad.contains(key) && ad[key].is_number())
          s.time = std::max(s.time, ad[key].get<double>());
      }
      Slot slot;
      slot.machine = machine_of(ad["Name"].get<std::string>(), ad.value("Machine", ""));
      slot.state = ad["State"].get<std::string>();
      if (ad.contains("GPUs") && ad["GPUs"].is_number()) slot.gpus = ad["GPUs"].get<double>();
      if (ad.contains("GPUs_DeviceName") && ad["GPUs_DeviceName"].is_string()) {
        slot.device = ad["GPUs_DeviceName"].get<std::string>();
      }
      s.slots.push_back(std::move(slot));
    }
    if (s.time < 0)
      fail(source, s.line, "no ad of the snapshot has a MyCurrentTime or LastHeardFrom");
    out.push_back(std::move(s));
  }
  return out;
}

// `date +%s; condor_status -af Name State Activity GPUs`, appended snapshot after snapshot.
std::vector<Snapshot> read_af(std::string_view text, const std::string& source) {
  std::vector<Snapshot> out;
  for (const auto& [line, content] : content_lines(text, source, "empty file: no snapshots")) {
    std::istringstream fields{std::string(content)};
    std::vector<std::string> f;
    for (std::string word; fields >> word;)
      f.push_back(word);
    if (f.size() == 1) {
      out.push_back({parse_nonnegative(f[0], "time", source, line), line, {}});
      continue;
    }
    if (out.empty()) fail(source, line, "a slot before the first snapshot's time (date +%s)");
    if (f.size() < 4) {
      fail(source, line,
           fmt::format("expected Name State Activity GPUs [GPUs_DeviceName] but found {} fields",
                       f.size()));
    }
    Slot slot;
    slot.machine = machine_of(f[0], "");
    slot.state = f[1];
    if (f[3] != "undefined") slot.gpus = parse_nonnegative(f[3], "GPUs", source, line);
    if (f.size() > 4 && f[4] != "undefined") {  // a device name may have spaces: the rest
      slot.device = fmt::format("{}", fmt::join(f.begin() + 4, f.end(), " "));
    }
    out.back().slots.push_back(std::move(slot));
  }
  return out;
}

bool offers(const Slot& s) {
  return s.state == "Unclaimed" || s.state == "Backfill";
}

}  // namespace

Trace convert_htcondor(std::string_view text, std::string_view source_name,
                       const HtcondorOptions& options) {
  Trace trace;
  trace.source = source_name;
  const auto first = text.find_first_not_of(" \t\r\n");
  const std::vector<Snapshot> snapshots = first != std::string_view::npos && text[first] == '['
                                              ? read_json(text, trace.source)
                                              : read_af(text, trace.source);
  if (snapshots.empty()) fail(trace.source, 1, "empty file: no snapshots");

  struct Machine {
    std::deque<std::string> offered;  // front: the longest offered
    std::size_t next = 1;
    std::string gpu_type;
  };
  std::map<std::string, Machine> machines;
  const double start = snapshots.front().time;
  double previous = start;
  std::size_t previous_line = snapshots.front().line;
  for (const Snapshot& s : snapshots) {
    if (s.time < previous) {
      fail(trace.source, s.line,
           fmt::format("snapshot time {} goes backwards (previous {} at line {})", s.time, previous,
                       previous_line));
    }
    previous = s.time;
    previous_line = s.line;
    const double time_s = round_to_ms(s.time - start);
    std::map<std::string, double> offer;  // machines absent from a snapshot offer nothing
    for (const auto& [name, m] : machines)
      offer[name] = 0;
    for (const Slot& slot : s.slots) {
      offer[slot.machine] += offers(slot) ? slot.gpus : 0;
      if (!slot.device.empty()) machines[slot.machine].gpu_type = slot.device;
    }
    for (const auto& [name, count] : offer) {
      if (count != std::floor(count) || count > options.max_at_once) {
        fail(trace.source, s.line,
             fmt::format("{} offers {} GPUs, not a whole number up to {}", name, count,
                         options.max_at_once));
      }
      Machine& m = machines[name];
      const auto target = static_cast<std::size_t>(count);
      while (m.offered.size() < target) {
        std::string gpu_type = options.gpu_type.empty() ? m.gpu_type : options.gpu_type;
        if (gpu_type.empty()) {
          fail(trace.source, s.line,
               fmt::format("{} names no GPU type (GPUs_DeviceName): pass --gpu-type", name));
        }
        m.offered.push_back(fmt::format("{}/gpu{}", name, m.next++));
        trace.events.push_back(
            {time_s, m.offered.back(), EventKind::up, std::move(gpu_type), 0, s.line, {}});
      }
      while (m.offered.size() > target) {
        trace.events.push_back({time_s, m.offered.back(), EventKind::down, "", 0, s.line, {}});
        m.offered.pop_back();
      }
      if (trace.events.size() > options.max_events) {
        fail(trace.source, s.line,
             fmt::format("the snapshots make more than {} events", options.max_events));
      }
    }
  }
  if (trace.events.empty()) fail(trace.source, snapshots.front().line, "no GPU is ever offered");
  trace.end_s = round_to_ms(previous - start);
  check_trace(trace);
  return trace;
}

}  // namespace hearth::traces
