#include "traces/trace_writer.hpp"

#include <fmt/core.h>
#include <fmt/ostream.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "traces/text.hpp"

namespace hearth::traces {
namespace {

std::string attributes_field(const std::map<std::string, std::string>& attributes) {
  std::string field;
  for (const auto& [key, value] : attributes) {
    if (!field.empty()) field += ';';
    field += key + '=' + value;
  }
  return field;
}

}  // namespace

void write_trace(std::ostream& out, const Trace& trace, const std::vector<std::string>& comments) {
  static const std::string kNone;
  for (const auto& comment : comments)
    fmt::print(out, "# {}\n", comment);
  fmt::print(out, "time_s,event,worker,gpu_type,grace_s,attributes\n");
  for (const auto& e : trace.events) {
    const std::string grace = e.kind == EventKind::notice ? fmt::format("{}", e.grace_s) : "";
    const std::string& gpu_type = e.kind == EventKind::up ? e.gpu_type : kNone;
    fmt::print(out, "{},{},{},{},{},{}\n", e.time_s, to_string(e.kind), e.worker, gpu_type, grace,
               attributes_field(e.attributes));
  }
  fmt::print(out, "{},end,,,,\n", trace.end_s);
}

void write_trace_file(const std::string& path, const Trace& trace,
                      const std::vector<std::string>& comments) {
  if (path == "-") {
    write_trace(std::cout, trace, comments);
    std::cout.flush();
    return;
  }
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(path, 0, fmt::format("cannot write: {}", std::strerror(errno)));
  write_trace(out, trace, comments);
  out.close();
  if (!out) fail(path, 0, fmt::format("cannot write: {}", std::strerror(errno)));
}

}  // namespace hearth::traces
