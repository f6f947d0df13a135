// Converting Slurm accounting: the GPUs a preemptible partition's jobs held over time, from what
// a real Slurm printed (tests/traces/data/slurm-sacct.txt: scripts/slurm-local with accounting,
// two scavenger jobs preempted by an owner job, one cancelled, one still running), and from
// hand-made rows for what it did not show.

#include <fmt/core.h>

#include <catch2/catch_test_macros.hpp>

#include <string>

#include "tests/traces/helpers.hpp"
#include "traces/convert_slurm.hpp"
#include "traces/text.hpp"

namespace hearth::traces {
namespace {

using testing::events_text;
using testing::input_error;
using testing::kTestDataDir;

const char* const kSacctHeader = "JobID|Partition|State|Start|End|NodeList|AllocTRES\n";

Trace convert_sacct(const std::string& text, SlurmOptions options = {"A100-40GB", ""}) {
  return convert_slurm(text, "s.txt", options);
}

TEST_CASE("slurm: a real partition's jobs become the GPUs they held, ends named") {
  const std::string path = (kTestDataDir / "slurm-sacct.txt").string();
  const Trace t = convert_slurm(read_text_file(path), path, {"A100-40GB", "scavenger"});
  CHECK(events_text(t) ==
        "0 up slurm-1 A100-40GB\n"
        "0 up slurm-2/gpu1 A100-40GB\n"
        "0 up slurm-2/gpu2 A100-40GB\n"
        "3 down slurm-1  slurm_state=PREEMPTED\n"
        "3 down slurm-2/gpu1  slurm_state=PREEMPTED\n"
        "3 down slurm-2/gpu2  slurm_state=PREEMPTED\n"
        "9 up slurm-4 A100-40GB\n"
        "12 down slurm-4  slurm_state=CANCELLED\n"
        "16 up slurm-5/gpu1 A100-40GB\n"
        "16 up slurm-5/gpu2 A100-40GB\n");
  CHECK(t.end_s == 16);  // job 5 still runs: its GPUs stay up
  // Without --partition, the owner job's four GPUs count too.
  CHECK(convert_slurm(read_text_file(path), path, {"A100-40GB", ""}).events.size() == 18);
}

TEST_CASE("slurm: steps, jobs that never started and jobs without GPUs are left out") {
  const std::string rows = std::string(kSacctHeader) +
                           "7|gpu|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:01:40|n1|"
                           "cpu=1,gres/gpu:a100=1,gres/gpu=1\n"
                           "7.batch|gpu|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:01:40|n1|\n"
                           "8|gpu|PENDING|Unknown|Unknown|None assigned|\n"
                           "9|gpu|COMPLETED|2026-01-01T00:00:10|2026-01-01T00:00:20|n2|cpu=4\n";
  CHECK(events_text(convert_sacct(rows, {"", ""})) ==
        "0 up slurm-7 a100\n"
        "100 down slurm-7  slurm_state=COMPLETED\n");
}

TEST_CASE("slurm: the limits on GPUs at once and on events are the options'") {
  const std::string rows = std::string(kSacctHeader) +
                           "1|p|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:01:40|n1|gres/gpu=4\n"
                           "2|p|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:01:40|n1|gres/gpu=4\n";
  CHECK(convert_sacct(rows, {"A100-40GB", "", 4, 16}).events.size() == 16);
  CHECK(input_error([&] {
          convert_sacct(rows, {"A100-40GB", "", 3, 16});
        }) == "s.txt:2: job 1 holds 4 GPUs, more than 3 at once");
  CHECK(input_error([&] {
          convert_sacct(rows, {"A100-40GB", "", 4, 15});
        }) == "s.txt:3: the jobs make more than 15 events");
  // A job still running makes only its ups: four GPUs up and none down are four events.
  const std::string running =
      std::string(kSacctHeader) +
      "1|p|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:01:40|n1|gres/gpu=4\n"
      "2|p|RUNNING|2026-01-01T00:00:00|Unknown|n1|gres/gpu=4\n";
  CHECK(convert_sacct(running, {"A100-40GB", "", 4, 12}).events.size() == 12);
  CHECK(input_error([&] {
          convert_sacct(running, {"A100-40GB", "", 4, 11});
        }) == "s.txt:3: the jobs make more than 11 events");
}

TEST_CASE("slurm: malformed accounting is reported at its line") {
  auto error = [](const std::string& text) { return input_error([&] { convert_sacct(text); }); };
  CHECK(error("JobID|State|Start\n1|RUNNING|2026-01-01T00:00:00\n") ==
        "s.txt:1: no End column: expected sacct --parsable2 with a header, -o "
        "JobID,Partition,State,Start,End,NodeList,AllocTRES");
  CHECK(error(std::string(kSacctHeader) + "1|p|RUNNING|yesterday|Unknown|n|gres/gpu=1\n") ==
        "s.txt:2: Start 'yesterday' is not a time like 2026-12-07T03:56:24");
  CHECK(error(std::string(kSacctHeader) + "1|p|RUNNING\n") ==
        "s.txt:2: 3 fields where the header has 7");
  CHECK(error(std::string(kSacctHeader) +
              "1|p|RUNNING|2026-01-01T00:00:00|Unknown|n|gres/gpu=2000000000\n") ==
        "s.txt:2: job 1 holds 2000000000 GPUs, more than 100000 at once");
  CHECK(error(std::string(kSacctHeader) + "1|p|PENDING|Unknown|Unknown|n|gres/gpu=1\n") ==
        "s.txt:1: no job with GPUs ever started");
  CHECK(input_error([] {
          convert_sacct(
              std::string(kSacctHeader) + "1|p|RUNNING|2026-01-01T00:00:00|Unknown|n|gres/gpu=1\n",
              {"", ""});
        }) == "s.txt:2: job 1 names no GPU type (gres/gpu:TYPE in AllocTRES): pass --gpu-type");
}

}  // namespace
}  // namespace hearth::traces
