#include "sim_backend/scenario.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <set>

#include "policy/errors.hpp"
#include "sim_backend/cluster_description_reader.hpp"
#include "sim_backend/document.hpp"
#include "sim_backend/generator_reader.hpp"
#include "traces/generator.hpp"
#include "traces/generator_spec.hpp"

namespace hearth::sim {

namespace {

// A trace made by the generator of traces/GENERATORS.md from a preset and optional changes,
// seeded by the scenario's seed.
traces::Trace generate(const Node& t, std::uint64_t seed, const traces::GeneratorLimits& limits,
                       std::string& origin) {
  t.only_keys({"generate", "duration", "start_hour", "pool", "max_held", "initial", "arrivals",
               "lifetime", "reclaim", "notice_s"});
  traces::GeneratorConfig config = read_generator(t);
  config.seed = seed;
  origin = fmt::format("generated: {} (seed {})", traces::generator_command(config), seed);
  traces::Trace trace;
  try {
    traces::check_generator_config(config);
    trace = traces::generate_trace(config, limits);
  } catch (const InputError& e) {
    t.fail_here(e.what());
  }
  trace.source = fmt::format("{} [trace]", t.source());
  return trace;
}

void read_policy(const Node& p, PolicyChoice& policies) {
  p.only_keys({"placement", "eviction", "granularity", "replication", "batch_size", "upload_cap"});
  apply_overrides(policies, {.placement = p.optional_text("placement"),
                             .eviction = p.optional_text("eviction"),
                             .granularity = p.optional_text("granularity"),
                             .replication = p.optional_text("replication"),
                             .batch_size = p.optional_count("batch_size"),
                             .upload_cap = p.optional_count("upload_cap")});
}

}  // namespace

std::string default_scenario_path() {
  return HEARTH_DEFAULT_SCENARIO;
}

Scenario load_scenario(const std::string& path, const ScenarioOverrides& overrides) {
  Document doc = read_document(path);
  Node top = doc.top();
  top.only_keys({"name", "cluster", "trace", "seed", "detection_delay_s", "policy", "contexts"});

  Scenario s;
  s.source = path;
  s.name = top.text_or("name", std::filesystem::path(path).stem().string());
  s.seed = overrides.seed ? *overrides.seed : top.whole_or("seed", 1);
  s.detection_delay_s = top.non_negative_or("detection_delay_s", 0.0);
  if (overrides.detection_delay_s) s.detection_delay_s = *overrides.detection_delay_s;

  if (top.is_string("cluster")) {
    s.cluster = load_cluster_description(top.file_path("cluster"));
  } else {
    s.cluster = read_cluster_description(top.table("cluster"));
  }

  if (overrides.trace) {
    s.trace = traces::parse_trace_file(*overrides.trace);
    s.trace_origin = *overrides.trace;
  } else if (top.is_string("trace")) {
    s.trace_origin = top.file_path("trace");
    s.trace = traces::parse_trace_file(s.trace_origin);
  } else {
    s.trace = generate(top.table("trace"), s.seed, overrides.generator_limits, s.trace_origin);
  }

  if (top.has("policy")) read_policy(top.table("policy"), s.policies);
  apply_overrides(s.policies, overrides.policies);

  std::vector<Node> contexts = top.tables("contexts");
  if (contexts.empty()) top.fail("contexts", "lists no context: there is nothing to do");
  for (const Node& c : contexts) {
    c.only_keys({"name", "size_bytes", "init_s", "inferences"});
    ContextSpec spec;
    spec.name = c.text_or("name", fmt::format("context{}", s.workload.contexts.size()));
    spec.size_bytes = c.positive("size_bytes");
    spec.init_s = c.non_negative_or("init_s", 0.0);
    s.workload.add(spec, c.count("inferences"));
  }

  try {
    check_scenario(s);
  } catch (const InputError& e) {
    // Policy names and sizes are the scenario's (or the flags'); say which file they came from.
    throw InputError(fmt::format("{}: {}", path, e.what()));
  }
  return s;
}

void check_scenario(const Scenario& s) {
  make_policies(s.policies);  // throws for an unknown name

  std::set<std::string> known;
  for (const GpuType& t : s.cluster.gpu_types)
    known.insert(t.name);
  traces::validate_gpu_types(s.trace, known);

  // A worker is one machine: it comes back with the GPU it left with.
  std::map<std::string, const traces::TraceEvent*> first_up;
  for (const auto& e : s.trace.events) {
    if (e.kind != traces::EventKind::up) continue;
    auto [it, fresh] = first_up.emplace(e.worker, &e);
    if (!fresh && it->second->gpu_type != e.gpu_type) {
      throw InputError(fmt::format("{}:{}: worker {} comes up with {}, but had {} at line {}",
                                   s.trace.source, e.line, e.worker, e.gpu_type,
                                   it->second->gpu_type, it->second->line));
    }
  }

  for (const ContextSpec& c : s.workload.contexts) {
    bool fits = false;
    for (const GpuType& t : s.cluster.gpu_types) {
      fits = fits || (c.size_bytes <= t.gpu_memory_bytes && c.size_bytes <= t.host_memory_bytes &&
                      c.size_bytes <= t.disk_bytes);
    }
    if (!fits) {
      throw InputError(fmt::format("context {} ({} bytes) fits on no GPU type of {}", c.name,
                                   c.size_bytes, s.cluster.source));
    }
  }
}

}  // namespace hearth::sim
