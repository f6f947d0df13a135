// Converting condor_status snapshots: the GPUs a user's job could claim over time, from what a
// real HTCondor pool printed (tests/traces/data/htcondor-status-*, captured from the one-machine
// pool of scripts/htcondor-local with 4 GPUs: idle, two 1-GPU jobs running, one removed, both
// removed), and from hand-made ads for the states it did not show.

#include <fmt/core.h>

#include <catch2/catch_test_macros.hpp>

#include <string>

#include "tests/traces/helpers.hpp"
#include "traces/convert_htcondor.hpp"
#include "traces/text.hpp"

namespace hearth::traces {
namespace {

using testing::events_text;
using testing::input_error;
using testing::kTestDataDir;

Trace convert(const std::string& text, std::string gpu_type = "A100-40GB") {
  return convert_htcondor(text, "s.json", HtcondorOptions{std::move(gpu_type)});
}

// One slot ad as condor_status -json prints it, with the attributes the converter reads.
std::string ad(const std::string& name, const std::string& state, int gpus, double time,
               const std::string& extra = "") {
  return fmt::format(R"({{"MyType": "Machine", "Name": "{}", "State": "{}", "Activity": "Idle",)"
                     R"( "GPUs": {}, "MyCurrentTime": {}{}}})",
                     name, state, gpus, time, extra);
}

TEST_CASE("htcondor: a real pool's -json snapshots give the GPUs a job could claim") {
  // 4 GPUs free; two taken by jobs (the partitionable slot keeps 2); one job removed (3); both.
  const std::string path = (kTestDataDir / "htcondor-status-series.json").string();
  const Trace t = convert_htcondor(read_text_file(path), path, {"A100-40GB"});
  CHECK(events_text(t) ==
        "0 up vm/gpu1 A100-40GB\n"
        "0 up vm/gpu2 A100-40GB\n"
        "0 up vm/gpu3 A100-40GB\n"
        "0 up vm/gpu4 A100-40GB\n"
        "16 down vm/gpu4 \n"
        "16 down vm/gpu3 \n"
        "23 up vm/gpu5 A100-40GB\n"
        "25 up vm/gpu6 A100-40GB\n");
  CHECK(t.end_s == 25);
  CHECK(t.events[4].line > t.events[0].line);  // the second snapshot's line
}

TEST_CASE("htcondor: a real pool's -af snapshots after date +%s give the same offers") {
  const std::string path = (kTestDataDir / "htcondor-status-af.txt").string();
  const Trace t = convert_htcondor(read_text_file(path), path, {"T4-16GB"});
  CHECK(events_text(t) ==
        "0 up vm/gpu1 T4-16GB\n"
        "0 up vm/gpu2 T4-16GB\n"
        "4 up vm/gpu3 T4-16GB\n"
        "6 up vm/gpu4 T4-16GB\n");
  CHECK(t.end_s == 6);
}

TEST_CASE(
    "htcondor: backfill offers its GPUs, claimed and owner slots do not, gone machines none") {
  const std::string series =
      "[" + ad("slot1@a", "Backfill", 2, 100) + "," + ad("slot2@a", "Owner", 1, 100) + "," +
      ad("slot1@b", "Claimed", 4, 100) + "]\n" +  //
      "[" + ad("slot1@a", "Claimed", 2, 160) + "," + ad("slot1@b", "Unclaimed", 4, 160) + "]\n" +
      "[" + ad("slot1@a", "Unclaimed", 2, 220) + "]\n";
  CHECK(events_text(convert(series)) ==
        "0 up a/gpu1 A100-40GB\n"
        "0 up a/gpu2 A100-40GB\n"
        "60 down a/gpu2 \n"
        "60 down a/gpu1 \n"
        "60 up b/gpu1 A100-40GB\n"
        "60 up b/gpu2 A100-40GB\n"
        "60 up b/gpu3 A100-40GB\n"
        "60 up b/gpu4 A100-40GB\n"
        "120 up a/gpu3 A100-40GB\n"
        "120 up a/gpu4 A100-40GB\n"
        "120 down b/gpu4 \n"
        "120 down b/gpu3 \n"
        "120 down b/gpu2 \n"
        "120 down b/gpu1 \n");
}

TEST_CASE("htcondor: without --gpu-type a machine's GPUs_DeviceName is its GPU type") {
  const std::string series =
      "[" + ad("slot1@g", "Unclaimed", 1, 5, R"(, "GPUs_DeviceName": "NVIDIA H100 80GB HBM3")") +
      "]\n";
  CHECK(events_text(convert(series, "")) == "0 up g/gpu1 NVIDIA H100 80GB HBM3\n");
  CHECK(input_error([] { convert("[" + ad("slot1@g", "Unclaimed", 1, 5) + "]", ""); }) ==
        "s.json:1: g names no GPU type (GPUs_DeviceName): pass --gpu-type");
}

TEST_CASE("htcondor: the limits on GPUs at once and on events are the options'") {
  // Two snapshots of 4 and then 2 GPUs on one machine: 4 ups, then 2 downs.
  const std::string series =
      "[" + ad("s@a", "Unclaimed", 4, 50) + "]\n[" + ad("s@a", "Unclaimed", 2, 60) + "]\n";
  CHECK(convert_htcondor(series, "s.json", {"A100-40GB", 4, 6}).events.size() == 6);
  CHECK(input_error([&] {
          convert_htcondor(series, "s.json", {"A100-40GB", 3, 6});
        }) == "s.json:1: a offers 4 GPUs, not a whole number up to 3");
  CHECK(input_error([&] {
          convert_htcondor(series, "s.json", {"A100-40GB", 4, 5});
        }) == "s.json:2: the snapshots make more than 5 events");
}

TEST_CASE("htcondor: malformed snapshots are reported at their line") {
  auto error = [](const std::string& text) { return input_error([&] { convert(text); }); };
  CHECK(error("[" + ad("s@a", "Unclaimed", 1, 50) + "]\n[" + ad("s@a", "Unclaimed", 2, 40) + "]") ==
        "s.json:2: snapshot time 40 goes backwards (previous 50 at line 1)");
  CHECK(error("[{\"Name\": ").starts_with("s.json:1: a snapshot that is not JSON: "));
  CHECK(error("[]") ==
        "s.json:1: expected a non-empty JSON array of machine ads (condor_status -json)");
  CHECK(error("[1]") == "s.json:1: an ad without a Name and a State");
  CHECK(error(R"([{"State": "Unclaimed"}])") == "s.json:1: an ad without a Name and a State");
  CHECK(error(R"([{"Name": "s@a", "State": "Unclaimed", "GPUs": 1}])") ==
        "s.json:1: no ad of the snapshot has a MyCurrentTime or LastHeardFrom");
  CHECK(error("[" + ad("s@a", "Claimed", 1, 50) + "]") == "s.json:1: no GPU is ever offered");
  CHECK(error("100\ns@a Unclaimed Idle 1e12\n") ==
        "s.json:1: a offers 1000000000000 GPUs, not a whole number up to 100000");
  CHECK(error("s@a Unclaimed Idle 1\n") ==
        "s.json:1: a slot before the first snapshot's time "
        "(date +%s)");
  CHECK(error("100\ns@a Unclaimed 1\n") ==
        "s.json:2: expected Name State Activity GPUs [GPUs_DeviceName] but found 3 fields");
  CHECK(error("") == "s.json:1: empty file: no snapshots");
}

}  // namespace
}  // namespace hearth::traces
