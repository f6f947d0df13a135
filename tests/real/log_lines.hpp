#pragma once
// What this process logs (spdlog's default logger), kept for the test: a manager and workers on
// threads say there what happened ("worker 0 (a) joined: ...", "... lost: it left"), and a test
// waits for those events rather than for a clock.

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/real/helpers.hpp"

namespace hearth::testing {

class LogLines {
 public:
  // Installs itself on the default logger: before any thread logs.
  LogLines() : sink_(std::make_shared<Sink>()), level_(spdlog::get_level()) {
    spdlog::set_level(spdlog::level::info);
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  // After every thread that logs has ended.
  ~LogLines() {
    std::erase(spdlog::default_logger()->sinks(), sink_);
    spdlog::set_level(level_);
  }
  LogLines(const LogLines&) = delete;
  LogLines& operator=(const LogLines&) = delete;

  // How many lines logged so far contain `text`.
  int count(const std::string& text) const { return sink_->count(text); }
  // Waits until `n` lines contain `text`; false if that takes more than timeout_s (a hang).
  bool wait(const std::string& text, int n = 1, double timeout_s = 60) const {
    return wait_for([&] { return count(text) >= n; }, timeout_s);
  }

 private:
  class Sink final : public spdlog::sinks::base_sink<std::mutex> {
   public:
    int count(const std::string& text) {
      std::lock_guard lock(mutex_);
      return static_cast<int>(
          std::count_if(lines_.begin(), lines_.end(),
                        [&](const std::string& l) { return l.find(text) != std::string::npos; }));
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      lines_.emplace_back(msg.payload.data(), msg.payload.size());
    }
    void flush_() override {}

   private:
    std::vector<std::string> lines_;
  };

  std::shared_ptr<Sink> sink_;
  spdlog::level::level_enum level_;
};

}  // namespace hearth::testing
