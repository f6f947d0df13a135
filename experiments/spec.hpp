#pragma once
// An experiment spec: a grid of traces x workloads x policies x batch sizes x seeds over one
// cluster description (docs/experiments.md). Each point of the grid is a cell: one simulated run,
// identified by a stable key so that an interrupted sweep resumes exactly where it stopped.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/workload.hpp"
#include "sim_backend/cluster_description.hpp"
#include "traces/generator.hpp"

namespace hearth::experiments {

// Where a cell's availability comes from: a trace file, or the generator seeded by the cell's
// seed (a static pool is a generator config whose workers come up at 0 and never leave).
struct TraceSource {
  std::string name;
  std::string file;                                  // empty when generated
  std::optional<traces::GeneratorConfig> generator;  // its seed is replaced by the cell's
  std::string kind;                                  // "file", "generated" or "static"
  std::string description;  // the file, or the generator's command line without the seed
  std::string digest;       // of the file's bytes or the generator's settings, for resume
};

struct WorkloadSource {
  std::string name;
  Workload workload;
};

struct PolicySource {
  std::string label;  // as the spec writes it: "pcm", "pcm/cost/fixed"
  std::string placement;
  std::string eviction;
  std::string granularity;
};

struct Cell {
  std::size_t trace = 0;  // indices into the spec's lists
  std::size_t workload = 0;
  std::size_t policy = 0;
  std::uint64_t batch_size = 0;
  std::uint64_t seed = 0;
  bool operator==(const Cell&) const = default;
};

struct ExperimentSpec {
  std::string source;  // the spec file
  std::string name;
  std::string cluster_file;
  std::string cluster_digest;
  sim::ClusterDescription cluster;
  std::vector<TraceSource> traces;
  std::vector<WorkloadSource> workloads;
  std::vector<PolicySource> policies;
  std::vector<std::uint64_t> batch_sizes;
  std::vector<std::uint64_t> seeds;
  std::string replication = "flow";
  int upload_cap = 10;
  double detection_delay_s = 0;
  std::vector<Cell> gantt;           // cells whose timelines are kept for a Gantt chart
  std::vector<std::string> figures;  // empty: every figure the grid allows
};

// The figures `hearth experiment plot` knows, in the order it draws them.
const std::vector<std::string>& known_figures();

// Reads and checks a spec file (TOML or JSON; paths relative to it): unknown keys, bad values,
// missing or malformed files, unknown policies and GPU types. Throws InputError
// ("spec.toml: key traces[1].file: ...").
ExperimentSpec load_spec(const std::string& path);

// Every cell, trace outermost, then workload, policy, batch size and seed, each in spec order.
std::vector<Cell> expand_grid(const ExperimentSpec& spec);

// "TRACE__WORKLOAD__PLACEMENT-EVICTION-GRANULARITY__bBATCH__sSEED": stable across runs and
// usable as a file name (names are restricted to letters, digits, '.', '-' and single '_').
std::string cell_key(const ExperimentSpec& spec, const Cell& cell);

// Changes whenever anything that decides the cell's result changes (the cluster file's bytes,
// the trace's, the workload, the policies, the seed), so that resuming never reuses a result
// of other inputs.
std::string cell_fingerprint(const ExperimentSpec& spec, const Cell& cell);

}  // namespace hearth::experiments
