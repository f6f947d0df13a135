#pragma once
// The model of the world that every policy reasons about: workers and their GPUs, contexts,
// storage tiers, and tasks. Plain values; time is seconds as a double, sizes are bytes.

#include <cstdint>
#include <limits>
#include <string>

namespace hearth {

// Dense ids handed out by a backend. A WorkerId names one slot of the pool; a worker that is lost
// and later joins again under the same id starts with empty tiers.
using WorkerId = std::uint32_t;
using ContextId = std::uint32_t;
using TaskId = std::uint64_t;
// One start of a task on a worker. A task may have several attempts (after preemption); at most
// one of them counts.
using AttemptId = std::uint64_t;

inline constexpr WorkerId kNoWorker = std::numeric_limits<WorkerId>::max();

// What a worker brings: its GPU and the room it has on each tier. Bandwidths are the backend's
// best knowledge (a cluster description, or a measurement) and only feed estimates; the cluster
// decides how long things really take.
struct WorkerSpec {
  WorkerId id = 0;
  std::string name;      // stable across rejoins of the same machine, for humans and statistics
  std::string gpu_type;  // e.g. "A100-40GB"; workers of one type are alike
  double gpu_memory_bytes = 0;
  double host_memory_bytes = 0;
  double disk_bytes = 0;
  double speed = 1.0;  // inference speed relative to the reference GPU (2.0 = twice as fast)
  double disk_read_Bps = 2e9;
  double host_to_gpu_Bps = 10e9;
  double network_Bps = 1.25e9;  // this worker's link, for peer transfers in and out
};

// Something a task needs resident in GPU memory before it can run: software, model weights,
// prompt templates. Built by moving `size_bytes` through the tiers and then initialising.
struct ContextSpec {
  ContextId id = 0;
  std::string name;
  double size_bytes = 0;  // bytes on disk, in host memory and in GPU memory alike
  double init_s = 0;      // fixed set-up once the bytes are in GPU memory (imports, allocation)
};

// Where a context can live on a worker, from fastest to slowest.
enum class Tier : std::uint8_t { gpu = 0, host = 1, disk = 2 };
inline constexpr int kTierCount = 3;
const char* to_string(Tier tier);

// The room a worker has on a tier: its GPU memory, host memory or disk.
inline double capacity_bytes(const WorkerSpec& spec, Tier tier) {
  switch (tier) {
    case Tier::gpu:
      return spec.gpu_memory_bytes;
    case Tier::host:
      return spec.host_memory_bytes;
    case Tier::disk:
      return spec.disk_bytes;
  }
  return 0;
}

// Where the bytes of a stage come from.
enum class SourceKind : std::uint8_t {
  shared_storage,  // the cluster's shared filesystem, bandwidth shared by all readers
  peer,            // another worker's disk or host copy
  lower_tier,      // the same worker's next tier down (disk -> host, host -> gpu)
};
const char* to_string(SourceKind kind);

struct Source {
  SourceKind kind = SourceKind::shared_storage;
  WorkerId peer = kNoWorker;  // set when kind == peer

  static Source shared() { return {SourceKind::shared_storage, kNoWorker}; }
  static Source from_peer(WorkerId w) { return {SourceKind::peer, w}; }
  static Source lower() { return {SourceKind::lower_tier, kNoWorker}; }
  friend bool operator==(const Source&, const Source&) = default;
};

// How context loads are counted: by the source of the step that completed.
enum class LoadSource : std::uint8_t {
  shared_storage = 0,
  peer = 1,
  local_disk = 2,
  host_memory = 3
};
inline constexpr int kLoadSourceCount = 4;
const char* to_string(LoadSource source);

// A unit of work as the cluster sees it: `count` inferences of context `context`, numbered
// [first, first + count) within that context's work.
struct TaskSpec {
  TaskId task = 0;
  AttemptId attempt = 0;
  ContextId context = 0;
  std::uint64_t first = 0;
  std::uint64_t count = 0;
};

}  // namespace hearth
