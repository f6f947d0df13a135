#pragma once
// Reading a cluster description out of a document node: shared by cluster files and by
// scenarios that describe their cluster inline. Internal to sim_backend/.

#include "sim_backend/cluster_description.hpp"
#include "sim_backend/document.hpp"

namespace hearth::sim {

ClusterDescription read_cluster_description(const Node& node);

}  // namespace hearth::sim
