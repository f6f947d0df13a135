#pragma once
// The real backend logs through spdlog to stderr (or a file), each line naming the process that
// wrote it; stdout is left for results.

#include <filesystem>
#include <string>

namespace hearth::os {

enum class LogLevel { quiet, normal, verbose };

// e.g. configure_logging("manager"), configure_logging("worker local-3").
// With `log_file`, lines are appended there (created 0600) instead; throws InputError if it cannot
// be written.
void configure_logging(const std::string& who, LogLevel level = LogLevel::normal,
                       const std::filesystem::path& log_file = {});

}  // namespace hearth::os
