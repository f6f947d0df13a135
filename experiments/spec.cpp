#include "experiments/spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <sstream>

#include "policy/errors.hpp"
#include "policy/registry.hpp"
#include "sim_backend/document.hpp"
#include "sim_backend/generator_reader.hpp"
#include "sim_backend/scenario.hpp"
#include "traces/generator_spec.hpp"
#include "traces/text.hpp"
#include "traces/trace.hpp"

namespace hearth::experiments {

namespace {

using sim::Node;

// FNV-1a, 64 bits: stable across platforms and runs, which std::hash is not.
std::string digest(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

// A name becomes part of file names and CSV cells: keep it to a safe alphabet.
void check_name(const Node& node, std::string_view key, const std::string& name) {
  bool ok = !name.empty() && name.front() != '.' && name.find("__") == std::string::npos;
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_');
  }
  if (!ok) {
    node.fail(key, fmt::format("'{}' is not a usable name (letters, digits, '.', '-' and single "
                               "'_'; not starting with '.')",
                               name));
  }
}

// The entries of a list of plain values, each as a one-key node so that Node's checks report
// "key batch_sizes[2]: ..." exactly as they report any other key.
class ListItems {
 public:
  ListItems(const sim::Document& doc, const nlohmann::json& parent, const std::string& parent_path,
            std::string_view key) {
    const std::string path =
        parent_path.empty() ? std::string(key) : fmt::format("{}.{}", parent_path, key);
    const auto& list = parent.at(std::string(key));
    if (!list.is_array()) {
      throw InputError(fmt::format("{}: key {}: must be a list", doc.source, path));
    }
    if (list.empty()) throw InputError(fmt::format("{}: key {}: is empty", doc.source, path));
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::string item_key = fmt::format("{}[{}]", path, i);
      holders_.push_back(nlohmann::json::object({{item_key, list[i]}}));
      keys_.push_back(std::move(item_key));
    }
    for (const auto& h : holders_)
      nodes_.emplace_back(doc.source, "", &h);
  }
  std::size_t size() const { return keys_.size(); }
  const Node& node(std::size_t i) const { return nodes_[i]; }
  const std::string& key(std::size_t i) const { return keys_[i]; }

 private:
  std::vector<nlohmann::json> holders_;
  std::vector<std::string> keys_;
  std::vector<Node> nodes_;
};

std::set<std::string> known_types(const sim::ClusterDescription& cluster) {
  std::set<std::string> names;
  for (const auto& t : cluster.gpu_types)
    names.insert(t.name);
  return names;
}

void check_pool_types(const Node& t, std::string_view key, const traces::GeneratorConfig& config,
                      const sim::ClusterDescription& cluster) {
  const auto known = known_types(cluster);
  for (const auto& group : config.pool) {
    if (known.count(group.gpu_type) == 0) {
      t.fail(key, fmt::format("unknown GPU type '{}' (the cluster description has {})",
                              group.gpu_type, fmt::join(known, ", ")));
    }
  }
}

// N workers up from time 0 for good: the same GPUs for the whole run.
traces::GeneratorConfig static_pool(const Node& t) {
  traces::GeneratorConfig config;
  config.pool = t.parsed("static", traces::parse_pool);
  std::size_t total = 0;
  for (const auto& g : config.pool)
    total += g.count;
  config.max_held = total;
  config.initial = total;
  config.duration_s = 3600;  // the workers stay up past the end: any length will do
  config.arrivals = {traces::Arrivals::Kind::poisson, 0, 0, 0};
  config.lifetime = {};
  config.reclaim = {0, 0, 14};
  return config;
}

TraceSource read_trace(const Node& t, const ExperimentSpec& spec) {
  t.only_keys({"name", "file", "generate", "static", "duration", "start_hour", "pool", "max_held",
               "initial", "arrivals", "lifetime", "reclaim", "notice_s"});
  TraceSource source;
  source.name = t.text("name");
  check_name(t, "name", source.name);
  const int ways = int(t.has("file")) + int(t.has("generate")) + int(t.has("static"));
  if (ways != 1) t.fail_here("needs exactly one of file, generate and static");

  if (t.has("file")) {
    for (const std::string_view key : sim::kGeneratorSettings) {
      if (t.has(key)) t.fail(key, "only a generated trace takes generator settings");
    }
    source.kind = "file";
    source.file = t.file_path("file");
    if (!std::filesystem::is_regular_file(source.file)) {
      t.fail("file", fmt::format("no such file: {}", source.file));
    }
    // Parse now, so that a bad row or an unknown GPU type stops the sweep before it starts.
    sim::Scenario check;
    check.cluster = spec.cluster;
    check.trace = traces::parse_trace_file(source.file);
    sim::check_scenario(check);
    source.description = source.file;
    source.digest = digest(traces::read_text_file(source.file));
    return source;
  }

  if (t.has("static")) {
    for (const std::string_view key : sim::kGeneratorSettings) {
      if (t.has(key)) t.fail(key, "a static pool takes no generator settings");
    }
    source.kind = "static";
    source.generator = static_pool(t);
    check_pool_types(t, "static", *source.generator, spec.cluster);
  } else {
    source.kind = "generated";
    source.generator = sim::read_generator(t);
    check_pool_types(t, t.has("pool") ? "pool" : "generate", *source.generator, spec.cluster);
  }
  try {
    traces::check_generator_config(*source.generator);
  } catch (const InputError& e) {
    t.fail_here(e.what());
  }
  traces::GeneratorConfig unseeded = *source.generator;
  unseeded.seed = 0;
  const std::string command = traces::generator_command(unseeded);
  source.description =
      command.substr(0, command.find(" --seed ")) + command.substr(command.find(" --duration "));
  source.digest = digest(command);
  return source;
}

WorkloadSource read_workload(const Node& w, const sim::ClusterDescription& cluster) {
  w.only_keys({"name", "contexts"});
  WorkloadSource source;
  source.name = w.text("name");
  check_name(w, "name", source.name);
  std::vector<Node> contexts = w.tables("contexts");
  if (contexts.empty()) w.fail("contexts", "lists no context: there is nothing to do");
  std::set<std::string> names;
  for (const Node& c : contexts) {
    c.only_keys({"name", "size_bytes", "init_s", "inferences"});
    ContextSpec spec;
    spec.name = c.text("name");
    if (!names.insert(spec.name).second) c.fail("name", fmt::format("'{}' twice", spec.name));
    spec.size_bytes = c.positive("size_bytes");
    spec.init_s = c.non_negative_or("init_s", 0.0);
    bool fits = false;
    for (const auto& t : cluster.gpu_types) {
      fits = fits || (spec.size_bytes <= t.gpu_memory_bytes &&
                      spec.size_bytes <= t.host_memory_bytes && spec.size_bytes <= t.disk_bytes);
    }
    if (!fits) {
      c.fail("size_bytes", fmt::format("context {} ({:.3g} bytes) fits on no GPU type of {}",
                                       spec.name, spec.size_bytes, cluster.source));
    }
    source.workload.add(spec, c.count("inferences"));
  }
  return source;
}

// The GPU types a trace can offer: those its file names, or its generator's pool.
std::set<std::string> trace_types(const TraceSource& t) {
  std::set<std::string> types;
  if (t.generator) {
    for (const auto& g : t.generator->pool)
      types.insert(g.gpu_type);
  } else {
    for (const auto& e : traces::parse_trace_file(t.file).events) {
      if (e.kind == traces::EventKind::up) types.insert(e.gpu_type);
    }
  }
  return types;
}

// A context that fits on none of a trace's GPUs would leave that cell waiting forever.
void check_fits_traces(const sim::Document& doc, const ExperimentSpec& spec) {
  for (const TraceSource& t : spec.traces) {
    const auto types = trace_types(t);
    for (std::size_t w = 0; w < spec.workloads.size(); ++w) {
      const auto& contexts = spec.workloads[w].workload.contexts;
      for (std::size_t c = 0; c < contexts.size(); ++c) {
        bool fits = false;
        for (const auto& type : spec.cluster.gpu_types) {
          fits = fits ||
                 (types.count(type.name) > 0 && contexts[c].size_bytes <= type.gpu_memory_bytes &&
                  contexts[c].size_bytes <= type.host_memory_bytes &&
                  contexts[c].size_bytes <= type.disk_bytes);
        }
        if (!fits) {
          throw InputError(fmt::format(
              "{}: key workloads[{}].contexts[{}].size_bytes: context {} ({:.3g} bytes) fits on no "
              "GPU of trace '{}' ({})",
              doc.source, w, c, contexts[c].name, contexts[c].size_bytes, t.name,
              fmt::join(types, ", ")));
        }
      }
    }
  }
}

PolicySource read_policy(const Node& item, const std::string& key, const ExperimentSpec& spec) {
  PolicySource p;
  p.label = item.text(key);
  std::vector<std::string> parts;
  std::stringstream in(p.label);
  for (std::string part; std::getline(in, part, '/');)
    parts.push_back(part);
  if (parts.size() != 1 && parts.size() != 3) {
    item.fail(key,
              fmt::format("'{}' is neither PLACEMENT nor PLACEMENT/EVICTION/GRANULARITY", p.label));
  }
  PolicyChoice choice;
  choice.replication = spec.replication;
  choice.upload_cap = spec.upload_cap;
  PolicyOverrides named;
  named.placement = parts[0];
  if (parts.size() == 3) {
    named.eviction = parts[1];
    named.granularity = parts[2];
  }
  apply_overrides(choice, named);
  try {
    make_policies(choice);
  } catch (const InputError& e) {
    item.fail(key, e.what());
  }
  p.placement = choice.placement;
  p.eviction = choice.eviction;
  p.granularity = choice.granularity;
  return p;
}

template <class T, class Same>
void reject_twice(const ListItems& items, const std::vector<T>& values, Same same) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (same(values[i], values[j])) {
        items.node(i).fail(items.key(i), fmt::format("the same as {}", items.key(j)));
      }
    }
  }
}

std::vector<std::uint64_t> read_numbers(const sim::Document& doc, std::string_view key,
                                        std::uint64_t at_least) {
  ListItems items(doc, doc.root, "", key);
  std::vector<std::uint64_t> values;
  for (std::size_t i = 0; i < items.size(); ++i)
    values.push_back(items.node(i).whole(items.key(i), at_least));
  reject_twice(items, values, [](auto a, auto b) { return a == b; });
  return values;
}

template <class T>
std::size_t index_of(const Node& g, std::string_view key, const std::vector<T>& options,
                     const std::string& wanted, auto name_of) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < options.size(); ++i) {
    if (name_of(options[i]) == wanted) return i;
    names.push_back(name_of(options[i]));
  }
  g.fail(key, fmt::format("'{}' is not in the spec (it has {})", wanted, fmt::join(names, ", ")));
}

Cell read_gantt(const Node& g, const ExperimentSpec& spec) {
  g.only_keys({"trace", "workload", "policy", "batch_size", "seed"});
  Cell cell;
  cell.batch_size = spec.batch_sizes.front();
  cell.seed = spec.seeds.front();
  if (g.has("trace")) {
    cell.trace = index_of(g, "trace", spec.traces, g.text("trace"),
                          [](const TraceSource& t) { return t.name; });
  }
  if (g.has("workload")) {
    cell.workload = index_of(g, "workload", spec.workloads, g.text("workload"),
                             [](const WorkloadSource& w) { return w.name; });
  }
  if (g.has("policy")) {
    cell.policy = index_of(g, "policy", spec.policies, g.text("policy"),
                           [](const PolicySource& p) { return p.label; });
  }
  auto number_in = [&](std::string_view key, const std::vector<std::uint64_t>& options) {
    const std::uint64_t n = g.whole(key, 0);
    std::vector<std::string> names;
    for (auto o : options)
      names.push_back(std::to_string(o));
    if (std::find(options.begin(), options.end(), n) == options.end()) {
      g.fail(key, fmt::format("{} is not in the spec (it has {})", n, fmt::join(names, ", ")));
    }
    return n;
  };
  if (g.has("batch_size")) cell.batch_size = number_in("batch_size", spec.batch_sizes);
  if (g.has("seed")) cell.seed = number_in("seed", spec.seeds);
  return cell;
}

}  // namespace

const std::vector<std::string>& known_figures() {
  static const std::vector<std::string> figures = {"makespan_vs_batch", "makespan_vs_churn",
                                                   "ratio_to_bound", "gpu_seconds", "gantt"};
  return figures;
}

ExperimentSpec load_spec(const std::string& path) {
  if (!std::filesystem::is_regular_file(path))
    throw InputError(fmt::format("{}: no such file", path));
  const sim::Document doc = sim::read_document(path);
  const Node top = doc.top();
  top.only_keys({"name", "cluster", "traces", "workloads", "policies", "batch_sizes", "seeds",
                 "replication", "upload_cap", "detection_delay_s", "gantt", "plots"});

  ExperimentSpec spec;
  spec.source = path;
  spec.name = top.text_or("name", std::filesystem::path(path).stem().string());
  check_name(top, "name", spec.name);

  spec.cluster_file = top.file_path("cluster");
  if (!std::filesystem::is_regular_file(spec.cluster_file)) {
    top.fail("cluster", fmt::format("no such file: {}", spec.cluster_file));
  }
  spec.cluster = sim::load_cluster_description(spec.cluster_file);
  spec.cluster_digest = digest(traces::read_text_file(spec.cluster_file));

  spec.replication = top.text_or("replication", spec.replication);
  spec.upload_cap = static_cast<int>(top.count_or("upload_cap", spec.upload_cap));
  spec.detection_delay_s = top.non_negative_or("detection_delay_s", 0.0);

  std::set<std::string> names;
  for (const Node& t : top.tables("traces")) {
    spec.traces.push_back(read_trace(t, spec));
    if (!names.insert(spec.traces.back().name).second) {
      t.fail("name", fmt::format("'{}' names another trace too", spec.traces.back().name));
    }
  }
  if (spec.traces.empty()) top.fail("traces", "lists no trace");

  names.clear();
  for (const Node& w : top.tables("workloads")) {
    spec.workloads.push_back(read_workload(w, spec.cluster));
    if (!names.insert(spec.workloads.back().name).second) {
      w.fail("name", fmt::format("'{}' names another workload too", spec.workloads.back().name));
    }
  }
  if (spec.workloads.empty()) top.fail("workloads", "lists no workload");
  check_fits_traces(doc, spec);

  if (!top.has("policies")) top.fail("policies", "missing");
  const ListItems policies(doc, doc.root, "", "policies");
  for (std::size_t i = 0; i < policies.size(); ++i)
    spec.policies.push_back(read_policy(policies.node(i), policies.key(i), spec));
  reject_twice(policies, spec.policies, [](const PolicySource& a, const PolicySource& b) {
    return a.placement == b.placement && a.eviction == b.eviction && a.granularity == b.granularity;
  });

  spec.batch_sizes = top.has("batch_sizes") ? read_numbers(doc, "batch_sizes", 1)
                                            : std::vector<std::uint64_t>{100};
  spec.seeds = top.has("seeds") ? read_numbers(doc, "seeds", 0) : std::vector<std::uint64_t>{1};

  if (top.has("gantt")) {
    for (const Node& g : top.tables("gantt"))
      spec.gantt.push_back(read_gantt(g, spec));
  }

  if (top.has("plots")) {
    const Node plots = top.table("plots");
    plots.only_keys({"figures"});
    const ListItems figures(doc, doc.root.at("plots"), "plots", "figures");
    for (std::size_t i = 0; i < figures.size(); ++i) {
      std::string figure = figures.node(i).text(figures.key(i));
      const auto& known = known_figures();
      if (std::find(known.begin(), known.end(), figure) == known.end()) {
        figures.node(i).fail(figures.key(i), fmt::format("unknown figure '{}' (known: {})", figure,
                                                         fmt::join(known, ", ")));
      }
      spec.figures.push_back(std::move(figure));
    }
  }
  return spec;
}

std::vector<Cell> expand_grid(const ExperimentSpec& spec) {
  std::vector<Cell> cells;
  for (std::size_t t = 0; t < spec.traces.size(); ++t) {
    for (std::size_t w = 0; w < spec.workloads.size(); ++w) {
      for (std::size_t p = 0; p < spec.policies.size(); ++p) {
        for (std::uint64_t b : spec.batch_sizes) {
          for (std::uint64_t s : spec.seeds)
            cells.push_back({t, w, p, b, s});
        }
      }
    }
  }
  return cells;
}

std::string cell_key(const ExperimentSpec& spec, const Cell& c) {
  const PolicySource& p = spec.policies[c.policy];
  return fmt::format("{}__{}__{}-{}-{}__b{}__s{}", spec.traces[c.trace].name,
                     spec.workloads[c.workload].name, p.placement, p.eviction, p.granularity,
                     c.batch_size, c.seed);
}

std::string cell_fingerprint(const ExperimentSpec& spec, const Cell& c) {
  const PolicySource& p = spec.policies[c.policy];
  std::string text = fmt::format(
      "hearth-experiment-cell 1\ncluster {}\ntrace {}\npolicy {} {} {} {} {}\nbatch {}\nseed "
      "{}\ndetection_delay_s {:.17g}\n",
      spec.cluster_digest, spec.traces[c.trace].digest, p.placement, p.eviction, p.granularity,
      spec.replication, spec.upload_cap, c.batch_size, c.seed, spec.detection_delay_s);
  const Workload& w = spec.workloads[c.workload].workload;
  for (std::size_t i = 0; i < w.contexts.size(); ++i) {
    text += fmt::format("context {} {:.17g} {:.17g} {}\n", w.contexts[i].name,
                        w.contexts[i].size_bytes, w.contexts[i].init_s, w.inferences[i]);
  }
  return digest(text);
}

}  // namespace hearth::experiments
