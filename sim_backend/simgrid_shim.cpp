#include "sim_backend/simgrid_shim.hpp"

#include <simgrid/s4u.hpp>

namespace hearth::sim {

namespace sg4 = simgrid::s4u;

Platform build_platform(const std::vector<PlannedWorker>& workers) {
  auto* zone = sg4::create_star_zone("pool");
  Platform p;
  p.manager = zone->create_host("manager", 1.0);
  p.workers.reserve(workers.size());
  for (const PlannedWorker& w : workers)
    p.workers.push_back(zone->create_host("w:" + w.name, 1.0));
  zone->seal();
  return p;
}

void set_host_on(sg4::Host* host, bool on) {
  if (on) {
    host->turn_on();
  } else {
    host->turn_off();
  }
}

}  // namespace hearth::sim
