// `hearth trace ...`: convert published availability traces, generate new ones, summarise and plot
// them. The format and the converters' rules: traces/FORMAT.md; the generators: GENERATORS.md.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/commands.hpp"
#include "cli/number_option.hpp"
#include "policy/errors.hpp"
#include "traces/convert_bamboo.hpp"
#include "traces/convert_htcondor.hpp"
#include "traces/convert_slurm.hpp"
#include "traces/convert_spotserve.hpp"
#include "traces/generator_spec.hpp"
#include "traces/gpu_types.hpp"
#include "traces/plot.hpp"
#include "traces/summary.hpp"
#include "traces/text.hpp"
#include "traces/trace_writer.hpp"

namespace hearth::cli {
namespace {

using namespace hearth::traces;

constexpr const char* kFormatLine = "hearth availability trace; format: traces/FORMAT.md";

std::string file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// One line on stderr about what was written, so that stdout can carry the trace itself.
void report_written(const std::string& path, const Trace& trace) {
  const auto s = summarize(trace);
  fmt::print(stderr, "hearth: wrote {}: {} events, {} workers, peak {} up, ends at {} s\n",
             path == "-" ? "standard output" : path, s.events, s.workers, s.peak_up, s.end_s);
}

void add_convert(CLI::App& trace) {
  struct Args {
    std::string from, input, output, time_unit, gpu_type, leave = "newest", worker_prefix = "spot-",
                                                          partition;
    std::uint64_t seed = 1;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = trace.add_subcommand("convert", "Convert a published trace into hearth's format");
  cmd->add_option("--from", args->from,
                  "Published format: bamboo (count series), counts (any time,count CSV), "
                  "skypilot (spot-traces JSON), spotserve, htcondor (condor_status "
                  "snapshots, -json or -af) or slurm (sacct --parsable2)")
      ->required()
      ->check(CLI::IsMember({"bamboo", "counts", "skypilot", "spotserve", "htcondor", "slurm"}));
  auto* partition =
      cmd->add_option("--partition", args->partition, "slurm: only the jobs of this partition");
  cmd->add_option("input", args->input, "The published file")->required();
  cmd->add_option("-o,--output", args->output, "Trace to write ('-': standard output)")->required();
  auto* unit = cmd->add_option("--time-unit", args->time_unit,
                               "Unit of the input's times: ms, s or h (bamboo: required, the "
                               "files do not say; counts: s; spotserve: ms)");
  cmd->add_option("--gpu-type", args->gpu_type,
                  "GPU type of every worker (default: from an AWS family in the file name, "
                  "g4dn -> T4-16GB, p2 -> K80-12GB, p3 -> V100-16GB, p3dn -> V100-32GB; "
                  "htcondor: each machine's GPUs_DeviceName)");
  auto* leave =
      cmd->add_option("--leave", args->leave,
                      "bamboo, counts, skypilot: which instances leave when the count drops: "
                      "newest (default), oldest or random (see --seed)");
  auto* seed = cmd->add_option("--seed", args->seed, "--leave random: the draw's seed (default 1)")
                   ->check(whole_number(0));
  auto* prefix =
      cmd->add_option("--worker-prefix", args->worker_prefix,
                      "bamboo, counts, skypilot: instances are named PREFIX1, PREFIX2, ... "
                      "(default spot-)");
  cmd->callback([args, unit, leave, seed, prefix, partition] {
    const bool skypilot = args->from == "skypilot";
    const bool counts = args->from == "bamboo" || args->from == "counts" || skypilot;
    if (skypilot && unit->count() > 0) {
      throw InputError("--time-unit does not apply to --from skypilot: its gap_seconds says");
    }
    if (!counts && (leave->count() > 0 || prefix->count() > 0)) {
      throw InputError(
          "--leave and --worker-prefix apply to --from bamboo, counts and skypilot only");
    }
    if (seed->count() > 0 && args->leave != "random") {
      throw InputError("--seed applies to --leave random only");
    }
    if (args->from == "bamboo" && unit->count() == 0) {
      throw InputError(
          "--from bamboo needs --time-unit ms, s or h: the published series do not say (the "
          "*_scaled.csv files and the p2 2020-11-20-to-23 file are in hours, the rest in "
          "seconds)");
    }
    const bool htcondor = args->from == "htcondor" || args->from == "slurm";
    if (partition->count() > 0 && args->from != "slurm") {
      throw InputError("--partition applies to --from slurm only");
    }
    std::string gpu_type =
        args->gpu_type.empty() && !htcondor ? gpu::of_aws_file(args->input) : args->gpu_type;
    if (gpu_type.empty() && !htcondor) {
      throw InputError(
          fmt::format("{}: the file name names no AWS family (g4dn, p2, p3, p3dn), so pass "
                      "--gpu-type",
                      args->input));
    }
    std::string how = fmt::format("--from {}", args->from);
    const std::string text = read_text_file(args->input);
    Trace converted;
    if (args->from == "slurm") {
      converted = convert_slurm(text, args->input, SlurmOptions{gpu_type, args->partition});
      if (!args->partition.empty()) how += fmt::format(" --partition {}", args->partition);
    } else if (htcondor) {
      converted = convert_htcondor(text, args->input, HtcondorOptions{gpu_type});
    } else if (counts) {
      const std::string time_unit = unit->count() > 0 ? args->time_unit : "s";
      BambooOptions options{parse_time_unit(time_unit), gpu_type, parse_leave_order(args->leave),
                            args->worker_prefix};
      options.seed = args->seed;
      options.header = args->from == "counts";
      converted = skypilot ? convert_skypilot(text, args->input, options)
                           : convert_bamboo(text, args->input, options);
      how += skypilot ? fmt::format(" --leave {}", args->leave)
                      : fmt::format(" --time-unit {} --leave {}", time_unit, args->leave);
      if (options.leave == LeaveOrder::random) how += fmt::format(" --seed {}", args->seed);
      how += fmt::format(" --worker-prefix {}", args->worker_prefix);
    } else {
      SpotServeOptions options;
      if (unit->count() > 0) options.time_unit = parse_time_unit(args->time_unit);
      options.gpu_type = gpu_type;
      converted = convert_spotserve(text, args->input, options);
      how += fmt::format(" --time-unit {}", unit->count() > 0 ? args->time_unit : "ms");
    }
    if (!gpu_type.empty()) how += fmt::format(" --gpu-type {}", gpu_type);
    write_trace_file(args->output, converted,
                     {kFormatLine, fmt::format("converted from {} with: hearth trace convert {}",
                                               file_name(args->input), how)});
    report_written(args->output, converted);
  });
}

void add_generate(CLI::App& trace) {
  struct Args {
    std::optional<std::string> preset, duration, pool, arrivals, lifetime, reclaim;
    std::optional<std::uint64_t> seed;
    std::optional<double> start_hour, notice_s;
    std::optional<std::size_t> max_held, initial;
    std::string output;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = trace.add_subcommand("generate",
                                   "Generate a seeded, reproducible trace (traces/GENERATORS.md)");
  cmd->add_option("--preset", args->preset, "Start from a preset: campus (567 GPUs, 186 held)");
  cmd->add_option("--seed", args->seed, "Random seed (default 1)")->check(whole_number(0));
  cmd->add_option("--duration", args->duration,
                  "Length of the trace: 90, 90s, 30m, 24h, 7d (default 24h)");
  cmd->add_option("--start-hour", args->start_hour, "Hour of day at time 0 (default 0)");
  cmd->add_option("--pool", args->pool, "Machines by GPU type: A100-40GB=32,T4-16GB=47,...");
  cmd->add_option("--max-held", args->max_held,
                  "Most workers held at once (default: the whole pool)");
  cmd->add_option("--initial", args->initial, "Offers at time 0, before the arrivals");
  cmd->add_option("--arrivals", args->arrivals, "poisson:RATE_PER_H or bursts:MEAN_GAP:SIZE");
  cmd->add_option("--lifetime", args->lifetime,
                  "none, exp:MEAN, weibull:SHAPE:SCALE or empirical:TRACE_FILE");
  cmd->add_option("--reclaim", args->reclaim, "none or daily:RATE_PER_H:AMPLITUDE:PEAK_HOUR");
  cmd->add_option("--notice-s", args->notice_s,
                  "Seconds of notice before each down (default 0: none)");
  cmd->add_option("-o,--output", args->output, "Trace to write ('-': standard output)")->required();
  cmd->callback([args] {
    const Args& a = *args;
    GeneratorConfig config = a.preset ? preset(*a.preset) : GeneratorConfig{};
    config.seed = a.seed.value_or(config.seed);
    if (a.duration) config.duration_s = parse_duration_s(*a.duration);
    config.start_hour = a.start_hour.value_or(config.start_hour);
    if (a.pool) config.pool = parse_pool(*a.pool);
    config.initial = a.initial.value_or(config.initial);
    if (a.arrivals) config.arrivals = parse_arrivals(*a.arrivals);
    if (a.lifetime) config.lifetime = parse_lifetime(*a.lifetime);
    if (a.reclaim) config.reclaim = parse_reclaim(*a.reclaim);
    config.notice_s = a.notice_s.value_or(config.notice_s);
    if (a.max_held) {
      config.max_held = *a.max_held;
    } else if (!a.preset) {
      config.max_held = 0;
      for (const auto& g : config.pool)
        config.max_held += g.count;
    }
    check_generator_config(config);
    Trace generated = generate_trace(config);
    generated.source = a.output;
    const std::string origin = a.preset ? fmt::format(" (preset {})", *a.preset) : std::string();
    write_trace_file(a.output, generated,
                     {kFormatLine, fmt::format("generated{}; regenerate with:", origin),
                      generator_command(config)});
    report_written(a.output, generated);
  });
}

std::set<std::string> parse_gpu_type_list(const std::string& list) {
  std::set<std::string> known;
  for (const auto name : split_fields(list, ',')) {
    if (!name.empty()) known.emplace(name);
  }
  return known;
}

nlohmann::ordered_json summary_json(const std::string& path, const TraceSummary& s) {
  nlohmann::ordered_json j;
  j["file"] = path;
  j["end_s"] = s.end_s;
  j["first_event_s"] = s.first_event_s;
  j["events"] = s.events;
  j["workers"] = s.workers;
  j["ups"] = s.ups;
  j["preemptions"] = s.preemptions;
  j["notices"] = s.notices;
  j["peak_up"] = s.peak_up;
  j["peak_at_s"] = s.peak_at_s;
  j["mean_up"] = s.mean_up;
  j["up_at_end"] = s.up_at_end;
  j["gpu_seconds"] = s.gpu_seconds;
  if (s.lifetime) {
    j["lifetime"] = {{"completed", s.lifetime->completed}, {"open_at_end", s.up_at_end},
                     {"p10_s", s.lifetime->p10_s},         {"p50_s", s.lifetime->p50_s},
                     {"p90_s", s.lifetime->p90_s},         {"mean_s", s.lifetime->mean_s}};
  } else {
    j["lifetime"] = {{"completed", 0}, {"open_at_end", s.up_at_end}};
  }
  auto& types = j["gpu_types"] = nlohmann::ordered_json::object();
  for (const auto& t : s.by_type) {
    types[t.gpu_type] = {{"workers", t.workers},
                         {"peak_up", t.peak_up},
                         {"mean_up", t.mean_up},
                         {"gpu_seconds", t.gpu_seconds}};
  }
  return j;
}

void print_summary(const std::string& path, const TraceSummary& s) {
  const auto hours = [](double seconds) { return seconds / 3600; };
  fmt::print("trace        {}\n", path);
  fmt::print("span         0 .. {} s ({:.2f} h); first event at {} s\n", s.end_s, hours(s.end_s),
             s.first_event_s);
  fmt::print("events       {} ({} up, {} down, {} notice)\n", s.events, s.ups, s.preemptions,
             s.notices);
  fmt::print("workers      {} distinct; {} still up at the end\n", s.workers, s.up_at_end);
  fmt::print("up           peak {} (first at {} s), mean {:.2f}\n", s.peak_up, s.peak_at_s,
             s.mean_up);
  fmt::print("preemptions  {} downs, {} notices\n", s.preemptions, s.notices);
  if (s.lifetime) {
    const auto& l = *s.lifetime;
    fmt::print(
        "lifetime     {} completed: p10 {:.0f} s, p50 {:.0f} s, p90 {:.0f} s, mean {:.0f} s"
        " ({} open at the end, not counted)\n",
        l.completed, l.p10_s, l.p50_s, l.p90_s, l.mean_s, s.up_at_end);
  } else {
    fmt::print("lifetime     no up period ends with a down ({} open at the end)\n", s.up_at_end);
  }
  fmt::print("gpu-seconds  {:.0f} ({:.1f} GPU-hours)\n", s.gpu_seconds, hours(s.gpu_seconds));
  fmt::print("by GPU type  {:<14} {:>8} {:>6} {:>8} {:>11}\n", "type", "workers", "peak", "mean",
             "GPU-hours");
  for (const auto& t : s.by_type) {
    fmt::print("             {:<14} {:>8} {:>6} {:>8.2f} {:>11.1f}\n", t.gpu_type, t.workers,
               t.peak_up, t.mean_up, hours(t.gpu_seconds));
  }
}

void add_info(CLI::App& trace) {
  struct Args {
    std::string path, gpu_types;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = trace.add_subcommand("info", "Check a trace and summarise it");
  cmd->add_option("file", args->path, "Trace file")->required();
  cmd->add_flag("--json", args->json, "Print the summary as JSON");
  cmd->add_option("--gpu-types", args->gpu_types,
                  "Also check that every GPU type is one of these (comma-separated: the GPU "
                  "types of a cluster description)");
  cmd->callback([args] {
    const Trace t = parse_trace_file(args->path);
    if (!args->gpu_types.empty()) validate_gpu_types(t, parse_gpu_type_list(args->gpu_types));
    const auto s = summarize(t);
    if (args->json) {
      fmt::print("{}\n", summary_json(args->path, s).dump(2));
    } else {
      print_summary(args->path, s);
    }
  });
}

void add_plot(CLI::App& trace) {
  struct Args {
    std::string path, output, title;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = trace.add_subcommand("plot", "Draw workers up over time, in all and per GPU type");
  cmd->add_option("file", args->path, "Trace file")->required();
  cmd->add_option("-o,--output", args->output, "PNG to write")->required();
  cmd->add_option("--title", args->title, "Title (default: workers up in FILE)");
  cmd->callback([args] {
    const Trace t = parse_trace_file(args->path);
    const std::string title =
        args->title.empty() ? fmt::format("workers up in {}", file_name(args->path)) : args->title;
    plot_availability(t, title, args->output);
    fmt::print(stderr, "hearth: wrote {}\n", args->output);
  });
}

}  // namespace

void add_trace_command(CLI::App& app) {
  auto* trace = app.add_subcommand(
      "trace", "Availability traces: convert published ones, generate, summarise, plot");
  trace->require_subcommand(1);
  add_convert(*trace);
  add_generate(*trace);
  add_info(*trace);
  add_plot(*trace);
  add_trace_record(*trace);
}

}  // namespace hearth::cli
