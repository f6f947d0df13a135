#pragma once
// The workers the manager knows, by the WorkerId the core knows them by: the connection each is
// on, its name, where it serves peers, its process if it runs on this machine, and when it was
// last heard. Bookkeeping only: the manager's loop decides what a join or a loss means.
//
// Ids are stable per name: a worker that joins again under its name gets its old id back.

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/model.hpp"

namespace hearth::real {

struct WorkerSlot {
  bool alive = false;
  std::string routing;  // ZeroMQ routing id of its connection
  std::string name;
  std::string key;  // the public key its connection authenticated with
  std::string peer_endpoint;
  std::string host;    // the address its connection comes from
  int fd = -1;         // its connection's socket, to match a disconnect
  bool local = false;  // connected over loopback: its pid means something here
  std::uint32_t pid = 0;
  double last_heard_s = 0;
  double recent_gap_s = 0;  // the longest gap between its messages of late (decaying)
};

class WorkerRegistry {
 public:
  std::size_t size() const { return slots_.size(); }
  const WorkerSlot& operator[](WorkerId w) const { return slots_[w]; }
  int live() const { return live_; }
  // The live worker on connection `routing`, or kNoWorker.
  WorkerId on_connection(const std::string& routing) const;

  // Records a join (slot.alive set): returns its id, the name's old one or a new one. Requires:
  // no live worker has this name or this connection.
  WorkerId join(WorkerSlot slot);
  // Marks `w` lost; returns false if it was not alive.
  bool lose(WorkerId w);
  // A message from `w` at now_s.
  void heard(WorkerId w, double now_s);

  // Live workers that a new connection on socket `fd` from a worker named `name` replaces: one of
  // that name (it joined again), or one on that socket (closed, and the number reused).
  std::vector<WorkerId> replaced_by(const std::string& name, int fd) const;
  // Live workers on socket `fd`.
  std::vector<WorkerId> on_socket(int fd) const;
  // Live workers on this machine whose process is `pid`.
  std::vector<WorkerId> of_process(std::uint32_t pid) const;
  // Live workers not heard for longer than their budget at now_s: timeout_s, or for a worker whose
  // messages came with long gaps of late (a starved process on a loaded machine), 3 times its
  // longest recent gap, up to 4 * timeout_s.
  std::vector<WorkerId> silent(double now_s, double timeout_s) const;
  // The silence `w` is allowed before it counts as lost.
  double silence_budget(WorkerId w, double timeout_s) const;
  // The ids of the live workers.
  std::vector<WorkerId> live_ids() const;

 private:
  template <class Pred>
  std::vector<WorkerId> live_where(Pred pred) const;

  std::vector<WorkerSlot> slots_;
  std::unordered_map<std::string, WorkerId> by_routing_;
  std::map<std::string, WorkerId> by_name_;
  int live_ = 0;
};

}  // namespace hearth::real
