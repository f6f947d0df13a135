#pragma once
// The thin layer between hearth and the SimGrid calls that SimGrid 4 renamed (platform building,
// hosts going on and off). Moving to SimGrid 4 touches simgrid_shim.cpp only; the activities and
// actors that sim_cluster.cpp uses kept their names.
//
// The platform (docs/simulator.md, "The model"): a host per worker (speed 1: an execution of x
// flops takes x seconds; it goes off when the worker is lost) and one for the manager's actor.
// Bytes on their way (links, shared storage, disks, host-to-GPU copies) are the FluidNetwork's.

#include <simgrid/forward.h>

#include <string>
#include <vector>

#include "sim_backend/cluster_description.hpp"

namespace hearth::sim {

struct Platform {
  simgrid::s4u::Host* manager = nullptr;
  std::vector<simgrid::s4u::Host*> workers;  // indexed by WorkerId
};

struct PlannedWorker {
  std::string name;
  const GpuType* type = nullptr;
};

// Builds the whole platform and seals it. Every host starts on.
Platform build_platform(const std::vector<PlannedWorker>& workers);

void set_host_on(simgrid::s4u::Host* host, bool on);

}  // namespace hearth::sim
