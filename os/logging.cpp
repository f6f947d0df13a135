#include "os/logging.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "policy/errors.hpp"

namespace hearth::os {

void configure_logging(const std::string& who, LogLevel level,
                       const std::filesystem::path& log_file) {
  std::shared_ptr<spdlog::logger> logger;
  if (log_file.empty()) {
    logger = std::make_shared<spdlog::logger>(
        "hearth-" + who, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  } else {
    // Created 0600 and never through a link; appended to, as a log that outlives runs.
    int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      throw InputError(
          fmt::format("{}: cannot write the log: {}", log_file.string(), std::strerror(errno)));
    }
    ::close(fd);
    logger = std::make_shared<spdlog::logger>(
        "hearth-" + who, std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file.string()));
    logger->flush_on(spdlog::level::info);
  }
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S.%e] [" + who + "] %^%l%$: %v");
  spdlog::set_level(level == LogLevel::quiet     ? spdlog::level::warn
                    : level == LogLevel::verbose ? spdlog::level::debug
                                                 : spdlog::level::info);
}

}  // namespace hearth::os
