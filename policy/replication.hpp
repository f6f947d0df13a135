#pragma once
// Replication planning: when several workers need contexts on their disk at once, decide which
// holders seed which of them, and which must read from shared storage, under per-peer upload caps.

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "policy/model.hpp"

namespace hearth {

struct SeedRequest {
  WorkerId worker = 0;
  ContextId context = 0;
};

// A worker that can serve peer transfers now.
struct SeedHolder {
  WorkerId worker = 0;
  int free_slots = 0;               // uploads it may still start
  int busy_slots = 0;               // uploads it serves now
  double upload_Bps = 1.25e9;       // its link, shared by its uploads
  std::vector<ContextId> contexts;  // contexts it holds (sorted)
};

// A worker never requests a context it holds, so no holder is ever asked to seed itself.
struct SeedProblem {
  std::vector<SeedRequest> requests;  // in the order they were made
  std::vector<SeedHolder> holders;    // sorted by worker id
  // shared_slots[c]: how many requests for context c may read from shared storage.
  std::vector<int> shared_slots;
  double shared_storage_Bps = 1e9;  // shared by all its readers
  int shared_readers = 0;           // reading it now
};

// One entry per request: the source to read from, or nothing (wait for a later round).
using SeedPlan = std::vector<std::optional<Source>>;

class Replication {
 public:
  virtual ~Replication() = default;
  virtual std::string_view name() const = 0;
  // Seeds as many requests as possible, never exceeding a holder's free slots or a context's
  // shared slots. Earlier requests are served first.
  virtual SeedPlan plan(const SeedProblem& problem) const = 0;
};

// First come, first served: each request takes the lowest-id holder with a free slot, and shared
// storage only when no holder has one.
std::unique_ptr<Replication> make_greedy_replication();
// Min-cost max-flow over holders and contexts under upload caps (Boost.Graph): each seed from the
// source with the least transfer time per byte, a peer or shared storage (docs/policies.md).
std::unique_ptr<Replication> make_flow_replication();

}  // namespace hearth
