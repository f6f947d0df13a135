#pragma once
// A status snapshot in Prometheus' text exposition format (version 0.0.4), served at /metrics by
// the status page: every metric with its HELP and TYPE lines, label values escaped.

#include <string>

#include "real_backend/status/status_snapshot.hpp"

namespace hearth::real {

std::string prometheus_metrics(const StatusSnapshot& status);

// `value` as a Prometheus label value between its quotes: backslash, double quote and line feed
// escaped.
std::string escape_label(const std::string& value);

}  // namespace hearth::real
