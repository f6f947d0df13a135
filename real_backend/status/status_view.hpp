#pragma once
// A status snapshot as `hearth status` prints it for a person: progress, tasks, workers grouped by
// GPU type with their state, task and contexts per tier, quarantined workers, transfers in flight
// and recent errors.

#include <string>

#include "real_backend/status/status_snapshot.hpp"

namespace hearth::real {

// `now` (unix seconds) says how old the snapshot is.
std::string render_status(const StatusSnapshot& status, double now);

// "46 s", "3 min 20 s", "2 h 05 min".
std::string format_duration(double seconds);
// "512 B", "4.1 kB", "1.2 MB", "3.4 GB" (powers of 1000).
std::string format_bytes(double bytes);

}  // namespace hearth::real
