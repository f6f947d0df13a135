#include "os/logging.hpp"

#include <spdlog/spdlog.h>

namespace hearth::os {

void configure_logging(const std::string& who, LogLevel level) {
  spdlog::set_pattern("[%H:%M:%S.%e] [" + who + "] %^%l%$: %v");
  spdlog::set_level(level == LogLevel::quiet     ? spdlog::level::warn
                    : level == LogLevel::verbose ? spdlog::level::debug
                                                 : spdlog::level::info);
}

}  // namespace hearth::os
