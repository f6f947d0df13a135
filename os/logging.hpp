#pragma once
// The real backend logs through spdlog to stderr, each line naming the process that wrote it.

#include <string>

namespace hearth::os {

enum class LogLevel { quiet, normal, verbose };

// e.g. configure_logging("manager"), configure_logging("worker local-3").
void configure_logging(const std::string& who, LogLevel level = LogLevel::normal);

}  // namespace hearth::os
