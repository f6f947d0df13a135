// `hearth trace record --htcondor|--slurm`: samples a live pool into a trace, as the GPUs a user's
// job could have claimed (traces/FORMAT.md, "Recording a live pool"). Every sample is appended to
// FILE.snapshots (condor_status -af lines after the sample's time; a Slurm node's idle GPUs are
// written as such a line too), and FILE is rewritten from them atomically after each one: stopped
// at any moment (Ctrl-C, SIGTERM, a lost session), FILE is the valid trace so far, and running
// the same command again resumes from the snapshots.

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "os/atomic_file.hpp"
#include "os/process.hpp"
#include "policy/errors.hpp"
#include "traces/convert_htcondor.hpp"
#include "traces/generator_spec.hpp"
#include "traces/text.hpp"
#include "traces/trace_writer.hpp"

namespace hearth::cli {

namespace {

namespace fs = std::filesystem;
using namespace hearth::traces;

struct RecordArgs {
  bool htcondor = false, slurm = false;
  std::string constraint, partition, interval = "30s", duration = "2h", output, gpu_type;
};

// The GPUs of a Slurm GRES list ("gpu:4", "gpu:a100:2(S:0-1),gpu:t4:1", "(null)"), and their
// type when it names one.
int gres_gpus(std::string_view gres, std::string& type) {
  int total = 0;
  for (std::string_view item : split_fields(gres, ',')) {
    item = item.substr(0, item.find('('));
    if (!item.starts_with("gpu")) continue;
    const auto parts = split_fields(item, ':');
    int n = 0;
    const auto count = parts.back();
    if (std::from_chars(count.data(), count.data() + count.size(), n).ec != std::errc{}) continue;
    total += n;
    if (parts.size() == 3) type = std::string(parts[1]);
  }
  return total;
}

// The idle GPUs of each node that takes jobs now (idle or mixed, responding), as condor_status -af
// lines that offer them (`NODE Unclaimed Idle GPUS [TYPE]`).
std::string slurm_offers(const std::string& sinfo) {
  std::map<std::string, std::string> lines;  // a node is listed once per partition
  std::istringstream in(sinfo);
  for (std::string line; std::getline(in, line);) {
    const auto f = split_fields(line, '|');
    if (f.size() < 4 || f[0].empty()) continue;
    const std::string_view state = f[1];
    const std::string base(state.substr(0, state.find_first_not_of("abcdefghijklmnopqrstuvwxyz")));
    std::string type, used_type;
    const int gpus = gres_gpus(f[2], type) - gres_gpus(f[3], used_type);
    const bool takes_jobs = (base == "idle" || base == "mixed") && state.find('*') == state.npos;
    lines[std::string(f[0])] =
        fmt::format("{} Unclaimed Idle {}{}{}", f[0], takes_jobs ? std::max(gpus, 0) : 0,
                    type.empty() ? "" : " ", type);
  }
  std::string out;
  for (const auto& [node, line] : lines)
    out += line + "\n";
  return out;
}

double epoch_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Appends one sample to the snapshots file; false (with a warning) when the pool's command failed.
bool sample(const RecordArgs& a, const fs::path& snapshots) {
  std::vector<std::string> argv = {"condor_status", "-af",  "Name",           "State",
                                   "Activity",      "GPUs", "GPUs_DeviceName"};
  if (!a.constraint.empty()) argv.insert(argv.end(), {"-constraint", a.constraint});
  if (a.slurm) {
    argv = {"sinfo", "-N", "-h", "-O", "NodeList:|,StateLong:|,Gres:|,GresUsed:|"};
    if (!a.partition.empty()) argv.insert(argv.end(), {"-p", a.partition});
  }
  const double time = epoch_s();
  const os::CommandResult r = os::run_command(argv, 120);
  if (r.status != 0) {
    fmt::print(stderr, "hearth: {} failed (status {}): {}; trying again next time\n", argv[0],
               r.status, trim(r.err));
    return false;
  }
  const std::string slots = a.slurm ? slurm_offers(r.out) : r.out;
  const bool first = !fs::exists(snapshots) || fs::file_size(snapshots) == 0;
  std::ofstream out(snapshots, std::ios::app);
  if (a.slurm && first) {
    out << "# sinfo: each node's idle GPUs, written as condor_status -af lines that offer them\n";
  }
  out << fmt::format("{:.3f}\n", time) << slots;
  if (!slots.empty() && slots.back() != '\n') out << '\n';
  out.flush();
  if (!out) throw InputError(fmt::format("{}: cannot write", snapshots.string()));
  return true;
}

// FILE from every snapshot so far; false while no GPU has been offered yet.
bool rewrite(const RecordArgs& a, const fs::path& snapshots, std::size_t samples) {
  const std::string text = read_text_file(snapshots.string());
  Trace trace;
  try {
    trace = convert_htcondor(text, snapshots.string(), HtcondorOptions{a.gpu_type});
  } catch (const InputError& e) {
    if (std::string_view(e.what()).ends_with("no GPU is ever offered")) return false;
    throw;
  }
  std::ostringstream out;
  write_trace(out, trace,
              {"hearth availability trace; format: traces/FORMAT.md",
               fmt::format("recorded with: hearth trace record {}{} --interval {} ({} snapshots "
                           "in {})",
                           a.slurm ? "--slurm" : "--htcondor",
                           !a.constraint.empty()  ? " --constraint '" + a.constraint + "'"
                           : !a.partition.empty() ? " --partition " + a.partition
                                                  : "",
                           a.interval, samples, fs::path(snapshots).filename().string())});
  os::write_file_atomically(a.output, out.str());
  return true;
}

void record(const RecordArgs& a) {
  if (a.htcondor == a.slurm) {
    throw InputError("trace record: say which pool to sample: --htcondor or --slurm");
  }
  if (a.slurm && !a.constraint.empty()) throw InputError("--constraint is HTCondor's: --partition");
  if (a.htcondor && !a.partition.empty()) {
    throw InputError("--partition is Slurm's: HTCondor takes --constraint");
  }
  const double interval_s = parse_duration_s(a.interval);
  const double for_s = parse_duration_s(a.duration);
  if (!(interval_s > 0)) throw InputError("--interval: must be more than 0");
  if (!(for_s > 0)) throw InputError("--for: must be more than 0");
  if (a.output == "-") throw InputError("-o: record writes a file (it is rewritten as it grows)");
  const fs::path snapshots = a.output + ".snapshots";
  std::size_t samples = 0;
  if (fs::exists(snapshots)) {
    std::ifstream in(snapshots);
    for (std::string line; std::getline(in, line);)
      samples += !line.empty() && line.find(' ') == std::string::npos;
    fmt::print(stderr, "hearth: resuming {}: {} snapshots recorded before\n", a.output, samples);
  }
  const std::atomic<bool>& stop_requested = os::stop_on_interrupt();
  using Clock = std::chrono::steady_clock;
  auto after = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + after(for_s);
  Clock::time_point next = start;
  bool written = false;
  while (!stop_requested && std::chrono::steady_clock::now() < end) {
    if (sample(a, snapshots)) {
      ++samples;
      written = rewrite(a, snapshots, samples) || written;
    }
    next += after(interval_s);
    while (!stop_requested && std::chrono::steady_clock::now() < std::min(next, end))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!written) {
    fmt::print(stderr, "hearth: {} snapshots and no GPU offered yet: {} not written\n", samples,
               a.output);
    throw CLI::RuntimeError(3);
  }
  fmt::print(stderr, "hearth: {}: {} snapshots{}; run the same command again to go on\n", a.output,
             samples, stop_requested ? ", stopped" : "");
}

}  // namespace

void add_trace_record(CLI::App& trace) {
  auto a = std::make_shared<RecordArgs>();
  auto* cmd = trace.add_subcommand(
      "record",
      "Sample a live pool into a trace: the GPUs a user's job could claim, over time. Safe to stop "
      "at any moment (the trace so far is valid); run it again to resume");
  cmd->add_flag("--htcondor", a->htcondor, "Sample an HTCondor pool (condor_status)");
  cmd->add_flag("--slurm", a->slurm, "Sample a Slurm cluster's idle GPUs (sinfo)");
  cmd->add_option("--constraint", a->constraint,
                  "HTCondor: only the slots this ClassAd expression matches");
  cmd->add_option("--partition", a->partition, "Slurm: only the nodes of this partition");
  cmd->add_option("--interval", a->interval, "Time between samples: 30s, 1m (default 30s)");
  cmd->add_option("--for", a->duration, "How long to record: 2h, 1d (default 2h)");
  cmd->add_option("-o,--output", a->output, "The trace to write; FILE.snapshots keeps the samples")
      ->required();
  cmd->add_option("--gpu-type", a->gpu_type,
                  "GPU type of every worker (default: each machine's GPUs_DeviceName)");
  cmd->callback([a] { record(*a); });
}

}  // namespace hearth::cli
