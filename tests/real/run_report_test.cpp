// The report hearth run prints at its end (cli/run_report.cpp), from a status snapshot as the
// manager writes it (real_backend/manager/run_monitor.hpp).

#include <catch2/catch_test_macros.hpp>

#include <nlohmann/json.hpp>

#include "cli/run_report.hpp"

using hearth::cli::run_report;

TEST_CASE("the end-of-run report says what the final snapshot counted") {
  nlohmann::json s = nlohmann::json::parse(R"({
    "version": 1, "job": "/p/job.toml", "state_dir": "/p/state", "run": 3, "pid": 1234,
    "updated_at": 1796543210.5, "elapsed_s": 42.04, "ended": "finished", "end_reason": "",
    "progress": {"total": 1000, "done": 990, "done_before": 100, "given_up": 10,
                 "rate_per_s": 12.5, "eta_s": null},
    "tasks": {"running": 0, "queued": 0, "requeued": 4, "failed_attempts": 7, "given_up": 2,
              "verified": 3, "disagreements": 1},
    "counts": {"joins": 3, "losses": 1, "notices": 2, "quarantines": 1, "stage_failures": 5,
               "refused_connections": 6},
    "bytes": {"manager": 1.2e6, "shared": 0, "peer": 2.5e9},
    "gpu_types": [{"gpu_type": "A100", "workers": 2, "inferences": 600, "busy_s": 30.1,
                   "per_s": 14.04},
                  {"gpu_type": "cpu", "workers": 0, "inferences": 290, "busy_s": 100,
                   "per_s": 2.9}],
    "workers": [{"id": 0, "name": "w1", "state": "quarantined", "quarantined": "3 failed tasks"},
                {"id": 1, "name": "w2", "state": "idle", "quarantined": ""}],
    "something_new": {"a": 1}
  })");
  CHECK(run_report(s) ==
        "run 3: 990 of 1000 inferences done (100 before this run), 10 given up, in 42.0 s\n"
        "  tasks: 4 requeued, 7 failed attempts, 2 given up; 3 verified, 1 disagreements\n"
        "  workers: 3 joins, 1 lost, 2 preemption notices, 1 quarantined, 5 stage failures, "
        "6 refused connections\n"
        "  context bytes to workers: 1.2 MB from the manager, 0 B from shared storage, 2.50 GB "
        "from peers\n"
        "  A100: 2 workers at the end, 600 inferences, 14.0 inferences/s while computing\n"
        "  cpu: 0 workers at the end, 290 inferences, 2.9 inferences/s while computing\n"
        "  quarantined: w1: 3 failed tasks\n");
}

TEST_CASE("a snapshot without some fields reports them as zero") {
  CHECK(run_report(nlohmann::json::parse(R"({"run": 1, "progress": {"done": 5}})")) ==
        "run 1: 5 of 0 inferences done (0 before this run), 0 given up, in 0.0 s\n"
        "  tasks: 0 requeued, 0 failed attempts, 0 given up; 0 verified, 0 disagreements\n"
        "  workers: 0 joins, 0 lost, 0 preemption notices, 0 quarantined, 0 stage failures, "
        "0 refused connections\n"
        "  context bytes to workers: 0 B from the manager, 0 B from shared storage, 0 B from "
        "peers\n");
}
