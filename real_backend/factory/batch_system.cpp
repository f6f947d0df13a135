#include "real_backend/factory/batch_system.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "os/atomic_file.hpp"
#include "traces/text.hpp"

namespace hearth::real {

std::string complaint(const CommandResult& r) {
  std::string said(traces::trim(r.err.empty() ? r.out : r.err));
  return said.empty() ? fmt::format("exit status {}", r.status) : said;
}

CommandResult submit_or_throw(const CommandRunner& run, const std::vector<std::string>& argv) {
  CommandResult r = run(argv);
  if (r.status != 0) {
    throw BatchError(fmt::format("{} refused the workers: {}\n  the command: {}", argv.at(0),
                                 complaint(r), command_line(argv)));
  }
  return r;
}

void cancel_jobs(const CommandRunner& run, const std::string& command,
                 const std::vector<std::string>& jobs) {
  if (jobs.empty()) return;
  std::vector<std::string> argv = {command};
  argv.insert(argv.end(), jobs.begin(), jobs.end());
  CommandResult r = run(argv);
  if (r.status != 0) spdlog::info("{}: {}", command, complaint(r));
}

std::string shell_quote(const std::string& text) {
  bool plain = !text.empty() && text.find_first_not_of(
                                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                    "QRSTUVWXYZ0123456789_-+=.,/:@%") == std::string::npos;
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& a : argv) {
    if (!line.empty()) line += ' ';
    line += shell_quote(a);
  }
  return line;
}

std::string worker_script(const FactorySettings& settings, const std::string& manager_address,
                          const std::string& keys, const std::string& job_lines,
                          const std::string& name_prefix, const std::string& cache) {
  std::string script = "#!/bin/sh\n" + job_lines;
  script += fmt::format("exec {} worker --manager {} --keys {} --name {}\"$job\"",
                        shell_quote(settings.hearth.string()), shell_quote(manager_address), keys,
                        shell_quote(name_prefix));
  if (!cache.empty()) script += fmt::format(" --cache \"{}\"", cache);
  for (const std::string& a : settings.worker_args)
    script += " " + shell_quote(a);
  return script + "\n";
}

void write_text_file(const std::filesystem::path& path, const std::string& text, bool executable) {
  std::filesystem::create_directories(path.parent_path());
  os::write_file_atomically(path, text, executable ? 0755 : 0644);
}

}  // namespace hearth::real
