#include "bench/command_replay.hpp"

#include <cassert>
#include <limits>
#include <sstream>

namespace hearth::bench {

namespace {

Tier tier_of(const std::string& word) {
  return word == "gpu" ? Tier::gpu : word == "host" ? Tier::host : Tier::disk;
}

// "w12" -> 12, "c3" -> 3.
std::uint32_t id_of(const std::string& word) {
  return static_cast<std::uint32_t>(std::stoul(word.substr(1)));
}

}  // namespace

CommandReplay::CommandReplay(Cluster& cluster, const std::vector<std::string>& log,
                             std::uint64_t finished_attempts)
    : cluster_(cluster), expected_finished_(finished_attempts) {
  commands_.reserve(log.size());
  for (const std::string& line : log)
    commands_.push_back(parse(line));
}

// The lines of policy/command_log.cpp:
//   T stage wW cC TIER from shared|lower|peer:P
//   T evict wW cC TIER
//   T start wW task T attempt A cC [F,E)
//   T cancel wW attempt A
CommandReplay::Command CommandReplay::parse(const std::string& line) {
  std::istringstream in(line);
  Command c;
  std::string kind, worker, word;
  in >> c.at_s >> kind >> worker;
  c.worker = id_of(worker);
  if (kind == "stage" || kind == "evict") {
    in >> word;
    c.context = id_of(word);
    in >> word;
    c.tier = tier_of(word);
    c.kind = kind == "stage" ? Command::Kind::stage : Command::Kind::evict;
    if (kind == "stage") {
      in >> word >> word;  // "from", the source
      c.source = word == "shared"  ? Source::shared()
                 : word == "lower" ? Source::lower()
                                   : Source::from_peer(std::stoul(word.substr(5)));
    }
  } else if (kind == "start") {
    c.kind = Command::Kind::start;
    std::uint64_t first = 0, end = 0;
    char ch = 0;
    in >> word >> c.task.task >> word >> c.task.attempt >> word;
    c.task.context = id_of(word);
    in >> ch >> first >> ch >> end;
    c.task.first = first;
    c.task.count = end - first;
  } else {
    assert(kind == "cancel");
    c.kind = Command::Kind::cancel;
    in >> word >> c.task.attempt;
  }
  return c;
}

bool CommandReplay::finished() const {
  return next_ == commands_.size() && finished_ >= expected_finished_;
}

double CommandReplay::next_wakeup_s() const {
  return next_ < commands_.size() ? commands_[next_].at_s : std::numeric_limits<double>::infinity();
}

void CommandReplay::wake_up() {
  while (next_ < commands_.size() && commands_[next_].at_s <= cluster_.now()) {
    const Command& c = commands_[next_++];
    switch (c.kind) {
      case Command::Kind::stage:
        cluster_.stage_context(c.worker, c.context, c.tier, c.source);
        break;
      case Command::Kind::evict:
        cluster_.evict_context(c.worker, c.context, c.tier);
        break;
      case Command::Kind::start:
        cluster_.start_task(c.worker, c.task);
        break;
      case Command::Kind::cancel:
        cluster_.cancel_task(c.worker, c.task.attempt);
        break;
    }
  }
}

}  // namespace hearth::bench
