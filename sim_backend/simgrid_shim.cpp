#include "sim_backend/simgrid_shim.hpp"

#include <simgrid/s4u.hpp>

#include <limits>

namespace hearth::sim {

namespace sg4 = simgrid::s4u;

void configure_models() {
  // CM02 without its latency-weighted sharing, no cross traffic and no TCP window bound: a flow
  // gets its max-min fair share of each link it crosses, and nothing else slows it.
  sg4::Engine::set_config("network/model:CM02");
  sg4::Engine::set_config("network/weight-S", 0.0);
  sg4::Engine::set_config("network/crosstraffic", false);
  sg4::Engine::set_config("network/TCP-gamma", std::numeric_limits<double>::max());
}

Platform build_platform(const ClusterDescription& cluster,
                        const std::vector<PlannedWorker>& workers) {
  const double half_latency_s = cluster.latency_s / 2;
  auto* zone = sg4::create_star_zone("pool");
  using Dir = sg4::LinkInRoute::Direction;

  Platform p;
  p.manager = zone->create_host("manager", 1.0);
  auto* manager_link = zone->create_split_duplex_link("manager:net", cluster.manager_network_Bps);
  manager_link->set_latency(half_latency_s)->seal();
  zone->add_route(p.manager->get_netpoint(), nullptr, nullptr, nullptr,
                  {sg4::LinkInRoute(manager_link, Dir::UP)}, false);
  zone->add_route(nullptr, p.manager->get_netpoint(), nullptr, nullptr,
                  {sg4::LinkInRoute(manager_link, Dir::DOWN)}, false);

  p.storage = zone->create_host("storage", 1.0);
  auto* storage_link = zone->create_link("storage:net", cluster.shared_storage_Bps);
  storage_link->set_latency(half_latency_s)->seal();
  zone->add_route(p.storage->get_netpoint(), nullptr, nullptr, nullptr,
                  {sg4::LinkInRoute(storage_link)}, false);
  zone->add_route(nullptr, p.storage->get_netpoint(), nullptr, nullptr,
                  {sg4::LinkInRoute(storage_link)}, false);

  p.workers.reserve(workers.size());
  for (const PlannedWorker& w : workers) {
    const GpuType& t = *w.type;
    WorkerHost wh;
    wh.host = zone->create_host("w:" + w.name, 1.0);
    wh.disk = wh.host->create_disk(w.name + ":disk", t.disk_read_Bps, t.disk_write_Bps);
    wh.disk->seal();
    wh.pcie = wh.host->create_disk(w.name + ":pcie", t.host_to_gpu_Bps, t.host_to_gpu_Bps);
    wh.pcie->seal();
    auto* net = zone->create_split_duplex_link(w.name + ":net", t.network_Bps);
    net->set_latency(half_latency_s)->seal();
    auto* disk_write = zone->create_link(w.name + ":disk-write", t.disk_write_Bps);
    disk_write->seal();
    zone->add_route(wh.host->get_netpoint(), nullptr, nullptr, nullptr,
                    {sg4::LinkInRoute(net, Dir::UP)}, false);
    zone->add_route(nullptr, wh.host->get_netpoint(), nullptr, nullptr,
                    {sg4::LinkInRoute(net, Dir::DOWN), sg4::LinkInRoute(disk_write)}, false);
    p.workers.push_back(wh);
  }
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
